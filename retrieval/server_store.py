"""The vector store on a Qdrant server through qdrant-client: a collection per version, an alias.

The only module that imports `qdrant_client`. Each version is the collection
`{prefix}_{version_id}`; the alias `{prefix}_current` names the current one and is moved atomically
with `update_collection_aliases`.

Sealed or not is kept in the collection's own metadata (Qdrant >= 1.16; local mode too):
`create` writes `{"clearance_state": "building", ...}` in the same call that creates the
collection, and `seal` changes it to "sealed". Qdrant cannot rename a collection, and a separate
marker (a collection or a point) could disagree with the collection it describes; metadata lives
and dies with the collection. `versions()` lists only collections whose metadata says sealed and
names this prefix and version id, so another prefix sharing the server is never mistaken for ours.

A build that dies leaves its collection in state "building". There is no lock a dead client
would drop, so a builder instead stamps `clearance_heartbeat` (Unix time) in the metadata when it
creates the collection and again at most every minute while it writes and while seal() waits
for indexing. `remove_abandoned()` deletes building collections of this prefix whose heartbeat
is older than an hour (by default): a build that has not written for that long is taken as dead.
One without a heartbeat (created before this scheme) is left alone: its age cannot be told.

The backend owns the client it is given: `close()` closes it.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
import time
import warnings
from collections.abc import Callable, Collection, Iterator, Sequence
from typing import Any, TypeVar

from qdrant_client import QdrantClient, models

from retrieval.errors import StoreError
from retrieval.payload import ACL, DOC_ID, SOURCE
from retrieval.store import (
    DENSE,
    INDEXED_FIELDS,
    SPARSE_VECTOR,
    TENANT_FIELD,
    TIE_MARGIN,
    Fusion,
    Hit,
    Ranking,
    ReadFilter,
    SearchMode,
    SparseVector,
    StoredChunk,
    break_ties,
    scored_hit,
)

log = logging.getLogger(__name__)

_STATE = "clearance_state"
_VERSION = "clearance_version"
_PREFIX = "clearance_prefix"
_HEARTBEAT = "clearance_heartbeat"
_HEARTBEAT_EVERY_S = 60.0
_ABANDONED_AFTER_S = 3600.0
_VERSION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_SCROLL_PAGE = 256
_SEAL_TIMEOUT_S = 600.0
_DENSE_VECTOR = ""  # the client's name of the unnamed (dense) vector
T = TypeVar("T")


def _check_version_id(version_id: str) -> None:
    if not _VERSION_ID.fullmatch(version_id):
        raise StoreError(
            f"invalid version id {version_id!r}: use letters, digits, '_', '.', '-' "
            "(not starting with '.' or '-', at most 128 characters)"
        )


def _wrap(what: str, fn: Callable[[], T]) -> T:
    try:
        return fn()
    except StoreError:
        raise
    except Exception as exc:
        raise StoreError(f"{what} failed: {exc}") from exc


def _any(key: str, values: Collection[str]) -> models.FieldCondition:
    return models.FieldCondition(key=key, match=models.MatchAny(any=sorted(values)))


def _read_filter(access: ReadFilter) -> models.Filter:
    """The server's filter for `access` (see ReadFilter); never one that matches everything."""
    by_acl = models.Filter(
        must=[_any(ACL, access.principals)],
        must_not=[_any(DOC_ID, access.acl_changed)] if access.acl_changed else None,
    )
    allowed: list[models.Condition] = [by_acl] if access.principals else []
    if access.include_docs:
        allowed.append(_any(DOC_ID, access.include_docs))
    must_not: list[models.Condition] = []
    if access.exclude_docs:
        must_not.append(_any(DOC_ID, access.exclude_docs))
    if access.exclude_sources:
        must_not.append(_any(SOURCE, access.exclude_sources))
    only: list[models.Condition] = [_any(DOC_ID, access.only_docs)] if access.only_docs else []
    return models.Filter(must=[models.Filter(should=allowed), *only], must_not=must_not or None)


