"""POST /v1/chat: an answer from permitted chunks, with numbered citations."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import CallerDep, RequestIdDep, ServicesDep
from api.schemas import ChatRequest, ChatResponse, ErrorResponse
from retrieval.answerer import citation_fields

router = APIRouter()


@router.post(
    "/v1/chat",
    response_model=ChatResponse,
    responses={401: {"model": ErrorResponse}, 422: {"model": ErrorResponse}},
)
def chat(
    body: ChatRequest, scope: CallerDep, services: ServicesDep, request_id: RequestIdDep
) -> dict[str, Any]:
    result = services.retrieval.chat(
        body.message, scope=scope, top_k=body.top_k, request_id=request_id
    )
    return {
        "request_id": request_id,
        "answer": result.answer.text,
        "mode": result.answer.mode,
        "citations": [citation_fields(c) for c in result.answer.citations],
        "index_version": result.retrieved.index_version,
    }
