"""POST /v1/search: permitted chunks for a query."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import CallerDep, RequestIdDep, ServicesDep
from api.openapi import BODY, KEYED, errors
from api.schemas import SearchRequest, SearchResponse

router = APIRouter()

_RESULT_FIELDS = ("doc_id", "source", "title", "uri", "page", "doc_version",
                  "source_modified_at", "ingested_at", "text")


@router.post(
    "/v1/search",
    response_model=SearchResponse,
    responses=errors(*KEYED, *BODY, 503),
)
def search(
    body: SearchRequest, scope: CallerDep, services: ServicesDep, request_id: RequestIdDep
) -> dict[str, Any]:
    retrieved = services.retrieval.search(
        body.query, scope=scope, top_k=body.top_k, request_id=request_id, mode=body.search_mode
    )
    return {
        "request_id": request_id,
        "index_version": retrieved.index_version,
        "search_mode": retrieved.mode,
        "results": [
            {"chunk_id": h.point_id, "score": h.score, "similarity": h.similarity,
             **{k: h.payload.get(k) for k in _RESULT_FIELDS}}
            for h in retrieved.hits
        ],
    }
