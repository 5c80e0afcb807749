"""Evaluate retrieval on a BEIR dataset through the product's own path.

The corpus is written as one text file per document into a throw-away folder, ingested by the
real pipeline (parser, chunker, embedder, embedded Qdrant) under a generated config and policy,
and every query is answered by the real Retriever with a caller's scope from Casbin: the figures
are those of the service, permission filter included. Chunks are folded into documents (a
document ranks where its best chunk ranks).

Several rankings are scored over the one ingested version (dense, BM25, hybrid fusions; see
RANKINGS), side by side; the deployment's default is named in the output.

Permission-aware mode gives every document a synthetic group (a hash of its id, so the same
split every run), asks each query as several users holding different groups, scores each user
against the judgements restricted to the documents that user may read, and counts as a leak
every returned document of a group the user does not hold, computed from the assignment alone.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from statistics import fmean

from answers.answerability import AnswerabilityJudge
from evaluation.answerability import AnswerabilityScores, ask, has_readable_answer
from evaluation.beir import BeirDataset
from evaluation.metrics import mrr_at_k, ndcg_at_k, recall_at_k
from retrieval.bm25 import Bm25Encoder
from retrieval.embedder import Embedder
from retrieval.payload import ChunkHit
from retrieval.retriever import Retriever
from retrieval.scope import Scope
from retrieval.settings import RetrievalSettings
from retrieval.store import Fusion, Ranking, SearchMode

GROUPS = 4
# user → the synthetic groups they hold
PERMISSION_USERS: dict[str, tuple[int, ...]] = {
    "reader-all": (0, 1, 2, 3),
    "reader-two": (0, 1),
    "reader-one": (2,),
}
PLAIN_USERS: dict[str, tuple[int, ...]] = {"reader": (0,)}
CHUNKS_PER_QUERY = 200  # enough chunks to rank 100 documents, for Recall@100
# nDCG@10 and MRR@10 come from a search as deep as the API allows (top_k 50): a hybrid search's
# candidates per branch grow with its limit, and fused scores with them, so the first ten are
# ranked exactly as the service would rank them for a caller.
CHUNKS_FOR_TOP10 = 50
_DEFAULT = RetrievalSettings()


def ranking_name(ranking: Ranking) -> str:
    """dense, sparse, or hybrid-<fusion>, with the RRF weights (dense:sparse) when not equal."""
    if ranking.mode is not SearchMode.HYBRID:
        return str(ranking.mode)
    dense, sparse = ranking.weights
    equal = ranking.fusion is not Fusion.RRF or dense == sparse
    weights = "" if equal else f"-{dense:g}:{sparse:g}"
    return f"hybrid-{ranking.fusion}{weights}"


# What `clearance eval beir` compares by default; the configured ranking is always added.
RANKINGS = {ranking_name(r): r for r in (
    _DEFAULT.ranking(SearchMode.DENSE),
    _DEFAULT.ranking(SearchMode.SPARSE),
    Ranking(SearchMode.HYBRID, Fusion.RRF, weights=(1.0, 1.0)),
    Ranking(SearchMode.HYBRID, Fusion.RRF, weights=(2.0, 1.0)),
    Ranking(SearchMode.HYBRID, Fusion.RRF, weights=(1.0, 2.0)),
    Ranking(SearchMode.HYBRID, Fusion.DBSF),
)}
REFERENCES = {"scifact": {"bm25 ndcg@10 (published)": 0.665,
                          "all-MiniLM-L6-v2 ndcg@10 (published)": 0.645}}


@dataclass
class UserScores:
    queries: int = 0
    ndcg10: list[float] = field(default_factory=list)
    recall100: list[float] = field(default_factory=list)
    mrr10: list[float] = field(default_factory=list)
    leaks: int = 0
    returned: int = 0


@dataclass
class EvalReport:
    dataset: str
    documents: int
    chunks: int
    ingest_s: float
    search_s: float
    # ranking name → user → scores
    scores: dict[str, dict[str, UserScores]]
    default_ranking: str
    references: dict[str, float]
    # user → whether questions were answered or abstained, as the chat decides (default ranking)
    answerability: dict[str, AnswerabilityScores] = field(default_factory=dict)

    @property
    def users(self) -> dict[str, UserScores]:
        """The scores of the default ranking, by user."""
        return self.scores[self.default_ranking]

    @property
    def leaks(self) -> int:
        return sum(u.leaks for users in self.scores.values() for u in users.values())

    def lines(self) -> list[str]:
        out = [f"dataset: {self.dataset}", f"documents: {self.documents}",
               f"chunks: {self.chunks}", f"ingest seconds: {self.ingest_s:.1f}",
               f"search seconds: {self.search_s:.1f}",
               f"default ranking: {self.default_ranking}"]
        for name, users in self.scores.items():
            for user, s in users.items():
                tag = f" [{name}]" if len(users) == 1 else f" [{name}, {user}]"
                out += [f"queries{tag}: {s.queries}",
                        f"ndcg@10{tag}: {fmean(s.ndcg10) if s.ndcg10 else 0.0:.4f}",
                        f"recall@100{tag}: {fmean(s.recall100) if s.recall100 else 0.0:.4f}",
                        f"mrr@10{tag}: {fmean(s.mrr10) if s.mrr10 else 0.0:.4f}"]
        for user, a in self.answerability.items():
            out += a.lines(f" [{user}]" if len(self.answerability) > 1 else "")
        if len(self.answerability) > 1:
            total = AnswerabilityScores()
            for a in self.answerability.values():
                total.merge(a)
            out += total.lines(" [all users]")
        out += [f"{name}: {value}" for name, value in self.references.items()]
        returned = sum(u.returned for users in self.scores.values() for u in users.values())
        out.append(f"leaks: {self.leaks} in {returned} returned documents")
        return out


def group_of(doc_id: str) -> int:
    return int(hashlib.sha256(doc_id.encode("utf-8")).hexdigest(), 16) % GROUPS


def _file_name(doc_id: str) -> str:
    return hashlib.sha256(doc_id.encode("utf-8")).hexdigest()[:16] + ".txt"


def write_deployment(dataset: BeirDataset, root: Path, users: dict[str, tuple[int, ...]],
                     groups: int) -> tuple[Path, dict[str, str]]:
    """The corpus as files under root/docs/g<k>/, a config and a policy; returns the config and
    the map from file path (relative to the source) back to the dataset's doc id."""
    docs = root / "docs"
    paths: dict[str, str] = {}
    for doc_id, (title, text) in dataset.corpus.items():
        rel = f"g{group_of(doc_id) % groups}/{_file_name(doc_id)}"
        target = docs / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(f"{title}\n\n{text}\n" if title else f"{text}\n", encoding="utf-8")
        paths[rel] = doc_id
    policy = "".join(f"g, user:{user}, group:g{k}\n" for user, held in users.items()
                     for k in held)
    (root / "policy.csv").write_text(policy, encoding="utf-8")
    rules = ", ".join(f'{{ glob = "g{k}/*", allow = ["group:g{k}"] }}' for k in range(groups))
    config = root / "clearance.toml"
    config.write_text(
        f'data_dir = "data"\ncasbin_policy = "policy.csv"\n\n[[sources]]\nname = "corpus"\n'
        f'path = "docs"\nowner = "evaluation"\nacl = [{rules}]\n', encoding="utf-8")
    return config, paths


