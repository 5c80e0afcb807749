"""Whether questions that have a readable answer are answered, and the others abstain.

Asked as the chat asks (the Retriever at the chat's default top_k, then the answerability
decision of answers/answerability.py on the same hits), by the users of the permission-aware
BEIR run (evaluation/run.py): a query is answerable for a user who may read one of its relevant
documents, and should abstain for the others.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from answers.answerability import FEATURES, AnswerabilityJudge
from evaluation.beir import BeirDataset, load_beir
from retrieval.embedder import Embedder
from retrieval.retriever import Retriever
from retrieval.scope import Scope

CHAT_TOP_K = 5  # /v1/chat's default top_k (api/schemas.py)


@dataclass
class AnswerabilityScores:
    """Counts of one user's decisions."""

    answerable: int = 0
    answered: int = 0  # of the answerable
    unanswerable: int = 0
    abstained: int = 0  # of the unanswerable
    abstained_answerable: int = 0  # abstentions on answerable questions (false abstentions)

    def add(self, answerable: bool, answered: bool) -> None:
        if answerable:
            self.answerable += 1
            self.answered += answered
            self.abstained_answerable += not answered
        else:
            self.unanswerable += 1
            self.abstained += not answered

    def merge(self, other: AnswerabilityScores) -> None:
        for name in ("answerable", "answered", "unanswerable", "abstained",
                     "abstained_answerable"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def lines(self, tag: str) -> list[str]:
        """`name: value` lines: the answer and abstention rates, and the abstentions'
        precision (how many abstentions were right) and recall (how many of the questions
        that should abstain did)."""
        abstentions = self.abstained + self.abstained_answerable
        precision = self.abstained / abstentions if abstentions else 1.0
        recall = self.abstained / self.unanswerable if self.unanswerable else 1.0
        answered = self.answered / self.answerable if self.answerable else 1.0
        return [f"answerable questions{tag}: {self.answerable}",
                f"answered when answerable{tag}: {answered:.4f}",
                f"unanswerable questions{tag}: {self.unanswerable}",
                f"abstained when unanswerable{tag}: {recall:.4f}",
                f"abstention precision{tag}: {precision:.4f}",
                f"abstention recall{tag}: {recall:.4f}"]


def has_readable_answer(dataset: BeirDataset, query_id: str,
                        may_read: Callable[[str], bool]) -> bool:
    """Whether the user may read one of the query's relevant documents: then the question
    should be answered, otherwise abstained."""
    return any(r > 0 and d in dataset.corpus and may_read(d)
               for d, r in dataset.qrels[query_id].items())


@dataclass(frozen=True)
class Asked:
    user: str
    query_id: str
    answerable: bool
    answered: bool
    probability: float
    features: list[float] | None  # None: no evidence reached retrieval.min_score


def ask(retriever: Retriever, judge: AnswerabilityJudge, scope: Scope, user: str,
        query_id: str, text: str, *, answerable: bool, min_score: float) -> Asked:
    """One question asked as the chat asks it, and the decision on it."""
    hits = retriever.search(text, scope=scope, top_k=CHAT_TOP_K).hits
    judgement = judge.decide(text, hits, min_score=min_score)
    features = ([judgement.features[f] for f in FEATURES] if judgement.evidence else None)
    return Asked(user, query_id, answerable, judgement.answerable, judgement.probability,
                 features)


@dataclass
class ScifactDeployment:
    """A BEIR dataset ingested with the permission-aware run's groups and users."""

    dataset: BeirDataset
    retriever: Retriever
    scopes: dict[str, Scope]
    readable: dict[str, frozenset[int]]
    min_score: float
    close: Callable[[], None] = field(repr=False, default=lambda: None)


def open_scifact(path: Path, root: Path, embedder: Embedder, *, split: str
                 ) -> ScifactDeployment:
    """The dataset at `path` ingested under `root` (reused when `root` already holds it)."""
    from application.services import open_catalog, open_document_access, open_policy
    from application.settings import load_settings
    from evaluation.run import GROUPS, PERMISSION_USERS, write_deployment
    from ingest.pipeline import build_index_version
    from retrieval.bm25 import Bm25Encoder
    from retrieval.scope import scope_for

    dataset = load_beir(path, split)
    config = root / "clearance.toml"
    if not config.exists():
        write_deployment(dataset, root, PERMISSION_USERS, GROUPS)
    settings = load_settings(config)
    catalog = open_catalog(settings)
    if catalog.current() is None:
        build_index_version(settings.sources, settings.ingest, catalog=catalog,
                            embedder=embedder, bm25=Bm25Encoder(settings.retrieval.bm25))
    retriever = Retriever(catalog, embedder, open_document_access(settings, catalog),
                          bm25=Bm25Encoder(settings.retrieval.bm25),
                          ranking=settings.retrieval.ranking())
    policy = open_policy(settings)

    def close() -> None:
        retriever.close()
        catalog.backend.close()

    return ScifactDeployment(
        dataset, retriever, {u: scope_for(policy, u) for u in PERMISSION_USERS},
        {u: frozenset(g) for u, g in PERMISSION_USERS.items()}, settings.retrieval.min_score,
        close)


def ask_scifact(deployment: ScifactDeployment, judge: AnswerabilityJudge, *,
                max_queries: int | None = None) -> list[Asked]:
    """Every query of the split asked by every user of the permission-aware run."""
    from evaluation.run import GROUPS, group_of

    data = deployment.dataset
    asked: list[Asked] = []
    for user, scope in deployment.scopes.items():
        readable = deployment.readable[user]

        def may_read(doc_id: str, held: frozenset[int] = readable) -> bool:
            return group_of(doc_id) % GROUPS in held

        for query_id, text in list(data.queries.items())[:max_queries]:
            answerable = has_readable_answer(data, query_id, may_read)
            asked.append(ask(deployment.retriever, judge, scope, user, query_id, text,
                             answerable=answerable, min_score=deployment.min_score))
    return asked
