"""Answers from permitted chunks: the most relevant sentences, each with its citation marker."""

from __future__ import annotations

import re

import numpy as np

from answers.answer import ABSTAIN_ANSWER, SNIPPET_CHARS, Answer, Citation
from retrieval.embedder import Embedder
from retrieval.payload import ChunkHit

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_MIN_SENTENCE_CHARS = 20


def split_sentences(text: str) -> list[str]:
    """Sentences long enough to stand alone as evidence."""
    parts = (" ".join(p.split()) for p in _SENTENCE_END.split(text))
    return [p for p in parts if len(p) >= _MIN_SENTENCE_CHARS]


def snippet(sentences: list[str]) -> str:
    text = " ".join(sentences)
    return text if len(text) <= SNIPPET_CHARS else text[: SNIPPET_CHARS - 1].rstrip() + "…"


def extractive_answer(
    query: str,
    hits: list[ChunkHit],
    *,
    embedder: Embedder,
    min_score: float,
    max_sentences: int,
) -> Answer:
    """Pick the sentences of the evidence closest to the query and cite each one.

    Evidence is the hits whose embedding similarity is at least `min_score`; with none, the
    answer abstains.
    """
    evidence = [h for h in hits if h.similarity >= min_score]
    candidates: list[tuple[int, int, str]] = []  # (hit index, position, sentence)
    for i, hit in enumerate(evidence):
        sentences = split_sentences(hit.payload.text)
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
    citations = [Citation(n, evidence[i], snippet(chosen[i])) for i, n in numbers.items()]
    return Answer(" ".join(parts), "extractive", citations)
