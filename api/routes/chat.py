"""POST /v1/chat: an answer from permitted chunks, with numbered citations; optionally streamed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from answers.answer import citation_fields
from api.deps import CallerDep, RequestIdDep, ServicesDep
from api.openapi import BODY, KEYED, errors, event_stream, json_object, ref
from api.schemas import ChatRequest, ChatResponse
from api.streaming import sse_event, sse_response, text_pieces

router = APIRouter()

_STRING = {"type": "string"}
# What a streamed answer sends, event by event (see `events` below).
_EVENTS: dict[str | None, dict[str, Any]] = {
    "meta": json_object({"request_id": _STRING, "mode": _STRING,
                         "notice": {"type": ["string", "null"]}, "index_version": _STRING,
                         "search_mode": ref("SearchMode")}),
    "delta": json_object({"text": _STRING}),
    "citations": json_object({"citations": {"type": "array", "items": ref("CitationOut")}}),
    "done": {"type": "object", "maxProperties": 0},
}


@router.post(
    "/v1/chat",
    response_model=ChatResponse,
    responses={
        **event_stream("JSON, or with `stream: true` server-sent events: `meta`, then `delta` "
                       "events with the answer's text, then `citations`, `done`", _EVENTS),
        **errors(*KEYED, *BODY, 503),
    },
)
def chat(
    body: ChatRequest, scope: CallerDep, services: ServicesDep, request_id: RequestIdDep
) -> dict[str, Any] | StreamingResponse:
    result = services.retrieval.chat(
        body.question(), scope=scope, top_k=body.top_k, request_id=request_id,
        mode=body.search_mode,
    )
    answer = result.answer
    response = {
        "request_id": request_id,
        "answer": answer.text,
        "mode": answer.mode,
        "notice": answer.notice,
        "citations": [citation_fields(c) for c in answer.citations],
        "index_version": result.retrieved.index_version,
        "search_mode": result.retrieved.mode,
    }
    if not body.stream:
        return response

    def events() -> Iterator[str]:
        yield sse_event({k: response[k] for k in ("request_id", "mode", "notice",
                                                  "index_version", "search_mode")}, "meta")
        for piece in text_pieces(answer.text):
            yield sse_event({"text": piece}, "delta")
        yield sse_event({"citations": response["citations"]}, "citations")
        yield sse_event({}, "done")

    return sse_response(events(), request_id)