def evaluate(dataset: BeirDataset, root: Path, *, embedder: Embedder, permissions: bool,
             max_queries: int | None = None, rankings: Sequence[str] | None = None,
             progress: Callable[[str], None] = lambda _: None) -> EvalReport:
    """Ingest the corpus once, then score each ranking in `rankings` (names from RANKINGS;
    default all) and the deployment's default ranking, as each user."""
    from application.services import open_catalog, open_document_access, open_policy
    from application.settings import load_settings
    from ingest.pipeline import build_index_version
    from retrieval.scope import scope_for

    users = PERMISSION_USERS if permissions else PLAIN_USERS
    groups = GROUPS if permissions else 1
    config, paths = write_deployment(dataset, root, users, groups)
    settings = load_settings(config)
    catalog = open_catalog(settings)
    started = time.monotonic()
    progress(f"ingesting {len(dataset.corpus)} documents into {root}")
    report = build_index_version(settings.sources, settings.ingest, catalog=catalog,
                                 embedder=embedder, bm25=Bm25Encoder(settings.retrieval.bm25))
    ingest_s = time.monotonic() - started
    if report.errors:
        progress(f"{len(report.errors)} documents failed to parse, e.g. {report.errors[0]}")

    default = settings.retrieval.ranking()
    chosen = {name: RANKINGS[name] for name in (rankings or RANKINGS)}
    chosen.setdefault(ranking_name(default), default)
    access = open_document_access(settings, catalog)
    policy = open_policy(settings)
    queries = list(dataset.queries.items())[:max_queries]
    scores = {name: {user: UserScores() for user in users} for name in chosen}
    answerability = {user: AnswerabilityScores() for user in users}
    judge = AnswerabilityJudge(embedder)
    started = time.monotonic()
    try:
        for name, ranking in chosen.items():
            retriever = Retriever(catalog, embedder, access,
                                  bm25=Bm25Encoder(settings.retrieval.bm25), ranking=ranking)
            try:
                for user, held in users.items():
                    readable = frozenset(held) if permissions else frozenset({0})
                    scope = scope_for(policy, user)
                    _score_user(scores[name][user], retriever, scope,
                                queries, dataset, paths, readable, groups)
                    if ranking == default:
                        _score_answerability(answerability[user], retriever, judge, scope, user,
                                             queries, dataset, readable, groups,
                                             settings.retrieval.min_score)
                    progress(f"{name}, {user}: {scores[name][user].queries} queries scored")
            finally:
                retriever.close()
    finally:
        catalog.backend.close()
    return EvalReport(dataset.name, report.documents, report.chunks, ingest_s,
                      time.monotonic() - started, scores, ranking_name(default),
                      REFERENCES.get(dataset.name.lower(), {}), answerability)


