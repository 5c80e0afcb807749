"""Answers from permitted chunks: the most relevant sentences, each with its citation marker.

Sentences and table rows (answers/passages.py) are ranked by embedding similarity to the
question and quoted most relevant first; a quoted unit's neighbour from the same chunk follows
it in reading order. A unit is quoted once however many overlapping chunks hold it, and one
reference covers every chunk quoted from a document version, with their pages.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from answers.answer import ABSTAIN_ANSWER, SNIPPET_CHARS, Answer, Citation
from answers.passages import Unit, split_sentences, split_units
from retrieval.embedder import Embedder
from retrieval.payload import ChunkHit

__all__ = ["Candidate", "answer_from_ranked", "distinct_units", "extractive_answer", "snippet",
           "split_sentences"]


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
    vectors = embedder.embed_documents([c.unit.text for c in candidates])
    scores = vectors @ embedder.embed_query(query)
    ranked = [candidates[k] for k in np.argsort(-scores, kind="stable").tolist()]
    return answer_from_ranked(ranked, evidence, max_sentences=max_sentences)


def answer_from_ranked(ranked: list[Candidate], evidence: list[ChunkHit], *,
                       max_sentences: int) -> Answer:
    """The extractive answer from units already ranked by relevance, most relevant first
    (the answerability decision ranks them once for both)."""
    if not ranked:
        return Answer(ABSTAIN_ANSWER, "abstain", [])
    return _cited(answer_order(ranked[:max_sentences]), evidence)


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
