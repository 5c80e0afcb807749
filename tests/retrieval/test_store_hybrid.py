"""The sparse (BM25) and hybrid half of the VectorBackend contract, on every backend.

Rankings are checked against oracles computed here from the documented formulas, over the
chunks the caller may read: BM25 with the store's IDF, `ln(1 + (N - n + 0.5) / (n + 0.5))` over
the permitted chunks only, and reciprocal rank fusion `1 / ((rank + 1) / weight + k - 1)`.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence

import numpy as np
import pytest

from retrieval.bm25 import Bm25Encoder
from retrieval.errors import StoreError
from retrieval.store import (
    Fusion,
    Hit,
    Ranking,
    ReadFilter,
    SearchMode,
    SparseVector,
    StoredChunk,
    VectorBackend,
    break_ties,
    cosine_similarity,
)

DIM = 16
WORDS = [
    "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "theta", "iota", "kappa", "lambda",
    "sigma", "omega", "river", "mountain", "forest", "desert", "ocean", "valley", "glacier",
    "canyon", "island", "meadow",
]
GROUPS = ["group:a", "group:b", "group:c"]
HYBRID = Ranking(SearchMode.HYBRID, Fusion.RRF, rrf_k=60, depth=500)
SPARSE = Ranking(SearchMode.SPARSE)
ENCODER = Bm25Encoder()


def _chunks(n: int, seed: int = 5) -> list[StoredChunk]:
    """n chunks of random words (so terms have varied document frequencies), random unit
    vectors and one of three groups; a few share a rare word."""
    rng = np.random.default_rng(seed)
    chunks = []
    for i in range(n):
        words = list(rng.choice(WORDS, size=int(rng.integers(3, 12))))
        if i % 17 == 0:
            words.append("zyzzyva")
        text = " ".join(words)
        vector = rng.normal(size=DIM)
        vector /= np.linalg.norm(vector)
        payload = {"acl": [GROUPS[i % 3]], "doc_id": f"doc-{i // 4}", "source": "fixtures",
                   "text": text}
        chunks.append(StoredChunk(str(uuid.uuid5(uuid.NAMESPACE_URL, f"h{i}")),
                                  vector.tolist(), payload, ENCODER.encode_document(text)))
    return chunks


def _build(backend: VectorBackend, version_id: str, chunks: Sequence[StoredChunk]) -> None:
    writer = backend.create(version_id, dim=DIM, sparse=True)
    for start in range(0, len(chunks), 100):
        writer.upsert(chunks[start : start + 100])
    writer.seal()


def _bm25_oracle(chunks: Sequence[StoredChunk], query: SparseVector) -> dict[str, float]:
    """BM25 score of every chunk given (all of them make the IDF corpus) with a term in common."""
    n = len(chunks)
    df = {t: sum(1 for c in chunks if c.sparse and t in c.sparse.indices)
          for t in query.indices}
    scores: dict[str, float] = {}
    for c in chunks:
        assert c.sparse is not None
        weights = dict(zip(c.sparse.indices, c.sparse.values, strict=True))
        score = sum(q * weights[t] * math.log(1 + (n - df[t] + 0.5) / (df[t] + 0.5))
                    for t, q in zip(query.indices, query.values, strict=True) if t in weights)
        if score > 0:
            scores[c.point_id] = score
    return scores


def _ranked(scores: dict[str, float]) -> list[str]:
    return [p for p, _ in sorted(scores.items(), key=lambda kv: -kv[1])]


def _permitted(chunks: Sequence[StoredChunk], principals: set[str]) -> list[StoredChunk]:
    return [c for c in chunks if principals & set(c.payload["acl"])]


@pytest.mark.parametrize("principals", [{"group:a"}, {"group:a", "group:b"}, set(GROUPS)],
                         ids=["one-group", "two-groups", "all"])
def test_sparse_search_is_bm25_with_idf_over_what_the_caller_may_read(
    backend: VectorBackend, principals: set[str]
) -> None:
    chunks = _chunks(240)
    _build(backend, "v1", chunks)
    permitted = _permitted(chunks, principals)
    reader = backend.open("v1")
    try:
        for text in ("zyzzyva river", "alpha omega glacier", "canyon"):
            query = ENCODER.encode_query(text)
            expected = _bm25_oracle(permitted, query)
            assert expected  # each query matches something the caller may read
            hits = reader.search([1.0] + [0.0] * (DIM - 1), access=ReadFilter(
                frozenset(principals)), limit=500, sparse=query, ranking=SPARSE)
            got = {h.point_id: h.score for h in hits}
            assert set(got) == set(expected)
            for point_id, score in expected.items():
                assert got[point_id] == pytest.approx(score, rel=1e-4)
            assert [h.score for h in hits] == sorted(got.values(), reverse=True)
    finally:
        reader.close()


def test_idf_is_not_computed_over_chunks_the_caller_may_not_read(backend: VectorBackend) -> None:
    chunks = _chunks(240)
    _build(backend, "v1", chunks)
    query = ENCODER.encode_query("zyzzyva")
    reader = backend.open("v1")
    try:
        mine = reader.search([1.0] + [0.0] * (DIM - 1), access=ReadFilter(frozenset({"group:a"})),
                             limit=50, sparse=query, ranking=SPARSE)
    finally:
        reader.close()
    over_mine = _bm25_oracle(_permitted(chunks, {"group:a"}), query)
    over_all = {p: s for p, s in _bm25_oracle(chunks, query).items() if p in over_mine}
    assert mine and over_mine.keys() == {h.point_id for h in mine}
    # The two corpora give different IDFs: the score is the one over the caller's chunks.
    for hit in mine:
        assert hit.score == pytest.approx(over_mine[hit.point_id], rel=1e-4)
        assert hit.score != pytest.approx(over_all[hit.point_id], rel=1e-3)


@pytest.mark.parametrize("weights", [(1.0, 1.0), (1.0, 3.0)], ids=["rrf", "weighted-rrf"])
def test_hybrid_search_fuses_both_rankings_by_rrf(
    backend: VectorBackend, weights: tuple[float, float]
) -> None:
    chunks = _chunks(240)
    _build(backend, "v1", chunks)
    principals = {"group:a", "group:c"}
    permitted = _permitted(chunks, principals)
    ranking = Ranking(SearchMode.HYBRID, Fusion.RRF, rrf_k=60, weights=weights, depth=500)
    rng = np.random.default_rng(3)
    reader = backend.open("v1")
    try:
        for text in ("zyzzyva river", "forest meadow island"):
            vector = rng.normal(size=DIM)
            vector /= np.linalg.norm(vector)
            query = ENCODER.encode_query(text)
            access = ReadFilter(frozenset(principals))
            dense_rank = sorted(permitted, key=lambda c: -float(np.dot(c.vector, vector)))
            bm25 = _bm25_oracle(permitted, query)
            # Chunks with equal BM25 scores may take any of their tied ranks in the engine.
            ordered = sorted(bm25.values(), reverse=True)
            tied_ranks = {
                p: [i for i, v in enumerate(ordered) if v == pytest.approx(score, rel=1e-5)]
                for p, score in bm25.items()
            }
            expected = {}
            for pos, chunk in enumerate(dense_rank):
                base = 1 / ((pos + 1) / weights[0] + ranking.rrf_k - 1)
                ranks = tied_ranks.get(chunk.point_id)
                extra = [1 / ((r + 1) / weights[1] + ranking.rrf_k - 1) for r in ranks or []]
                expected[chunk.point_id] = (base + min(extra, default=0.0),
                                            base + max(extra, default=0.0))
            hits = reader.search(vector.tolist(), access=access, limit=20, sparse=query,
                                 ranking=ranking)
            assert len(hits) == 20
            for hit in hits:
                assert principals & set(hit.payload["acl"])
                low, high = expected[hit.point_id]
                assert low * (1 - 1e-4) <= hit.score <= high * (1 + 1e-4)
                stored = next(c for c in chunks if c.point_id == hit.point_id)
                assert hit.similarity == pytest.approx(
                    cosine_similarity(vector.tolist(), stored.vector), abs=1e-5)
            # No chunk left out could have scored above the last one returned.
            returned = {h.point_id for h in hits}
            best_left_out = max(low for p, (low, _) in expected.items() if p not in returned)
            assert hits[-1].score >= best_left_out * (1 - 1e-4)
            assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    finally:
        reader.close()


def test_dbsf_hybrid_returns_only_permitted_chunks_from_both_branches(
    backend: VectorBackend,
) -> None:
    chunks = _chunks(240)
    _build(backend, "v1", chunks)
    rare = [c.point_id for c in _permitted(chunks, {"group:b"}) if "zyzzyva" in c.payload["text"]]
    reader = backend.open("v1")
    try:
        hits = reader.search(chunks[1].vector, access=ReadFilter(frozenset({"group:b"})),
                             limit=10, sparse=ENCODER.encode_query("zyzzyva"),
                             ranking=Ranking(SearchMode.HYBRID, Fusion.DBSF, depth=50))
    finally:
        reader.close()
    assert hits and all(h.payload["acl"] == ["group:b"] for h in hits)
    assert chunks[1].point_id in {h.point_id for h in hits}  # the dense branch's best
    assert set(rare) <= {h.point_id for h in hits}  # the sparse branch's matches


@pytest.mark.parametrize("ranking", [HYBRID, SPARSE], ids=["hybrid", "sparse"])
@pytest.mark.parametrize(
    "access",
    [
        ReadFilter(frozenset({"group:a"}), acl_changed=frozenset({"doc-0", "doc-3"}),
                   include_docs=frozenset({"doc-1"})),
        ReadFilter(frozenset(), acl_changed=frozenset({"doc-4"}),
                   include_docs=frozenset({"doc-4", "doc-5"})),
        ReadFilter(frozenset(GROUPS), exclude_docs=frozenset({"doc-6", "doc-7"}),
                   exclude_sources=frozenset({"other"})),
        ReadFilter(frozenset(GROUPS), exclude_sources=frozenset({"fixtures"})),
        ReadFilter(frozenset()),
    ],
    ids=["acl-changed", "by-id-only", "excluded-docs", "excluded-source", "nothing"],
)
def test_every_branch_applies_the_whole_read_filter(
    backend: VectorBackend, access: ReadFilter, ranking: Ranking
) -> None:
    chunks = _chunks(120)
    _build(backend, "v1", chunks)
    admitted = set()
    for c in chunks:
        doc = c.payload["doc_id"]
        if doc in access.exclude_docs or c.payload["source"] in access.exclude_sources:
            continue
        if (access.principals & set(c.payload["acl"]) and doc not in access.acl_changed) or (
                doc in access.include_docs):
            admitted.add(c.point_id)
    # Every word, so the sparse branch alone matches every chunk.
    query = ENCODER.encode_query(" ".join(WORDS))
    reader = backend.open("v1")
    try:
        got = {h.point_id for h in reader.search(chunks[0].vector, access=access, limit=500,
                                                  sparse=query, ranking=ranking)}
    finally:
        reader.close()
    assert got == admitted


def test_a_query_without_terms(backend: VectorBackend) -> None:
    chunks = _chunks(60)
    _build(backend, "v1", chunks)
    empty = ENCODER.encode_query("the and of")  # stop words only
    assert empty.indices == ()
    access = ReadFilter(frozenset(GROUPS))
    reader = backend.open("v1")
    try:
        assert reader.search(chunks[0].vector, access=access, limit=5, sparse=empty,
                             ranking=SPARSE) == []
        hybrid = reader.search(chunks[0].vector, access=access, limit=5, sparse=empty,
                               ranking=HYBRID)
    finally:
        reader.close()
    assert hybrid[0].point_id == chunks[0].point_id  # the dense branch alone
    assert hybrid[0].similarity == pytest.approx(1.0, abs=1e-5)


def test_dense_search_of_a_sparse_version_gives_similarity_equal_to_score(
    backend: VectorBackend,
) -> None:
    chunks = _chunks(30)
    _build(backend, "v1", chunks)
    reader = backend.open("v1")
    try:
        hits = reader.search(chunks[2].vector, access=ReadFilter(frozenset(GROUPS)), limit=5)
    finally:
        reader.close()
    assert hits[0].point_id == chunks[2].point_id
    assert all(h.similarity == h.score for h in hits)


def test_iter_chunks_returns_sparse_vectors(backend: VectorBackend) -> None:
    chunks = _chunks(50)
    _build(backend, "v1", chunks)
    reader = backend.open("v1")
    try:
        stored = {c.point_id: c for c in reader.iter_chunks()}
    finally:
        reader.close()
    for chunk in chunks:
        got = stored[chunk.point_id].sparse
        assert chunk.sparse is not None and got is not None
        assert dict(zip(got.indices, got.values, strict=True)) == pytest.approx(
            dict(zip(chunk.sparse.indices, chunk.sparse.values, strict=True)))


def test_sparse_search_of_a_dense_only_version_is_a_store_error(backend: VectorBackend) -> None:
    chunks = [StoredChunk(c.point_id, c.vector, c.payload) for c in _chunks(10)]
    writer = backend.create("v1", dim=DIM)
    writer.upsert(chunks)
    writer.seal()
    reader = backend.open("v1")
    try:
        with pytest.raises(StoreError):
            reader.search(chunks[0].vector, access=ReadFilter(frozenset(GROUPS)), limit=5,
                          sparse=ENCODER.encode_query("river"), ranking=HYBRID)
    finally:
        reader.close()


def test_a_sparse_version_refuses_a_chunk_without_its_sparse_vector(
    backend: VectorBackend,
) -> None:
    chunk = _chunks(1)[0]
    writer = backend.create("v1", dim=DIM, sparse=True)
    try:
        with pytest.raises(StoreError, match="no sparse vector"):
            writer.upsert([StoredChunk(chunk.point_id, chunk.vector, chunk.payload)])
    finally:
        writer.abort()


def test_equal_scores_rank_by_similarity_then_id_whatever_order_they_came_in() -> None:
    hits = [Hit("b", 0.5, {}, 0.2), Hit("a", 0.5, {}, 0.2), Hit("c", 0.5, {}, 0.9),
            Hit("d", 0.7, {}, 0.1), Hit("e", 0.1, {}, 1.0)]
    expected = ["d", "c", "a", "b"]
    assert [h.point_id for h in break_ties(hits, 4)] == expected
    assert [h.point_id for h in break_ties(list(reversed(hits)), 4)] == expected