def _field_index(name: str) -> Any:
    """The index made on payload field `name`: keyword, and a tenant index for TENANT_FIELD."""
    if name == TENANT_FIELD:
        return models.KeywordIndexParams(type=models.KeywordIndexType.KEYWORD, is_tenant=True)
    return models.PayloadSchemaType.KEYWORD


def _point(chunk: StoredChunk, sparse: bool) -> models.PointStruct:
    dense = [float(x) for x in chunk.vector]
    if not sparse:
        return models.PointStruct(id=chunk.point_id, vector=dense, payload=dict(chunk.payload))
    if chunk.sparse is None:
        raise StoreError(f"point {chunk.point_id} has no sparse vector, and this version needs one")
    vectors: dict[str, Any] = {
        _DENSE_VECTOR: dense,
        SPARSE_VECTOR: models.SparseVector(
            indices=list(chunk.sparse.indices), values=list(chunk.sparse.values)
        ),
    }
    return models.PointStruct(id=chunk.point_id, vector=vectors, payload=dict(chunk.payload))


def _query_arguments(
    vector: Sequence[float], sparse: SparseVector | None, ranking: Ranking,
    query_filter: models.Filter,
) -> dict[str, Any]:
    """query_points() arguments for one search: the permission filter on the request and in
    every prefetch branch (qdrant-client issue 1372: local mode once ignored the top-level one
    on fusion queries); BM25's IDF computed over the chunks the filter lets through."""
    dense = [float(x) for x in vector]
    if ranking.mode is SearchMode.DENSE:
        return {"query": dense, "query_filter": query_filter}
    if sparse is None:
        raise StoreError(f"a {ranking.mode} search needs the query's sparse vector")
    bm25 = models.SparseVector(indices=list(sparse.indices), values=list(sparse.values))
    idf = models.SearchParams(idf=models.IdfCorpusParams(corpus=query_filter))
    if ranking.mode is SearchMode.SPARSE:
        return {"query": bm25, "using": SPARSE_VECTOR, "query_filter": query_filter,
                "search_params": idf, "with_vectors": [_DENSE_VECTOR]}
    branches = [models.Prefetch(query=dense, filter=query_filter, limit=ranking.depth)]
    if sparse.indices:  # a query of stop words alone has no terms: the dense branch alone
        branches.append(models.Prefetch(query=bm25, using=SPARSE_VECTOR, filter=query_filter,
                                        limit=ranking.depth, params=idf))
    fusion: models.Query = (
        models.RrfQuery(rrf=models.Rrf(k=ranking.rrf_k,
                                       weights=list(ranking.weights[: len(branches)])))
        if ranking.fusion is Fusion.RRF else models.FusionQuery(fusion=models.Fusion.DBSF)
    )
    return {"query": fusion, "prefetch": branches, "query_filter": query_filter,
            "with_vectors": [_DENSE_VECTOR]}


def _stored_chunk(record: models.Record, version_id: str) -> StoredChunk:
    """A scrolled record as a chunk: its dense vector, its sparse one if the version has them."""
    vector: Any = record.vector
    sparse = None
    if isinstance(vector, dict):
        stored = vector.get(SPARSE_VECTOR)
        if isinstance(stored, models.SparseVector):
            sparse = SparseVector(tuple(stored.indices), tuple(stored.values))
        vector = vector.get(_DENSE_VECTOR)
    if not isinstance(vector, list):
        raise StoreError(
            f"version {version_id!r}: point {record.id} has no single dense vector "
            f"(got {type(vector).__name__})"
        )
    return StoredChunk(str(record.id), [float(x) for x in vector], dict(record.payload or {}),
                       sparse)


