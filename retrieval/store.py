"""The vector store interface: one index version per shard or collection, one current pointer.

Two backends implement it and pass the same contract tests (tests/retrieval/test_store_contract.py):
- `retrieval.edge_store.EdgeBackend`: the Qdrant engine in-process (qdrant-edge-py), the default;
- `retrieval.server_store.ServerBackend`: a Qdrant server through qdrant-client
  (`:memory:` in tests).

A version is written once (`create` → `upsert` … → `seal`) and never changed after `seal`.
Searching always takes a `ReadFilter` as a required keyword argument: there is no unfiltered
search path. A version holds a dense vector per chunk and, when built with one, a BM25 sparse
vector (named "bm25", IDF applied by the store); a search ranks by the dense vector, the sparse
one, or both fused (`Ranking`), with the permission filter inside every branch. Access that
changed after a version was built (a document's ACL, a quarantine) is part of that filter (see
retrieval/access.py), so it applies to old versions too.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

import numpy as np

from retrieval.errors import StoreError
from retrieval.payload import ACL, DOC_ID, SOURCE

# Payload fields that carry a keyword index, created before the first write.
INDEXED_FIELDS = (ACL, DOC_ID, SOURCE)
# The one among them whose index is a tenant index (Qdrant's is_tenant, not Clearance's tenants):
# when a version is sealed, the engine stores the chunks with the same ACL next to each other, so
# a filtered search reads the permitted vectors in runs rather than one at a time from all over
# the version (bench/query_latency.py, 100k chunks, 5% permitted: 3.0 -> 1.0 ms p50 dense,
# 7.3 -> 3.8 ms hybrid).
TENANT_FIELD = ACL
# The name of the sparse (BM25) vector in a version that has one.
SPARSE_VECTOR = "bm25"


class SearchMode(StrEnum):
    """What ranks the chunks: the embedding, BM25, or both fused."""

    DENSE = "dense"
    SPARSE = "sparse"
    HYBRID = "hybrid"


class Fusion(StrEnum):
    """How a hybrid search merges its two ranked lists.

    rrf: reciprocal rank fusion, the sum over the lists of 1 / ((rank + 1) / weight + k - 1),
    rank counted from 0 (Qdrant's formula; weighted when the weights differ); dbsf:
    distribution-based score fusion, each list's scores normalised by their mean and spread,
    then summed.
    """

    RRF = "rrf"
    DBSF = "dbsf"


@dataclass(frozen=True)
class Ranking:
    """How one search ranks: its mode and, for hybrid, how the two lists are fused.

    `weights` are (dense, sparse), used by RRF. `depth` is how many candidates each branch of a
    hybrid search contributes before fusion (at least the search's limit).
    """

    mode: SearchMode = SearchMode.DENSE
    fusion: Fusion = Fusion.RRF
    rrf_k: int = 60
    weights: tuple[float, float] = (1.0, 1.0)
    depth: int = 100


DENSE = Ranking()


# Fused and BM25 scores tie often (two chunks swapping ranks across the lists tie under RRF):
# a search asks the engine for this many more, breaks ties by similarity then id, and cuts.
TIE_MARGIN = 10


def break_ties(hits: list[Hit], limit: int) -> list[Hit]:
    """The best `limit` hits, equal scores ordered by similarity then point id, so the same
    chunks rank the same in every version and backend."""
    return sorted(hits, key=lambda h: (-h.score, -h.similarity, h.point_id))[:limit]


def scored_hit(point_id: str, score: float, payload: dict[str, Any] | None,
               stored_vector: Any, query: Sequence[float], ranking: Ranking) -> Hit:
    """A search result as a Hit: in a dense search the score is the similarity (the distance is
    cosine); otherwise the similarity is computed from the dense vector the point came back with
    (unnamed, or named "" among others). StoreError if it came back without one."""
    if ranking.mode is SearchMode.DENSE:
        return Hit(point_id, score, dict(payload or {}), score)
    if isinstance(stored_vector, dict):
        stored_vector = stored_vector.get("")
    if not isinstance(stored_vector, list):
        raise StoreError(f"point {point_id} came back without its dense vector")
    return Hit(point_id, score, dict(payload or {}), cosine_similarity(query, stored_vector))


def cosine_similarity(a: Sequence[float], b: Sequence[float]) -> float:
    """Cosine similarity of two dense vectors (0.0 if either is all zeros)."""
    va, vb = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    norm = float(np.linalg.norm(va) * np.linalg.norm(vb))
    return float(va @ vb) / norm if norm else 0.0


@dataclass(frozen=True)
class SparseVector:
    """Term indices and their weights (retrieval/bm25.py makes them)."""

    indices: tuple[int, ...]
    values: tuple[float, ...]


@dataclass(frozen=True)
class ReadFilter:
    """Which chunks one caller may get, applied inside the vector search.

    A chunk matches when its source is not in `exclude_sources`, its document is not in
    `exclude_docs`, and either its `acl` shares a principal with `principals` and its document
    is not in `acl_changed`, or its document is in `include_docs`. `acl_changed` holds the
    documents whose ACL changed after the version was built (their stored `acl` is stale);
    `include_docs` those of them that the caller may read under their ACL now. `only_docs`, when
    set, narrows the search to those documents (reading one document: `Retriever.document`).
    """

    principals: frozenset[str]
    acl_changed: frozenset[str] = frozenset()
    include_docs: frozenset[str] = frozenset()
    exclude_docs: frozenset[str] = frozenset()
    exclude_sources: frozenset[str] = frozenset()
    only_docs: frozenset[str] = frozenset()

    @property
    def matches_nothing(self) -> bool:
        return not self.principals and not (self.include_docs - self.exclude_docs)


@dataclass(frozen=True)
class StoredChunk:
    """One chunk as written to a version: its point id, its vector and its payload.

    The payload is a plain JSON object: what retrieval.payload.ChunkPayload.to_payload makes
    (the store filters on its `acl`, `doc_id` and `source`; the stores themselves need nothing
    else of it).
    """

    point_id: str  # a UUID string (uuid5 of doc id and chunk index)
    vector: Sequence[float]
    payload: dict[str, Any]
    sparse: SparseVector | None = None  # required in a version created with sparse=True


@dataclass(frozen=True)
class Hit:
    """One search result: the point id, its ranking score, its payload and its similarity.

    The payload is as stored; the retriever parses it (retrieval.payload.ChunkHit) and drops a
    hit whose payload does not parse.

    `score` is what ranked it (cosine similarity, BM25 or a fused score); `similarity` is always
    the cosine similarity of its dense vector to the query's, the measure of evidence strength.
    """

    point_id: str
    score: float
    payload: dict[str, Any] = field(default_factory=dict)
    similarity: float = 0.0


class VersionWriter(Protocol):
    """A version under construction. Only the building process holds one."""

    def upsert(self, chunks: Sequence[StoredChunk]) -> None: ...

    def seal(self) -> None:
        """Build indexes, flush to disk and close: the version is complete and read-only."""

    def abort(self) -> None:
        """Close and delete the half-built version."""


class VersionReader(Protocol):
    """A sealed version opened for search."""

    def search(
        self,
        vector: Sequence[float],
        *,
        access: ReadFilter,
        limit: int,
        sparse: SparseVector | None = None,
        ranking: Ranking = DENSE,
    ) -> list[Hit]:
        """The best chunks that `access` lets through (see ReadFilter), ranked by `ranking`.

        `vector` is the query's embedding (it gives every hit its similarity); `sparse` its BM25
        vector, required unless the ranking is dense. StoreError for a sparse or hybrid search
        of a version without sparse vectors. A filter that matches nothing returns no hits
        (never an unfiltered search).
        """

    def count(self) -> int: ...

    def iter_chunks(self) -> Iterator[StoredChunk]:
        """Every chunk with its vector and payload (used to reuse unchanged documents)."""

    def close(self) -> None: ...


class VectorBackend(Protocol):
    """Where versions live and which one is current."""

    def create(self, version_id: str, *, dim: int, sparse: bool = False) -> VersionWriter:
        """Start a new, empty version with keyword indexes on INDEXED_FIELDS, and a sparse
        vector with the IDF modifier when `sparse` (then every chunk must carry one)."""

    def open(self, version_id: str) -> VersionReader:
        """Open a sealed version for search; StoreError if it does not exist."""

    def check_readable(self, version_id: str) -> None:
        """StoreError if this process could not open and search the version safely; a server
        calls it before `open`. The embedded engine memory-maps a version's files, and a
        filesystem that cannot back the maps (full, or without mmap support) kills the process
        with SIGBUS: so a child process loads the version first."""

    def versions(self) -> list[str]:
        """Ids of the sealed versions present in the store."""

    def drop(self, version_id: str) -> None: ...

    def current(self) -> str | None:
        """The version now served, or None before the first switch."""

    def switch(self, version_id: str) -> None:
        """Make `version_id` current, atomically (a pointer file or a server alias)."""

    def remove_abandoned(self) -> list[str]:
        """Delete builds whose builder died (never a live build or a sealed version)."""

    def close(self) -> None: ...
