"""The OpenAI-compatible API: POST /v1/chat/completions and GET /v1/models.

Staff point any OpenAI client or chat UI at the service with their API key as the bearer token.
Any `model` is accepted (the answer is Clearance's either way) and echoed back.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from answers.answer import Answer, citation_fields
from api.deps import CallerDep, RequestIdDep, ServicesDep
from api.openai_protocol import (
    ChatCompletion,
    ChatCompletionRequest,
    CompletionIds,
    ModelList,
    clearance_fields,
    completion,
    completion_chunk,
    content,
    models_list,
)
from api.openapi import BODY, KEYED, errors, event_stream, json_object, ref
from api.streaming import sse_event, sse_response, text_pieces
from retrieval.embedder import Embedder

router = APIRouter()
_STARTED = int(time.time())

# A streamed completion: chat.completion.chunk objects (the last with finish_reason, citations
# and the clearance fields; then, if asked, one with usage and no choices), then [DONE].
_CHUNK = json_object(
    {"id": {"type": "string"}, "object": {"const": "chat.completion.chunk"},
     "created": {"type": "integer"}, "model": {"type": "string"},
     "choices": {"type": "array", "maxItems": 1, "items": json_object(
         {"index": {"const": 0}, "delta": json_object({}, {"role": {"const": "assistant"},
                                                           "content": {"type": "string"}}),
          "finish_reason": {"enum": ["stop", None]}, "logprobs": {"type": "null"}})}},
    {"citations": {"type": "array", "items": ref("CitationOut")},
     "clearance": ref("ClearanceFields"), "usage": ref("Usage")},
)


def _usage(body: ChatCompletionRequest, answer: Answer, text: str, embedder: Embedder
           ) -> dict[str, int]:
    """The LLM's own counts when it answered; otherwise word pieces of the embedder's
    tokenizer over the conversation and the answer."""
    if answer.usage is not None and answer.mode in ("generated", "repaired"):
        prompt, completion_tokens = answer.usage.prompt_tokens, answer.usage.completion_tokens
    else:
        prompt = sum(len(embedder.token_ids(m.text())) for m in body.messages)
        completion_tokens = len(embedder.token_ids(text))
    return {"prompt_tokens": prompt, "completion_tokens": completion_tokens,
            "total_tokens": prompt + completion_tokens}


@router.post(
    "/v1/chat/completions",
    response_model=ChatCompletion,
    responses={
        **event_stream("A chat.completion, or with `stream: true` server-sent events: "
                       "chat.completion.chunk objects, then `data: [DONE]`", {None: _CHUNK},
                       done="[DONE]"),
        **errors(*KEYED, *BODY, 503, openai=True),
    },
)
def chat_completions(body: ChatCompletionRequest, scope: CallerDep, services: ServicesDep,
                     request_id: RequestIdDep) -> dict[str, Any] | StreamingResponse:
    result = services.retrieval.chat(body.question(), scope=scope, top_k=body.top_k,
                                     request_id=request_id, mode=body.search_mode)
    answer = result.answer
    text = content(answer)
    ids = CompletionIds(f"chatcmpl-{request_id}", int(time.time()), body.model)
    citations = [citation_fields(c) for c in answer.citations]
    extra = clearance_fields(answer, request_id, result.retrieved.index_version,
                             result.retrieved.mode)
    usage = _usage(body, answer, text, services.embedder)
    if not body.stream:
        return completion(ids, text=text, usage=usage, extra=extra, citations=citations)

    include_usage = bool(body.stream_options and body.stream_options.include_usage)

    def events() -> Iterator[str]:
        yield sse_event(completion_chunk(ids, delta={"role": "assistant", "content": ""}))
        for piece in text_pieces(text):
            yield sse_event(completion_chunk(ids, delta={"content": piece}))
        yield sse_event(completion_chunk(ids, delta={}, finish_reason="stop",
                                         citations=citations, clearance=extra))
        if include_usage:
            yield sse_event(completion_chunk(ids, delta=None, usage=usage))
        yield sse_event("[DONE]")

    return sse_response(events(), request_id)


@router.get("/v1/models", response_model=ModelList,
            responses=errors(*KEYED, 503, openai=True))
def models(scope: CallerDep) -> dict[str, Any]:
    return models_list(_STARTED)
