"""What an answer is: text, how it was made, and the numbered sources it cites."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from retrieval.payload import ChunkHit

# extractive: sentences of the evidence (no LLM configured, or generation paused)
# generated:  the LLM's answer, every citation valid
# repaired:   the LLM's answer with citations of sources it was not given removed
# replaced:   the LLM's answer cited nothing valid; the extractive answer instead
# fallback:   the LLM timed out or failed; the extractive answer instead
# abstain:    the permitted evidence does not answer the question (too weak, judged not to
#             answer by answers/answerability.py, or the LLM said so)
Mode = Literal["extractive", "generated", "repaired", "replaced", "fallback", "abstain"]

ABSTAIN_ANSWER = "Not found in the sources you can access."
ACCESS_DEFAULT = "ask the owner of the documents you need, or your administrator, for access"


def abstain_text(owners: list[str], access_requests: str | None) -> str:
    """What an abstention says: that the answer is not in what the caller can read, and what
    they can do next. `owners` keep the nearest sources the caller may read; nothing is said
    of documents they may not read, not even whether any exist."""
    parts = [ABSTAIN_ANSWER]
    if owners:
        parts.append("The closest sources you can read are kept by " + ", ".join(owners)
                     + ": they may know where the answer is.")
    how = access_requests or ACCESS_DEFAULT
    parts.append(f"If you expected an answer, {how}, or rephrase the question.")
    return " ".join(parts)


SNIPPET_CHARS = 300


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True)
class Citation:
    """A numbered reference to a document version: the chunk a sentence of the answer came from
    and, in an extractive answer, the other chunks of that version it quotes (`more_hits`)."""

    n: int
    hit: ChunkHit
    snippet: str
    more_hits: tuple[ChunkHit, ...] = ()

    @property
    def hits(self) -> tuple[ChunkHit, ...]:
        """Every chunk cited under this number, the first one first."""
        return (self.hit, *self.more_hits)

    @property
    def pages(self) -> list[int]:
        """The pages of the cited chunks, in ascending order (none for formats without pages)."""
        return sorted({h.payload.page for h in self.hits if h.payload.page is not None})


@dataclass(frozen=True)
class Answer:
    text: str
    mode: Mode
    citations: list[Citation]
    usage: Usage | None = None  # tokens the LLM reported, when one answered
    notice: str | None = None  # said to the caller, e.g. "generation is paused"
    detail: str | None = None  # for the audit log only, e.g. the LLM's error
    answerability: float | None = None  # the decision's probability that the evidence answers


def citation_fields(citation: Citation) -> dict[str, Any]:
    """The citation as the API returns it."""
    p = citation.hit.payload
    return {
        "n": citation.n,
        "doc_id": p.doc_id,
        "source": p.source,
        "title": p.title,
        "uri": p.uri,
        "page": citation.pages[0] if citation.pages else p.page,  # the first of `pages`
        "pages": citation.pages,
        "doc_version": p.doc_version,
        "source_modified_at": p.source_modified_at,
        "ingested_at": p.ingested_at,
        "snippet": citation.snippet,
        "chunk_ids": [h.point_id for h in citation.hits],  # the viewer opens the first
    }
