"""Whether the permitted evidence answers the question: the decision to answer or to abstain.

One embedding similarity tells a topic from another topic, not an answer from a topic: a
question about telemetry ingest put to someone who may read only the handbook finds the
handbook's nearest page, which is about something else. So the decision looks at the
sentences and table rows (retrieval/passages.py) of the evidence, as a reader would:

- how close the best units are to the question (the embedder's cosine, per unit);
- whether the question's specific words occur there: every content word weighs by how rare it
  is in general English (answers/terms.py), so a missing "telemetry" counts for much and a
  missing "service" for little; an acronym ("NDA") is found as the initials of the words it
  stands for ("Non-Disclosure Agreement");
- whether a unit near the question holds what the question asks for: a number for "how
  much", a date or time for "when", a name for "who".

A logistic model over these features (FEATURES) gives the probability that the evidence
answers; at or above the model's threshold the question is answered. Its coefficients are fitted
by `bench/fit_answerability.py` on SciFact's training queries asked by users who may read
only part of the corpus, and on calibration questions over the example corpus (never on the
test sets), and shipped in answers/answerability_model.json.

Everything is computed from the caller's permitted hits and from fixed word lists: nothing here
depends on documents the caller may not read.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from answers.extractive import Candidate, distinct_units, unit_similarities
from answers.terms import question_terms, stem, text_stems
from retrieval.embedder import Embedder
from retrieval.passages import Unit, split_units
from retrieval.payload import ChunkHit

MODEL_FILE = Path(__file__).with_name("answerability_model.json")
FEATURES = (
    "chunk_similarity",  # the best hit's embedding similarity
    "unit_similarity",  # the best unit's
    "unit_coverage",  # weighted share of the question's words in the best window near it
    "unit_missing",  # the weight of the rarest word that window lacks (0: none)
    "evidence_coverage",  # the share over all the evidence together
    "evidence_missing",
    # unit_coverage counting only units that hold what the question asks for: a number for
    # "how much", a time for "when", a name for "who" (all of them when it asks for no type)
    "typed_coverage",
    "typed_missing",  # the weight of the rarest word that unit lacks (8: no such unit)
)
TOP_UNITS = 3  # the units nearest the question that the coverage and type features look at


def _split(words: str) -> list[str]:
    return words.split()


_NUMBER_WORDS = frozenset(_split(
    "one two three four five six seven eight nine ten eleven twelve fifteen twenty thirty "
    "hundred thousand million billion half twice once double dozen "
))
_MONTHS_DAYS = frozenset(_split(
    "january february march april may june july august september october november "
    "december monday tuesday wednesday thursday friday saturday sunday today tomorrow "
    "daily weekly monthly annually yearly "
))
_ORDINALS = frozenset(_split(
    "first second third fourth fifth sixth seventh eighth ninth tenth last next "
))
_HAS_DIGIT = re.compile(r"\d")
_NAME = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][a-zà-öø-ÿ]+(?:\s+[A-Z][a-zà-öø-ÿ]+)+")
_ACRONYM = re.compile(r"\b[A-Z]{2,6}\b")
_QUANTITY_NOUNS = frozenset(_split(
    "price rate limit amount cost budget percentage number range size salary fee pay "
    "allowance compensation total margin revenue figure threshold share count "
))


@dataclass(frozen=True)
class ScoredUnit:
    """A unit of the evidence with its cosine similarity to the question."""

    hit_index: int  # into the evidence, best-ranked first
    unit: Unit
    similarity: float

    @property
    def candidate(self) -> Candidate:
        return Candidate(self.hit_index, self.unit)


@dataclass(frozen=True)
class Judgement:
    answerable: bool
    probability: float
    features: dict[str, float]
    units: list[ScoredUnit]  # every distinct unit of the evidence, most similar first
    evidence: list[ChunkHit]  # the hits judged


@dataclass(frozen=True)
class AnswerabilityModel:
    """A logistic model over FEATURES: coefficients, intercept and the threshold to answer."""

    weights: tuple[float, ...]
    intercept: float
    threshold: float
    means: tuple[float, ...]  # features are standardised before the weights apply
    scales: tuple[float, ...]

    @classmethod
    def load(cls, path: Path = MODEL_FILE) -> AnswerabilityModel:
        data = json.loads(path.read_text(encoding="utf-8"))
        if tuple(data["features"]) != FEATURES:
            raise ValueError(f"{path} was fitted on features {data['features']}, not {FEATURES}: "
                             "refit it with bench/fit_answerability.py")
        return cls(tuple(data["weights"]), float(data["intercept"]), float(data["threshold"]),
                   tuple(data["means"]), tuple(data["scales"]))

    def probability(self, features: Sequence[float]) -> float:
        z = self.intercept + sum(w * (x - m) / s for w, x, m, s in
                                 zip(self.weights, features, self.means, self.scales,
                                     strict=True))
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))


def expected_type(question: str) -> str | None:
    """What the question asks for: "number", "time", "name", "place", or None (any answer)."""
    q = question.lower().strip()
    words = re.findall(r"[a-z]+", q)
    if not words:
        return None
    head = words[:3]
    if "how" in head:
        after = words[words.index("how") + 1] if words.index("how") + 1 < len(words) else ""
        if after in {"much", "many", "long", "soon", "early", "often", "big", "far", "quickly",
                     "old", "large", "late", "high", "low", "fast"}:
            return "number"
        return None
    if "when" in head or re.search(r"\b(what|which) (date|time|day|year|month)\b", q):
        return "time"
    if {"who", "whom", "whose"} & set(head):
        return "name"
    if "where" in head:
        return "place"
    if head[0] in {"what", "which"} and _QUANTITY_NOUNS & set(words[1:6]):
        return "number"
    return None


def holds_type(text: str, kind: str | None) -> bool:
    """Whether a unit holds an answer of the kind the question asks for."""
    if kind is None:
        return True
    lowered = set(re.findall(r"[a-z]+", text.lower()))
    if kind == "number":
        return bool(_HAS_DIGIT.search(text) or _NUMBER_WORDS & lowered)
    if kind == "time":
        return bool(_HAS_DIGIT.search(text) or (_MONTHS_DAYS | _NUMBER_WORDS | _ORDINALS)
                    & lowered)
    if kind == "name":
        return bool(_NAME.search(text) or "@" in text)
    return bool(_NAME.search(text) or "@" in text or _HAS_DIGIT.search(text)
                or re.search(r"\b[A-Z][a-z]+", text[1:]))


def _acronyms(question: str) -> dict[str, str]:
    """The question's acronyms ("NDA"), by their stem."""
    return {stem(a.lower()): a for a in _ACRONYM.findall(question)}