class ServerWriter:
    """A collection being filled; seal() marks it sealed in its metadata."""

    def __init__(self, client: QdrantClient, collection: str, version_id: str,
                 sparse: bool = False) -> None:
        self._client = client
        self._collection = collection
        self._version_id = version_id
        self._sparse = sparse
        self._done = False
        self._last_beat = time.monotonic()  # create() wrote the first heartbeat

    def _check_open(self) -> None:
        if self._done:
            raise StoreError(f"version {self._version_id!r} is already sealed or aborted")

    def _beat(self) -> None:
        """Tell remove_abandoned() this build is alive, at most once every _HEARTBEAT_EVERY_S."""
        if time.monotonic() - self._last_beat < _HEARTBEAT_EVERY_S:
            return
        _wrap(
            f"updating the heartbeat of version {self._version_id!r}",
            lambda: self._client.update_collection(
                self._collection, metadata={_HEARTBEAT: time.time()}
            ),
        )
        self._last_beat = time.monotonic()

    def upsert(self, chunks: Sequence[StoredChunk]) -> None:
        self._check_open()
        points = [_point(c, self._sparse) for c in chunks]
        _wrap(
            f"upsert of {len(points)} points into version {self._version_id!r}",
            lambda: self._client.upsert(self._collection, points=points, wait=True),
        )
        self._beat()

    def indexed_fields(self) -> dict[str, str]:
        """Payload fields with an index, as the server reports them: {field: schema type}, the
        type followed by ", tenant" for a tenant index.

        qdrant-client local mode keeps no payload indexes and always reports none.
        """
        info = _wrap(
            f"reading collection {self._collection!r}",
            lambda: self._client.get_collection(self._collection),
        )
        return {
            name: str(schema.data_type.value)
            + (", tenant" if getattr(schema.params, "is_tenant", None) else "")
            for name, schema in info.payload_schema.items()
        }

    def seal(self, timeout_s: float = _SEAL_TIMEOUT_S) -> None:
        self._check_open()
        # The server indexes in the background: sealed means searchable at full speed.
        deadline = time.monotonic() + timeout_s
        while True:
            info = _wrap(
                f"reading collection {self._collection!r}",
                lambda: self._client.get_collection(self._collection),
            )
            if info.status == models.CollectionStatus.GREEN:
                break
            if info.status == models.CollectionStatus.RED:
                raise StoreError(f"cannot seal version {self._version_id!r}: collection is red")
            if time.monotonic() > deadline:
                raise StoreError(
                    f"cannot seal version {self._version_id!r}: still {info.status.value} "
                    f"after {timeout_s:.0f} s of indexing"
                )
            self._beat()
            time.sleep(0.5)
        _wrap(
            f"marking version {self._version_id!r} sealed",
            lambda: self._client.update_collection(self._collection, metadata={_STATE: "sealed"}),
        )
        self._done = True

    def abort(self) -> None:
        self._done = True
        _wrap(
            f"deleting unsealed version {self._version_id!r}",
            lambda: self._client.delete_collection(self._collection),
        )


class ServerReader:
    """A sealed collection opened for search. The shared client is left open by close()."""

    def __init__(self, client: QdrantClient, collection: str, version_id: str) -> None:
        self._client = client
        self._collection = collection
        self._version_id = version_id
        self._closed = False
        # Local mode is plain Python over shared dicts; the server client is thread-safe anyway.
        self._lock = threading.Lock()

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        with self._lock:
            if self._closed:
                raise StoreError(f"version {self._version_id!r} is closed")
            return _wrap(f"{what} on version {self._version_id!r}", fn)

    def search(
        self,
        vector: Sequence[float],
        *,
        access: ReadFilter,
        limit: int,
        sparse: SparseVector | None = None,
        ranking: Ranking = DENSE,
    ) -> list[Hit]:
        if access.matches_nothing:
            return []
        if ranking.mode is SearchMode.SPARSE and sparse is not None and not sparse.indices:
            return []  # no terms to match
        try:
            query_filter = _read_filter(access)
        except Exception as exc:  # a filter that cannot be built fails the search
            raise StoreError(f"cannot build the permission filter: {exc}") from exc
        arguments = _query_arguments(vector, sparse, ranking, query_filter)
        dense = ranking.mode is SearchMode.DENSE
        response = self._call(
            f"{ranking.mode} search",
            lambda: self._client.query_points(
                self._collection, limit=limit if dense else limit + TIE_MARGIN,
                with_payload=True, **arguments
            ),
        )
        hits = [scored_hit(str(p.id), float(p.score), p.payload, p.vector, vector, ranking)
                for p in response.points]
        return hits if dense else break_ties(hits, limit)

    def count(self) -> int:
        result = self._call("count", lambda: self._client.count(self._collection, exact=True))
        return int(result.count)

    def iter_chunks(self) -> Iterator[StoredChunk]:
        offset: Any = None
        while True:
            scroll = functools.partial(
                self._client.scroll,
                self._collection,
                limit=_SCROLL_PAGE,
                offset=offset,
                with_payload=True,
                with_vectors=True,
            )
            # The lock is held per page, not across yields, so searches can run meanwhile.
            records, offset = self._call("scroll", scroll)
            for record in records:
                yield _stored_chunk(record, self._version_id)
            if offset is None:
                return

    def close(self) -> None:
        with self._lock:
            self._closed = True


