"""Request and response bodies of the public API."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from retrieval.store import SearchMode

MAX_QUERY_CHARS = 2000


class _Strict(BaseModel):
    # Wrong JSON types are errors, not coerced ("5" is not a top_k).
    model_config = ConfigDict(strict=True, extra="forbid")


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must contain some text")
    return value.strip()


class SearchRequest(_Strict):
    query: str = Field(min_length=1, max_length=MAX_QUERY_CHARS)
    top_k: int = Field(default=5, ge=1, le=50)
    # How chunks are ranked: "dense" (embedding), "sparse" (BM25) or "hybrid" (both fused);
    # omitted: the configured `retrieval.mode`. Not strict: JSON has no enums, only strings.
    search_mode: SearchMode | None = Field(default=None, strict=False)

    _query = field_validator("query")(_not_blank)


class ChatRequest(_Strict):
    message: str = Field(min_length=1, max_length=MAX_QUERY_CHARS)
    top_k: int = Field(default=5, ge=1, le=50)
    stream: bool = False
    search_mode: SearchMode | None = Field(default=None, strict=False)  # as in SearchRequest

    _message = field_validator("message")(_not_blank)


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
    page: int | None
    doc_version: str
    source_modified_at: str
    ingested_at: str
    snippet: str


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
    error: str
    request_id: str | None = None