def _negated_root(term: str, stems: frozenset[str]) -> bool:
    """ "unmitigated" is about what "not mitigated" says: a word with a negating prefix counts
    as found where its root is."""
    for prefix in ("un", "non", "in"):
        if term.startswith(prefix) and len(term) - len(prefix) >= 4:
            return term[len(prefix):] in stems
    return False


def _initials(text: str) -> set[str]:
    """Every run of 2 to 6 consecutive words' initials, hyphenated parts counted apart."""
    parts = [p for p in re.split(r"[\s\-/]+", text) if p[:1].isalpha()]
    letters = "".join(p[0].upper() for p in parts)
    return {letters[i:i + n] for n in range(2, 7) for i in range(len(letters) - n + 1)}


class Coverage:
    """How much of a question's weighted words a piece of text holds."""

    def __init__(self, question: str) -> None:
        self.terms = question_terms(question)
        self.total = sum(self.terms.values()) or 1.0
        self._acronyms = _acronyms(question)

    def of(self, stems: frozenset[str], text: str) -> tuple[float, float]:
        """(share of the weight covered, weight of the heaviest word not covered)."""
        got = 0.0
        missing = 0.0
        initials: set[str] | None = None
        for term, weight in self.terms.items():
            found = term in stems or _negated_root(term, stems)
            if not found and term in self._acronyms:
                initials = _initials(text) if initials is None else initials
                found = self._acronyms[term] in initials
            if found:
                got += weight
            else:
                missing = max(missing, weight)
        return got / self.total, missing


