"""Answers from permitted chunks: the most relevant sentences, each with its citation marker."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from retrieval.embedder import Embedder
from retrieval.store import Hit

ABSTAIN_ANSWER = (
    "Nothing relevant was found in the sources you can access. "
    "If you expected an answer, ask the owner of the relevant documents for access, "
    "or rephrase the question."
)
SNIPPET_CHARS = 300
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_MIN_SENTENCE_CHARS = 20


@dataclass(frozen=True)
class Citation:
    """A numbered reference to the chunk a sentence of the answer came from."""

    n: int
    hit: Hit
    snippet: str


@dataclass(frozen=True)
class Answer:
    text: str
    mode: str  # "extractive" or "abstain"
    citations: list[Citation]


def split_sentences(text: str) -> list[str]:
    """Sentences long enough to stand alone as evidence."""
    parts = (" ".join(p.split()) for p in _SENTENCE_END.split(text))
    return [p for p in parts if len(p) >= _MIN_SENTENCE_CHARS]


def _snippet(sentences: list[str]) -> str:
    text = " ".join(sentences)
    return text if len(text) <= SNIPPET_CHARS else text[: SNIPPET_CHARS - 1].rstrip() + "…"


def extractive_answer(
    query: str,
    hits: list[Hit],
    *,
    embedder: Embedder,
    min_score: float,
    max_sentences: int,
) -> Answer:
    """Pick the sentences of the evidence closest to the query and cite each one.

    Evidence is the hits scoring at least `min_score`; with none, the answer abstains.
    """
    evidence = [h for h in hits if h.score >= min_score]
    candidates: list[tuple[int, int, str]] = []  # (hit index, position, sentence)
    for i, hit in enumerate(evidence):
        sentences = split_sentences(str(hit.payload.get("text", "")))
        candidates += [(i, pos, s) for pos, s in enumerate(sentences)]
    if not candidates:
        return Answer(ABSTAIN_ANSWER, "abstain", [])
    vectors = embedder.embed_documents([s for _, _, s in candidates])
    scores = vectors @ embedder.embed_query(query)
    best = np.argsort(-scores)[:max_sentences].tolist()
    best.sort(key=lambda k: (candidates[k][0], candidates[k][1]))  # reading order per hit

    numbers: dict[int, int] = {}
    chosen: dict[int, list[str]] = {}
    parts: list[str] = []
    for k in best:
        hit_index, _, sentence = candidates[k]
        n = numbers.setdefault(hit_index, len(numbers) + 1)
        chosen.setdefault(hit_index, []).append(sentence)
        parts.append(f"{sentence} [{n}]")
    citations = [Citation(n, evidence[i], _snippet(chosen[i])) for i, n in numbers.items()]
    return Answer(" ".join(parts), "extractive", citations)


def citation_fields(citation: Citation) -> dict[str, Any]:
    """The citation as the API returns it."""
    p = citation.hit.payload
    return {
        "n": citation.n,
        "doc_id": p.get("doc_id"),
        "source": p.get("source"),
        "title": p.get("title"),
        "uri": p.get("uri"),
        "page": p.get("page"),
        "doc_version": p.get("doc_version"),
        "source_modified_at": p.get("source_modified_at"),
        "ingested_at": p.get("ingested_at"),
        "snippet": citation.snippet,
    }