class ServerBackend:
    """Versions as collections `{prefix}_{version_id}`, the current one named by an alias."""

    def __init__(self, client: QdrantClient, prefix: str = "clearance") -> None:
        if not _VERSION_ID.fullmatch(prefix):
            raise StoreError(f"invalid collection prefix {prefix!r}")
        self._client = client
        self._prefix = prefix
        self._alias = f"{prefix}_current"

    @classmethod
    def from_url(
        cls, url: str, api_key: str | None = None, prefix: str = "clearance"
    ) -> ServerBackend:
        client = _wrap(
            f"connecting to Qdrant at {url}", lambda: QdrantClient(url=url, api_key=api_key)
        )
        return cls(client, prefix)

    def _collection(self, version_id: str) -> str:
        _check_version_id(version_id)
        return f"{self._prefix}_{version_id}"

    def _metadata(self, collection: str) -> dict[str, Any] | None:
        """The collection's metadata, or None if the collection does not exist."""
        if not _wrap(
            f"looking up collection {collection!r}",
            lambda: self._client.collection_exists(collection),
        ):
            return None
        info = _wrap(
            f"reading collection {collection!r}", lambda: self._client.get_collection(collection)
        )
        return dict(info.config.metadata or {})

    def _is_sealed(self, collection: str, version_id: str) -> bool:
        meta = self._metadata(collection)
        return (
            meta is not None
            and meta.get(_STATE) == "sealed"
            and meta.get(_VERSION) == version_id
            and meta.get(_PREFIX) == self._prefix
        )

    def create(self, version_id: str, *, dim: int, sparse: bool = False) -> ServerWriter:
        """Start building `version_id`, first removing builds abandoned for over an hour."""
        name = self._collection(version_id)
        removed = self.remove_abandoned()
        if removed:
            log.warning("removed what dead builds left behind: %s", ", ".join(removed))
        if self._metadata(name) is not None:
            raise StoreError(f"cannot create version {version_id!r}: collection {name!r} exists")
        _wrap(
            f"creating collection {name!r}",
            lambda: self._client.create_collection(
                name,
                vectors_config=models.VectorParams(size=dim, distance=models.Distance.COSINE),
                # The store applies IDF at query time: document vectors hold the TF part only.
                sparse_vectors_config=(
                    {SPARSE_VECTOR: models.SparseVectorParams(modifier=models.Modifier.IDF)}
                    if sparse else None
                ),
                hnsw_config=models.HnswConfigDiff(m=16, ef_construct=100),
                metadata={
                    _STATE: "building",
                    _VERSION: version_id,
                    _PREFIX: self._prefix,
                    _HEARTBEAT: time.time(),
                },
            ),
        )
        try:
            # Before any point, so that filtered search uses them from the first write.
            for field in INDEXED_FIELDS:
                with warnings.catch_warnings():
                    # Local mode warns that payload indexes do nothing there; the call is kept
                    # so the same code path runs against a server.
                    warnings.filterwarnings(
                        "ignore", message="Payload indexes have no effect", category=UserWarning
                    )
                    self._client.create_payload_index(
                        name, field, field_schema=_field_index(field), wait=True
                    )
        except Exception as exc:
            _wrap(f"deleting collection {name!r}", lambda: self._client.delete_collection(name))
            raise StoreError(
                f"cannot create payload indexes for version {version_id!r}: {exc}"
            ) from exc
        return ServerWriter(self._client, name, version_id, sparse)

    def remove_abandoned(self, max_idle_s: float = _ABANDONED_AFTER_S) -> list[str]:
        """Delete this prefix's building collections idle for over `max_idle_s` seconds.

        Idle means: no heartbeat for that long (see the module docstring). Returns the names of
        the collections deleted. Sealed collections, other prefixes' collections and building
        ones without a heartbeat are never touched. Called by `create()`; call it at start-up
        too. A build may really be alive yet silent for longer than `max_idle_s` only if it
        neither writes nor seals for that long (one file taking an hour to parse).
        """
        response = _wrap("listing collections", self._client.get_collections)
        start = f"{self._prefix}_"
        now = time.time()
        removed = []
        for description in response.collections:
            name = description.name
            version_id = name[len(start) :]
            if not name.startswith(start) or not _VERSION_ID.fullmatch(version_id):
                continue
            meta = self._metadata(name)
            if (
                meta is None
                or meta.get(_STATE) != "building"
                or meta.get(_VERSION) != version_id
                or meta.get(_PREFIX) != self._prefix
            ):
                continue
            beat = meta.get(_HEARTBEAT)
            if not isinstance(beat, int | float) or now - float(beat) <= max_idle_s:
                continue
            _wrap(
                f"deleting abandoned collection {name!r}",
                functools.partial(self._client.delete_collection, name),
            )
            removed.append(name)
        return sorted(removed)

    def open(self, version_id: str) -> ServerReader:
        name = self._collection(version_id)
        if not self._is_sealed(name, version_id):
            raise StoreError(f"no sealed version {version_id!r} (collection {name!r})")
        return ServerReader(self._client, name, version_id)

    def check_readable(self, version_id: str) -> None:
        """Nothing is mapped in this process: a search of a missing version fails by itself."""

    def versions(self) -> list[str]:
        response = _wrap("listing collections", self._client.get_collections)
        start = f"{self._prefix}_"
        found = []
        for description in response.collections:
            if not description.name.startswith(start):
                continue
            version_id = description.name[len(start) :]
            if _VERSION_ID.fullmatch(version_id) and self._is_sealed(description.name, version_id):
                found.append(version_id)
        return sorted(found)

    def drop(self, version_id: str) -> None:
        name = self._collection(version_id)
        if version_id == self.current():
            raise StoreError(f"cannot drop version {version_id!r}: it is the current version")
        if self._metadata(name) is None:
            raise StoreError(f"cannot drop version {version_id!r}: no collection {name!r}")
        _wrap(f"deleting collection {name!r}", lambda: self._client.delete_collection(name))

    def current(self) -> str | None:
        response = _wrap("listing aliases", self._client.get_aliases)
        for alias in response.aliases:
            if alias.alias_name == self._alias:
                start = f"{self._prefix}_"
                if not alias.collection_name.startswith(start):
                    raise StoreError(
                        f"alias {self._alias!r} names {alias.collection_name!r}, "
                        f"which is not a {start}* collection"
                    )
                return alias.collection_name[len(start) :]
        return None

    def switch(self, version_id: str) -> None:
        name = self._collection(version_id)
        if not self._is_sealed(name, version_id):
            raise StoreError(
                f"cannot switch to version {version_id!r}: no sealed collection {name!r}"
            )
        operations: list[models.AliasOperations] = []
        # The first switch has no alias to delete; deleting a missing one is not relied upon.
        if self.current() is not None:
            operations.append(
                models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=self._alias))
            )
        operations.append(
            models.CreateAliasOperation(
                create_alias=models.CreateAlias(collection_name=name, alias_name=self._alias)
            )
        )
        _wrap(
            f"pointing alias {self._alias!r} at {name!r}",
            lambda: self._client.update_collection_aliases(change_aliases_operations=operations),
        )

    def close(self) -> None:
        _wrap("closing the Qdrant client", self._client.close)
