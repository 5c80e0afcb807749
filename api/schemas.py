"""Request and response bodies of the public API."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from answers.conversation import Question, Turn
from retrieval.store import SearchMode

MAX_QUERY_CHARS = 2000
_SURROGATE = re.compile("[\ud800-\udfff]")


def unicode_text(data: Any) -> Any:
    """`data` (decoded JSON) unchanged; ValueError naming the first string that holds an unpaired
    surrogate. JSON may spell one ("\\udc00"), but it is no text: it cannot be written as UTF-8,
    to a response, a log or a file."""
    stack: list[tuple[str, Any]] = [("", data)]
    while stack:  # not recursive: the nesting is the sender's choice
        path, value = stack.pop()
        if isinstance(value, str):
            found = _SURROGATE.search(value)
            if found:
                raise ValueError(f"{path or 'body'}: not Unicode text (an unpaired surrogate, "
                                 f"{found.group()!a})")
        elif isinstance(value, dict):
            for key, item in value.items():
                shown = str(key).encode("utf-8", "backslashreplace").decode("utf-8")
                name = f"{path}.{shown}" if path else shown
                stack += [(f"{name} (the name)", key), (name, item)]
        elif isinstance(value, list):
            stack += [(f"{path}.{i}" if path else str(i), item) for i, item in enumerate(value)]
    return data


class RequestBody(BaseModel):
    """Every JSON body the native routes read: exact JSON types, known fields, real text."""

    # Wrong JSON types are errors, not coerced ("5" is not a top_k).
    model_config = ConfigDict(strict=True, extra="forbid")

    _unicode = model_validator(mode="before")(unicode_text)


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must contain some text")
    return value.strip()


class SearchRequest(RequestBody):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"query": "How many days of annual leave do I get?"},
        {"query": "Where do I report phishing?", "top_k": 3, "search_mode": "sparse"},
    ]})

    query: str = Field(min_length=1, max_length=MAX_QUERY_CHARS)
    top_k: int = Field(default=5, ge=1, le=50)
    # How chunks are ranked: "dense" (embedding), "sparse" (BM25) or "hybrid" (both fused);
    # omitted: the configured `retrieval.mode`. Not strict: JSON has no enums, only strings.
    search_mode: SearchMode | None = Field(default=None, strict=False)

    _query = field_validator("query")(_not_blank)


MAX_HISTORY_TURNS = 20
MAX_HISTORY_CHARS = 20_000


class ChatTurn(RequestBody):
    role: Literal["user", "assistant"]
    content: str = Field(max_length=MAX_HISTORY_CHARS)


class ChatRequest(RequestBody):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"message": "What is the daily meal limit when travelling?"},
        {"message": "How much parental leave does each parent get?", "stream": True},
    ]})

    message: str = Field(min_length=1, max_length=MAX_QUERY_CHARS)
    top_k: int = Field(default=5, ge=1, le=50)
    stream: bool = False
    search_mode: SearchMode | None = Field(default=None, strict=False)  # as in SearchRequest
    # The conversation so far, oldest first: a follow-up is made standalone from it
    # (answers/standalone.py); what can be found is still only what the caller may read.
    history: list[ChatTurn] = Field(default_factory=list, max_length=MAX_HISTORY_TURNS)

    _message = field_validator("message")(_not_blank)

    @field_validator("history")
    @classmethod
    def _history_size(cls, turns: list[ChatTurn]) -> list[ChatTurn]:
        if sum(len(t.content) for t in turns) > MAX_HISTORY_CHARS:
            raise ValueError(f"the history is over {MAX_HISTORY_CHARS} characters: send fewer "
                             "or shorter turns")
        return turns

    def question(self) -> Question:
        return Question(self.message, tuple(Turn(t.role, t.content) for t in self.history))


class SearchResult(BaseModel):
    chunk_id: str
    doc_id: str
    source: str
    title: str
    uri: str
    page: int | None
    doc_version: str
    source_modified_at: str
    ingested_at: str
    score: float  # what ranked it: cosine similarity, BM25 or a fused score (search_mode)
    similarity: float  # cosine similarity of its embedding to the query's, whatever the mode
    text: str


class SearchResponse(BaseModel):
    request_id: str
    index_version: str
    search_mode: SearchMode  # how the results were ranked
    results: list[SearchResult]


class CitationOut(BaseModel):
    n: int
    doc_id: str
    source: str
    title: str
    uri: str
    page: int | None  # the first of `pages`, kept for clients written before it
    pages: list[int]  # the pages of every chunk cited under this number
    doc_version: str
    source_modified_at: str
    ingested_at: str
    snippet: str
    # Every chunk cited under this number, the first one first: GET /v1/documents/{doc_id}/
    # versions/{doc_version}?chunk=ID opens the document there.
    chunk_ids: list[str]


class ChatResponse(BaseModel):
    request_id: str
    answer: str
    # extractive | generated | repaired | replaced | fallback | abstain (answers/answer.py)
    mode: str
    notice: str | None = None
    citations: list[CitationOut]
    index_version: str
    search_mode: SearchMode  # how the evidence was ranked


class ErrorResponse(BaseModel):
    """Every refusal or failure of the native routes (the OpenAI-compatible ones differ)."""

    error: str = Field(description="What went wrong; for invalid input, the field and why")
    request_id: str = Field(description="Also in the X-Request-ID header and the audit log")


class BuildRunningResponse(ErrorResponse):
    """409 from a re-index while another build runs."""

    job_id: str | None = Field(description="The running build's job, unless the CLI started it")


class NotReadableResponse(ErrorResponse):
    """404 from the source viewer: the same for every document version the caller cannot have."""

    current_version: str | None = Field(
        default=None, description="The document's version in the current index: only where the "
                                  "caller may read the document, and another version was asked")