def _score_answerability(s: AnswerabilityScores, retriever: Retriever,
                         judge: AnswerabilityJudge, scope: Scope, user: str,
                         queries: list[tuple[str, str]], dataset: BeirDataset,
                         readable: frozenset[int], groups: int, min_score: float) -> None:
    """Each query asked as the chat asks it: answered when the user may read one of its relevant
    documents, abstained otherwise."""
    for query_id, text in queries:
        answerable = has_readable_answer(dataset, query_id,
                                         lambda d: group_of(d) % groups in readable)
        asked = ask(retriever, judge, scope, user, query_id, text, answerable=answerable,
                    min_score=min_score)
        s.add(answerable, asked.answered)


def _score_user(s: UserScores, retriever: Retriever, scope: Scope,
                queries: list[tuple[str, str]], dataset: BeirDataset, paths: dict[str, str],
                readable: frozenset[int], groups: int) -> None:
    def may_read(doc_id: str) -> bool:
        return group_of(doc_id) % groups in readable

    for query_id, text in queries:
        judged = {d: r for d, r in dataset.qrels[query_id].items()
                  if d in dataset.corpus and may_read(d)}
        deep = _documents(retriever.search(text, scope=scope, top_k=CHUNKS_PER_QUERY).hits, paths)
        top = _documents(retriever.search(text, scope=scope, top_k=CHUNKS_FOR_TOP10).hits, paths)
        for ranked in (deep, top):
            s.returned += len(ranked)
            s.leaks += sum(1 for d in ranked if not may_read(d))
        if not any(r > 0 for r in judged.values()):
            continue  # nothing this user may read is relevant: not scored
        s.queries += 1
        s.ndcg10.append(ndcg_at_k(top, judged, 10))
        s.recall100.append(recall_at_k(deep, judged, 100))
        s.mrr10.append(mrr_at_k(top, judged, 10))


def _documents(hits: list[ChunkHit], paths: dict[str, str]) -> list[str]:
    """Dataset doc ids in the order of their best chunk."""
    ranked: list[str] = []
    seen: set[str] = set()
    for hit in hits:
        rel = hit.payload.doc_id.split(":", 1)[-1]
        doc = paths.get(rel)
        if doc is not None and doc not in seen:
            seen.add(doc)
            ranked.append(doc)
    return ranked
