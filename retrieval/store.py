"""The vector store interface: one index version per shard or collection, one current pointer.

Two backends implement it and pass the same contract tests (tests/retrieval/test_store_contract.py):
- `retrieval.edge_store.EdgeBackend`: the Qdrant engine in-process (qdrant-edge-py), the default;
- `retrieval.server_store.ServerBackend`: a Qdrant server through qdrant-client
  (`:memory:` in tests).

A version is written once (`create` → `upsert` … → `seal`) and never changed after `seal`.
Searching always takes a `ReadFilter` as a required keyword argument: there is no unfiltered
search path. Access that changed after a version was built (a document's ACL, a quarantine) is
part of that filter (see retrieval/access.py), so it applies to old versions too.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

# Payload fields that carry a keyword index, created before the first write.
INDEXED_FIELDS = ("acl", "doc_id", "source")


@dataclass(frozen=True)
class ReadFilter:
    """Which chunks one caller may get, applied inside the vector search.

    A chunk matches when its source is not in `exclude_sources`, its document is not in
    `exclude_docs`, and either its `acl` shares a principal with `principals` and its document
    is not in `acl_changed`, or its document is in `include_docs`. `acl_changed` holds the
    documents whose ACL changed after the version was built (their stored `acl` is stale);
    `include_docs` those of them that the caller may read under their ACL now.
    """

    principals: frozenset[str]
    acl_changed: frozenset[str] = frozenset()
    include_docs: frozenset[str] = frozenset()
    exclude_docs: frozenset[str] = frozenset()
    exclude_sources: frozenset[str] = frozenset()

    @property
    def matches_nothing(self) -> bool:
        return not self.principals and not (self.include_docs - self.exclude_docs)


@dataclass(frozen=True)
class StoredChunk:
    """One chunk as written to a version: its point id, its vector and its payload.

    The payload always holds `acl` (a list of principal strings), `doc_id`, `source` and `text`,
    plus the citation metadata described in ingest/tagging.py.
    """

    point_id: str  # a UUID string (uuid5 of doc id and chunk index)
    vector: Sequence[float]
    payload: dict[str, Any]


@dataclass(frozen=True)
class Hit:
    """One search result: the point id, its similarity score and its payload."""

    point_id: str
    score: float
    payload: dict[str, Any] = field(default_factory=dict)


class VersionWriter(Protocol):
    """A version under construction. Only the building process holds one."""

    def upsert(self, chunks: Sequence[StoredChunk]) -> None: ...

    def seal(self) -> None:
        """Build indexes, flush to disk and close: the version is complete and read-only."""

    def abort(self) -> None:
        """Close and delete the half-built version."""


class VersionReader(Protocol):
    """A sealed version opened for search."""

    def search(self, vector: Sequence[float], *, access: ReadFilter, limit: int) -> list[Hit]:
        """Nearest chunks that `access` lets through (see ReadFilter).

        A filter that matches nothing returns no hits (never an unfiltered search).
        """

    def count(self) -> int: ...

    def iter_chunks(self) -> Iterator[StoredChunk]:
        """Every chunk with its vector and payload (used to reuse unchanged documents)."""

    def close(self) -> None: ...


class VectorBackend(Protocol):
    """Where versions live and which one is current."""

    def create(self, version_id: str, *, dim: int) -> VersionWriter:
        """Start a new, empty version with keyword indexes on INDEXED_FIELDS."""

    def open(self, version_id: str) -> VersionReader:
        """Open a sealed version for search; StoreError if it does not exist."""

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
