"""The OpenAI chat completions protocol: request bodies, and answers in its response shapes.

Clients send what their SDK sends (temperature, max_tokens, user, ...): unknown fields are
accepted and ignored, as the service decides how answers are made; the known ones must have
their JSON types ("5" is not a top_k, 0 is not a boolean). What we cannot honour is
refused with a clear message: n > 1, non-text content, a conversation not ending with the user.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from answers.answer import Answer
from answers.conversation import Question, Turn
from api.schemas import MAX_QUERY_CHARS, CitationOut, unicode_text
from retrieval.store import SearchMode

MODEL_ID = "clearance"
MAX_CONVERSATION_CHARS = 20_000


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    type: str
    text: str | None = None


class Message(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        kinds = sorted({p.type for p in self.content if p.type != "text"})
        if kinds:
            raise ValueError(f"only text content is supported, not {', '.join(kinds)}")
        return "\n".join(p.text or "" for p in self.content)


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True, json_schema_extra={"examples": [
        {"model": MODEL_ID, "messages": [{"role": "user", "content": "Where is the office?"}]},
        {"model": MODEL_ID, "stream": True, "stream_options": {"include_usage": True},
         "messages": [{"role": "system", "content": "Be brief."},
                      {"role": "user", "content": "How many days of annual leave?"}]},
    ]})

    model: str = Field(min_length=1, max_length=200)
    messages: list[Message] = Field(min_length=1, max_length=100)
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int = Field(default=1, ge=1, le=1)
    top_k: int = Field(default=5, ge=1, le=50)  # a Clearance extension: chunks retrieved
    # A Clearance extension: dense, sparse or hybrid (not strict: JSON has strings, not enums).
    search_mode: SearchMode | None = Field(default=None, strict=False)

    # The whole body, extras too: any of it may be echoed or logged.
    _unicode = model_validator(mode="before")(unicode_text)

    @model_validator(mode="after")
    def _ends_with_a_question(self) -> ChatCompletionRequest:
        last = self.messages[-1]
        if last.role != "user":
            raise ValueError("the last message must have role 'user': it is the question")
        texts = [m.text() for m in self.messages]
        if not texts[-1].strip():
            raise ValueError("the last user message must contain some text")
        if len(texts[-1]) > MAX_QUERY_CHARS:
            raise ValueError(f"the last user message is over {MAX_QUERY_CHARS} characters")
        if sum(len(t) for t in texts) > MAX_CONVERSATION_CHARS:
            raise ValueError(f"the conversation is over {MAX_CONVERSATION_CHARS} characters: "
                             "start a new one or send fewer earlier turns")
        return self

    def question(self) -> Question:
        """The last user message, with the earlier user and assistant turns. The client's system
        messages are left out: the service's own instructions decide how answers are made."""
        history = tuple(Turn(m.role, m.text()) for m in self.messages[:-1]
                        if m.role in ("user", "assistant") and m.text().strip())
        return Question(self.messages[-1].text().strip(), history)


class OpenAIError(BaseModel):
    message: str = Field(description="What went wrong; for invalid input, the field and why")
    type: str = Field(description="invalid_request_error, authentication_error, "
                      "permission_error, not_found_error, rate_limit_error, server_error or "
                      "service_unavailable")
    code: int = Field(description="The HTTP status")


class OpenAIErrorResponse(BaseModel):
    """Every refusal or failure of the OpenAI-compatible routes, in the shape their SDKs read."""

    error: OpenAIError
    request_id: str = Field(description="Also in the X-Request-ID header and the audit log")


class AssistantMessage(BaseModel):
    role: Literal["assistant"]
    content: str


class Choice(BaseModel):
    index: int
    message: AssistantMessage
    finish_reason: Literal["stop"]
    logprobs: None


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ClearanceFields(BaseModel):
    """What a Clearance answer adds: how it was made, from which index version."""

    request_id: str
    mode: str  # as ChatResponse.mode
    notice: str | None
    index_version: str
    search_mode: SearchMode


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
    citations: list[CitationOut]
    clearance: ClearanceFields


class ModelCard(BaseModel):
    id: str
    object: Literal["model"]
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"]
    data: list[ModelCard]


def references(answer: Answer) -> str:
    """The numbered sources, as text any chat client shows under the answer."""
    lines = []
    for c in answer.citations:
        p = c.hit.payload
        pages = c.pages
        page = (f", page {pages[0]}" if len(pages) == 1 else
                f", pages {', '.join(map(str, pages))}" if pages else "")
        lines.append(f"[{c.n}] {p.title} ({p.doc_id}{page}), version {p.doc_version[:12]}, "
                     f"modified {p.source_modified_at}, ingested {p.ingested_at}")
    return "\n\nSources:\n" + "\n".join(lines) if lines else ""


def content(answer: Answer) -> str:
    note = f"\n\nNote: {answer.notice}" if answer.notice else ""
    return answer.text + note + references(answer)


def clearance_fields(answer: Answer, request_id: str, index_version: str,
                     search_mode: SearchMode) -> dict[str, Any]:
    return {"request_id": request_id, "mode": answer.mode, "notice": answer.notice,
            "index_version": index_version, "search_mode": str(search_mode)}


@dataclass(frozen=True)
class CompletionIds:
    """What every object of one completion repeats."""

    id: str
    created: int
    model: str


def completion(ids: CompletionIds, *, text: str, usage: dict[str, int], extra: dict[str, Any],
               citations: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": ids.id,
        "object": "chat.completion",
        "created": ids.created,
        "model": ids.model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                     "finish_reason": "stop", "logprobs": None}],
        "usage": usage,
        "citations": citations,
        "clearance": extra,
    }


def completion_chunk(ids: CompletionIds, *, delta: dict[str, Any] | None,
                     finish_reason: str | None = None, **extra: Any) -> dict[str, Any]:
    """One streamed chunk; `delta=None` is the final usage-only chunk (no choices)."""
    choices = [] if delta is None else [{"index": 0, "delta": delta,
                                         "finish_reason": finish_reason, "logprobs": None}]
    return {"id": ids.id, "object": "chat.completion.chunk", "created": ids.created,
            "model": ids.model, "choices": choices, **extra}


def models_list(created: int) -> dict[str, Any]:
    return {"object": "list", "data": [{"id": MODEL_ID, "object": "model", "created": created,
                                        "owned_by": "clearance"}]}
