"""Answers from permitted chunks: the most relevant sentences, each with its citation marker.

Sentences and table rows (retrieval/passages.py) are ranked by embedding similarity to the
question and quoted most relevant first; a quoted unit's neighbour from the same chunk follows
it in reading order. A unit is quoted once however many overlapping chunks hold it, and one
reference covers every chunk quoted from a document version, with their pages.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from answers.answer import ABSTAIN_ANSWER, SNIPPET_CHARS, Answer, Citation
from retrieval.embedder import Embedder
from retrieval.passages import Unit, split_sentences, split_units
from retrieval.payload import ChunkHit
from retrieval.unit_vectors import decode_unit_vectors

__all__ = ["Candidate", "answer_from_ranked", "distinct_units", "extractive_answer", "snippet",
           "split_sentences", "unit_similarities"]


@dataclass(frozen=True)
class Candidate:
    hit_index: int  # into the evidence, best-ranked first
    unit: Unit


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
    candidates = distinct_units(evidence)
    if not candidates:
        return Answer(ABSTAIN_ANSWER, "abstain", [])
    scores = unit_similarities(query, candidates, evidence, embedder=embedder)
    ranked = [candidates[k] for k in np.argsort(-scores, kind="stable").tolist()]
    return answer_from_ranked(ranked, evidence, max_sentences=max_sentences)


def answer_from_ranked(ranked: list[Candidate], evidence: list[ChunkHit], *,
                       max_sentences: int) -> Answer:
    """The extractive answer from units already ranked by relevance, most relevant first
    (the answerability decision ranks them once for both)."""
    if not ranked:
        return Answer(ABSTAIN_ANSWER, "abstain", [])
    return _cited(answer_order(ranked[:max_sentences]), evidence)


def unit_similarities(query: str, candidates: list[Candidate], evidence: list[ChunkHit], *,
                      embedder: Embedder) -> np.ndarray:
    """Each candidate's cosine similarity to the query: from the unit embeddings stored with
    its chunk (retrieval/unit_vectors.py), the units of a chunk without them embedded now."""
    stored: dict[int, np.ndarray | None] = {}
    vectors = np.zeros((len(candidates), embedder.dim), dtype=np.float32)
    missing: list[int] = []
    for k, c in enumerate(candidates):
        if c.hit_index not in stored:
            payload = evidence[c.hit_index].payload
            stored[c.hit_index] = decode_unit_vectors(
                payload.unit_vectors, units=len(split_units(payload.text)), dim=embedder.dim)
        rows = stored[c.hit_index]
        if rows is None:
            missing.append(k)
        else:
            vectors[k] = rows[c.unit.position]
    if missing:
        vectors[missing] = embedder.embed_documents([candidates[k].unit.text for k in missing])
    scores: np.ndarray = vectors @ embedder.embed_query(query)
    return scores


def distinct_units(evidence: list[ChunkHit]) -> list[Candidate]:
    """Every unit of the evidence once: a repeat, or a piece of a longer unit (chunks overlap
    and may start inside a sentence), is left out in favour of the better-ranked chunk's."""
    found: list[Candidate] = []
    for i, hit in enumerate(evidence):
        found += [Candidate(i, u) for u in split_units(hit.payload.text)]
    kept: list[Candidate] = []
    keys: list[str] = []
    for c in found:
        key = c.unit.key
        if any(key in other for other in keys):
            continue
        longer = [other for other in found if key != other.unit.key and key in other.unit.key]
        if longer:
            continue  # the longer unit is kept where it occurs
        kept.append(c)
        keys.append(key)
    return kept


def answer_order(ranked: list[Candidate]) -> list[Candidate]:
    """Most relevant first; units adjacent in one chunk stay together, in reading order."""
    runs: list[list[Candidate]] = []
    for c in ranked:
        run = next((r for r in runs if any(o.hit_index == c.hit_index
                                           and abs(o.unit.position - c.unit.position) == 1
                                           for o in r)), None)
        if run is None:
            runs.append([c])
        else:
            run.append(c)
    return [c for run in runs for c in sorted(run, key=lambda c: c.unit.position)]


def _cited(chosen: list[Candidate], evidence: list[ChunkHit]) -> Answer:
    """The answer text with one marker per document version, numbered in order of first use."""
    numbers: dict[tuple[str, str], int] = {}
    hits: dict[int, list[ChunkHit]] = {}
    quoted: dict[int, list[str]] = {}
    parts: list[str] = []
    for c in chosen:
        hit = evidence[c.hit_index]
        n = numbers.setdefault((hit.payload.doc_id, hit.payload.doc_version), len(numbers) + 1)
        if all(h.point_id != hit.point_id for h in hits.setdefault(n, [])):
            hits[n].append(hit)
        quoted.setdefault(n, []).append(c.unit.text)
        parts.append(f"{c.unit.text} [{n}]")
    citations = [Citation(n, hits[n][0], snippet(quoted[n]), tuple(hits[n][1:]))
                 for n in sorted(hits)]
    return Answer(" ".join(parts), "extractive", citations)