class AnswerabilityJudge:
    """Decides, from the caller's permitted hits, whether they answer the question."""

    def __init__(self, embedder: Embedder, model: AnswerabilityModel | None = None) -> None:
        self._embedder = embedder
        self._model = model or AnswerabilityModel.load()

    @property
    def threshold(self) -> float:
        return self._model.threshold

    def warm_up(self) -> None:
        """Load the word lists before the first question."""
        from answers.terms import warm_up

        warm_up()

    def decide(self, question: str, hits: list[ChunkHit], *, min_score: float) -> Judgement:
        """The decision on a question from its retrieved hits: the evidence is the hits whose
        embedding is at least `min_score` similar to the question; with none, not answerable
        (what the composer and `clearance eval` both call)."""
        evidence = [h for h in hits if h.similarity >= min_score]
        if not evidence:
            return Judgement(False, 0.0, {}, [], [])
        return self.judge(question, evidence)

    def judge(self, question: str, hits: list[ChunkHit]) -> Judgement:
        units = self.score_units(question, hits)
        features = self.features(question, hits, units)
        p = self._model.probability([features[name] for name in FEATURES])
        return Judgement(p >= self._model.threshold, p, features, units, hits)

    def score_units(self, question: str, hits: list[ChunkHit]) -> list[ScoredUnit]:
        """Every distinct unit of the hits with its similarity to the question, most similar
        first (a unit repeated by overlapping chunks is kept once, from the better hit:
        answers/extractive.py's distinct_units)."""
        found = distinct_units(hits)
        if not found:
            return []
        scores = unit_similarities(question, found, hits, embedder=self._embedder)
        order = np.argsort(-scores, kind="stable").tolist()
        return [ScoredUnit(found[k].hit_index, found[k].unit, float(scores[k])) for k in order]

    @staticmethod
    def features(question: str, hits: list[ChunkHit], units: list[ScoredUnit]
                 ) -> dict[str, float]:
        coverage = Coverage(question)
        if not hits or not units or not coverage.terms:
            return {"chunk_similarity": max((h.similarity for h in hits), default=0.0),
                    "unit_similarity": 0.0, "unit_coverage": 0.0, "unit_missing": 8.0,
                    "evidence_coverage": 0.0, "evidence_missing": 8.0, "typed_coverage": 0.0,
                    "typed_missing": 8.0}
        kind = expected_type(question)
        by_hit: dict[int, list[Unit]] = {}
        for hit_index, hit in enumerate(hits):
            by_hit[hit_index] = split_units(hit.payload.text)
        # Every unit's window: the unit with its neighbours, under its document's title and
        # section ("this agreement" in a clause is about what the title names); and, for a
        # unit that holds what the question asks for, the unit alone under them (the answer
        # must be in the unit that is about the question, not in a neighbour).
        windows: list[tuple[float, float, tuple[float, float] | None]] = []
        for scored in units:
            heading = _heading(hits[scored.hit_index])
            neighbours = [u.text for u in by_hit[scored.hit_index]
                          if abs(u.position - scored.unit.position) <= 1]
            window = "\n".join([heading, *neighbours])
            own = f"{heading}\n{scored.unit.text}"
            typed = (coverage.of(text_stems(own), own) if holds_type(scored.unit.text, kind)
                     else None)
            windows.append((*coverage.of(text_stems(window), window), typed))
        # The units nearest the question, and those covering most of its words.
        candidates = windows[:TOP_UNITS] + sorted(
            windows[TOP_UNITS:], key=lambda w: (-w[0], w[1]))[:TOP_UNITS]
        best_cov, best_missing = max(((c, m) for c, m, _ in candidates),
                                     key=lambda w: (w[0], -w[1]))
        typed_cov, typed_missing = max((t for _, _, t in candidates if t is not None),
                                       key=lambda w: (w[0], -w[1]), default=(0.0, 8.0))
        everything = "\n".join(f"{_heading(h)}\n{h.payload.text}" for h in hits)
        evidence_cov, evidence_missing = coverage.of(text_stems(everything), everything)
        return {
            "chunk_similarity": max(h.similarity for h in hits),
            "unit_similarity": units[0].similarity,
            "unit_coverage": best_cov,
            "unit_missing": best_missing,
            "evidence_coverage": evidence_cov,
            "evidence_missing": evidence_missing,
            "typed_coverage": typed_cov,
            "typed_missing": typed_missing,
        }


def _heading(hit: ChunkHit) -> str:
    """The document title and section a chunk sits under."""
    return f"{hit.payload.title or ''}\n{hit.payload.section or ''}"
