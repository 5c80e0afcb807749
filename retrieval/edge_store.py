"""The vector store on qdrant-edge-py: one EdgeShard directory per version, a pointer file.

The only module that uses the `qdrant_edge` engine (retrieval/bm25.py uses its BM25 tokenizer
alone). Layout under `root`:

    root/<version_id>/            a sealed version (an EdgeShard directory), never written again
    root/.building-<version_id>/  a version being built; renamed to root/<version_id>/ by seal()
    root/.build-<version_id>.lock the builder's lock file, flock()ed for the whole build
    root/.dropping-<version_id>/  a version being deleted by drop(), renamed out of sight first
    root/CURRENT                  the current version id, replaced atomically with os.replace

Crash safety. A build that dies (even by SIGKILL) leaves its .building- directory behind, never
a version: only seal() renames it into place, after a flush. The builder holds an exclusive
flock on its lock file from before the directory exists until after the rename (or the delete,
on abort); the kernel drops it when the process dies. So a .building- directory whose lock can
be taken has no live builder: `remove_abandoned()` deletes those, and `create()` calls it first,
so the next build cleans up after a dead one. The lock file lives beside the directory, not in
it, so it never ends up inside a sealed version; `.build-` cannot be the start of a building
directory's name, so no version id makes the two collide.

CURRENT is written to a temp file (.CURRENT.<pid>.<thread>.tmp), fsynced, renamed over CURRENT
with os.replace and the directory fsynced, all under an flock on the root directory itself. A
switch that dies leaves CURRENT either old or new, and at worst a temp file that nothing reads;
`remove_abandoned()` deletes such temp files while holding that same lock, so never one that a
live switch is still writing. drop() renames a version to .dropping-<id> before deleting its
files, so a drop that dies never leaves a half-deleted directory listed as a version;
`remove_abandoned()` finishes such deletes.

Shards are created with the write-ahead log disabled. A version is all-or-nothing: `seal()` flushes
before the rename, and a build that dies is rebuilt, so the log would protect nothing. Without it
the engine takes no lock on the directory, so several processes (server workers) and several
readers in one process can load the same sealed version; with it a second load fails with
`Can't init WAL: WouldBlock`. Loading still writes to a sealed directory (it rewrites its JSON
metadata atomically, with the same content, and maps its files read-write): keep it writable.

A loaded version holds its memory maps, files and engine threads (8) until its reader is closed:
close() releases them all, and a dropped version's disk space is freed once no reader has it
open. Before a server loads a version, `check_readable` loads it in a child process
(retrieval/edge_probe.py): on a filesystem that cannot back the maps, SIGBUS kills the child.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import shutil
import threading
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path
from typing import Any

from qdrant_edge import (
    CountRequest,
    Distance,
    EdgeConfig,
    EdgeOptimizersConfig,
    EdgeShard,
    EdgeSparseVectorParams,
    EdgeVectorParams,
    FieldCondition,
    Filter,
    HnswIndexConfig,
    IdfParams,
    KeywordIndexParams,
    MatchAny,
    Modifier,
    PayloadSchemaType,
    Point,
    Prefetch,
    Query,
    QueryRequest,
    ScrollRequest,
    SearchParams,
    UpdateOperation,
)
from qdrant_edge import Fusion as EdgeFusion
from qdrant_edge import SparseVector as EdgeSparseVector

from retrieval.edge_probe import probe
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

_CURRENT = "CURRENT"
_BUILDING = ".building-"
# A build's lock file is ".build-<id>.lock": its 7th character ("-") is not the 7th of
# ".building-" ("i"), so whatever the ids, no lock file has the name of a building directory.
_LOCK_PREFIX = ".build-"
_LOCK_SUFFIX = ".lock"
_DROPPING = ".dropping-"
_CURRENT_TMP_PREFIX = f".{_CURRENT}."
_CURRENT_TMP_SUFFIX = ".tmp"
# Version ids become directory names: no separators, no leading dot (hidden = building/temp).
_VERSION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_SCROLL_PAGE = 256
_DENSE_VECTOR = ""  # the engine's name of the unnamed (dense) vector
# The engine's defaults: a filtered search over fewer permitted vectors than this (KB) is exact,
# and a segment smaller than the indexing threshold gets no HNSW graph.
_FULL_SCAN_THRESHOLD_KB = 10_000


def _check_version_id(version_id: str) -> None:
    if not _VERSION_ID.fullmatch(version_id) or version_id == _CURRENT:
        raise StoreError(
            f"invalid version id {version_id!r}: use letters, digits, '_', '.', '-' "
            "(not starting with '.' or '-', at most 128 characters, not 'CURRENT')"
        )


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _lock_path(root: Path, version_id: str) -> Path:
    return root / f"{_LOCK_PREFIX}{version_id}{_LOCK_SUFFIX}"


def _try_lock(path: Path, *, retry: bool) -> int | None:
    """An fd holding an exclusive flock on the file at `path` (created if missing), or None.

    None means another open file holds the lock: its builder is alive. A lock taken on a file that
    someone unlinked meanwhile (a cleaner, between our open and our flock) guards nothing, so the
    file must still be the one at `path`; if not, retry (a builder) or give up (a cleaner: the
    other party is dealing with it). The fd is not inherited by child processes (os.open's
    default), so only this process's death or an explicit close releases the lock.
    """
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        try:
            linked = os.stat(path)
        except FileNotFoundError:
            linked = None
        held = os.fstat(fd)
        if linked is not None and (linked.st_dev, linked.st_ino) == (held.st_dev, held.st_ino):
            return fd
        os.close(fd)
        if not retry:
            return None


def _release(fd: int, path: Path) -> None:
    """Unlink a lock file while still holding its lock, then let go of it."""
    try:
        path.unlink(missing_ok=True)
    finally:
        os.close(fd)


def _any(key: str, values: Collection[str]) -> FieldCondition:
    return FieldCondition(key=key, match=MatchAny(any=sorted(values)))


def _read_filter(access: ReadFilter) -> Filter:
    """The engine's filter for `access` (see ReadFilter); never one that matches everything."""
    stale: list[Any] = [_any(DOC_ID, access.acl_changed)] if access.acl_changed else []
    by_acl = Filter(must=[_any(ACL, access.principals)], must_not=stale or None)
    allowed: list[Any] = [by_acl] if access.principals else []
    if access.include_docs:
        allowed.append(_any(DOC_ID, access.include_docs))
    must_not: list[Any] = []
    if access.exclude_docs:
        must_not.append(_any(DOC_ID, access.exclude_docs))
    if access.exclude_sources:
        must_not.append(_any(SOURCE, access.exclude_sources))
    only: list[Any] = [_any(DOC_ID, access.only_docs)] if access.only_docs else []
    return Filter(must=[Filter(should=allowed), *only], must_not=must_not or None)


def _field_index(name: str) -> Any:
    """The index made on payload field `name`: keyword, and a tenant index for TENANT_FIELD."""
    return KeywordIndexParams(is_tenant=True) if name == TENANT_FIELD else PayloadSchemaType.Keyword


def _point(chunk: StoredChunk, sparse: bool) -> Point:
    dense = [float(x) for x in chunk.vector]
    if not sparse:
        return Point(chunk.point_id, dense, dict(chunk.payload))
    if chunk.sparse is None:
        raise StoreError(f"point {chunk.point_id} has no sparse vector, and this version needs one")
    vector = EdgeSparseVector(list(chunk.sparse.indices), list(chunk.sparse.values))
    return Point(chunk.point_id, {_DENSE_VECTOR: dense, SPARSE_VECTOR: vector}, dict(chunk.payload))


def _query_request(
    vector: Sequence[float], sparse: SparseVector | None, ranking: Ranking, query_filter: Filter,
    limit: int,
) -> QueryRequest:
    """The engine's query for one search: the permission filter on the request and in every
    branch; BM25's IDF computed over the chunks the filter lets through, so scores owe nothing
    to chunks the caller may not read."""
    dense = Query.Nearest([float(x) for x in vector])
    if ranking.mode is SearchMode.DENSE:
        return QueryRequest(limit=limit, query=dense, filter=query_filter, with_payload=True)
    if sparse is None:
        raise StoreError(f"a {ranking.mode} search needs the query's sparse vector")
    bm25 = Query.Nearest(EdgeSparseVector(list(sparse.indices), list(sparse.values)),
                         using=SPARSE_VECTOR)
    idf = SearchParams(idf=IdfParams(corpus=query_filter))
    if ranking.mode is SearchMode.SPARSE:
        return QueryRequest(limit=limit, query=bm25, filter=query_filter, params=idf,
                            with_payload=True, with_vector=[_DENSE_VECTOR])
    depth = max(ranking.depth, limit)
    branches = [Prefetch(limit=depth, query=dense, filter=query_filter)]
    if sparse.indices:  # a query of stop words alone has no terms: the dense branch alone
        branches.append(Prefetch(limit=depth, query=bm25, filter=query_filter, params=idf))
    fusion: Any = (
        EdgeFusion.Rrf(k=ranking.rrf_k, weights=list(ranking.weights[: len(branches)]))
        if ranking.fusion is Fusion.RRF else EdgeFusion.Dbsf()
    )
    return QueryRequest(limit=limit, query=fusion, prefetches=branches, filter=query_filter,
                        with_payload=True, with_vector=[_DENSE_VECTOR])


class EdgeWriter:
    """A version being built in root/.building-<id>/; seal() renames it into place."""

    def __init__(
        self, shard: EdgeShard, building: Path, final: Path, lock_fd: int, lock_path: Path,
        sparse: bool = False,
    ) -> None:
        self._shard: EdgeShard | None = shard
        self._sparse = sparse
        self._building = building
        self._final = final
        self._lock = threading.Lock()
        # The flock that tells remove_abandoned() this build is alive; held until the build is
        # sealed (renamed into place) or aborted (deleted).
        self._lock_fd: int | None = lock_fd
        self._lock_path = lock_path

    def _release_build_lock(self) -> None:
        if self._lock_fd is not None:
            fd, self._lock_fd = self._lock_fd, None
            _release(fd, self._lock_path)

    def _open_shard(self) -> EdgeShard:
        if self._shard is None:
            raise StoreError(f"version {self._final.name!r} is already sealed or aborted")
        return self._shard

    def upsert(self, chunks: Sequence[StoredChunk]) -> None:
        with self._lock:
            shard = self._open_shard()
            try:
                # Point() itself validates ids (int or UUID only), so it is inside the try.
                points = [_point(c, self._sparse) for c in chunks]
                shard.update(UpdateOperation.upsert_points(points))
            except Exception as exc:
                name = self._final.name
                raise StoreError(
                    f"upsert of {len(chunks)} points into version {name!r} failed: {exc}"
                ) from exc

    def indexed_fields(self) -> dict[str, str]:
        """Payload fields with an index, as the engine reports them: {field: schema type}, the
        type followed by ", tenant" for a tenant index."""
        with self._lock:
            shard = self._open_shard()
            schema = shard.info().payload_schema
        # The engine's enums are not Python Enums: no .name, but str() is "PayloadSchemaType.X".
        return {
            name: str(info.data_type).rsplit(".", 1)[-1].lower()
            + (", tenant" if getattr(info.params, "is_tenant", None) else "")
            for name, info in schema.items()
        }

    def seal(self) -> None:
        with self._lock:
            shard = self._open_shard()
            name = self._final.name
            try:
                # No background optimizer in the edge engine: HNSW is built here or never.
                shard.optimize()
                shard.flush()
            except Exception as exc:
                raise StoreError(f"building the index of version {name!r} failed: {exc}") from exc
            finally:
                self._shard = None
                try:
                    shard.close()
                except Exception as exc:
                    raise StoreError(f"closing version {name!r} failed: {exc}") from exc
            if self._final.exists():
                raise StoreError(f"cannot seal version {name!r}: {self._final} already exists")
            try:
                os.rename(self._building, self._final)
                _fsync_dir(self._final.parent)
            except OSError as exc:
                raise StoreError(f"cannot move version {name!r} into place: {exc}") from exc
            # Only now: a dead builder's lock file left here is removed by remove_abandoned().
            self._release_build_lock()

    def abort(self) -> None:
        with self._lock:
            if self._shard is not None:
                # The directory is deleted next: a failed close leaves nothing worth keeping.
                with contextlib.suppress(Exception):
                    self._shard.close()
                self._shard = None
            if self._lock_fd is not None:  # not once sealed: the directory is a version now
                shutil.rmtree(self._building, ignore_errors=True)
                self._release_build_lock()


def _stored_chunk(record: Any, version_id: str) -> StoredChunk:
    """A scrolled record as a chunk: its dense vector, its sparse one if the version has them."""
    vector, sparse = record.vector, None
    if isinstance(vector, dict):
        stored = vector.get(SPARSE_VECTOR)
        if stored is not None:
            sparse = SparseVector(tuple(stored.indices), tuple(stored.values))
        vector = vector.get(_DENSE_VECTOR)
    if not isinstance(vector, list):
        raise StoreError(
            f"version {version_id!r}: point {record.id} has no single dense vector "
            f"(got {type(vector).__name__})"
        )
    return StoredChunk(str(record.id), vector, dict(record.payload or {}), sparse)


class EdgeReader:
    """A sealed version loaded for search; one lock serialises calls into the shard."""

    def __init__(self, shard: EdgeShard, version_id: str) -> None:
        self._shard: EdgeShard | None = shard
        self._version_id = version_id
        # We do not know whether EdgeShard is safe to call from several threads at once.
        self._lock = threading.Lock()

    def _call(self, what: str, fn: Any, *args: Any) -> Any:
        with self._lock:
            if self._shard is None:
                raise StoreError(f"version {self._version_id!r} is closed")
            try:
                return fn(self._shard, *args)
            except Exception as exc:
                raise StoreError(f"{what} on version {self._version_id!r} failed: {exc}") from exc

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
        dense = ranking.mode is SearchMode.DENSE
        request = _query_request(vector, sparse, ranking, query_filter,
                                 limit if dense else limit + TIE_MARGIN)
        points = self._call(f"{ranking.mode} search", EdgeShard.query, request)
        hits = [scored_hit(str(p.id), float(p.score), p.payload, p.vector, vector, ranking)
                for p in points]
        return hits if dense else break_ties(hits, limit)

    def count(self) -> int:
        return int(self._call("count", EdgeShard.count, CountRequest(exact=True)))

    def iter_chunks(self) -> Iterator[StoredChunk]:
        offset: Any = None
        while True:
            # The lock is held per page, not across yields, so searches can run meanwhile.
            request = ScrollRequest(
                offset=offset, limit=_SCROLL_PAGE, with_payload=True, with_vector=True
            )
            records, offset = self._call("scroll", EdgeShard.scroll, request)
            for record in records:
                yield _stored_chunk(record, self._version_id)
            if offset is None:
                return

    def close(self) -> None:
        with self._lock:
            if self._shard is not None:
                shard, self._shard = self._shard, None
                try:
                    shard.close()
                except Exception as exc:
                    raise StoreError(f"closing version {self._version_id!r} failed: {exc}") from exc


class EdgeBackend:
    """Versions as EdgeShard directories under `root`, the current one named by root/CURRENT."""

    def __init__(
        self,
        root: Path,
        *,
        full_scan_threshold_kb: int = _FULL_SCAN_THRESHOLD_KB,
        indexing_threshold_kb: int | None = None,
    ) -> None:
        """Thresholds apply to versions created from now on; tests lower them to force HNSW."""
        self._root = Path(root)
        self._full_scan_threshold_kb = full_scan_threshold_kb
        self._indexing_threshold_kb = indexing_threshold_kb
        try:
            self._root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the index directory {self._root}: {exc}") from exc

    def create(self, version_id: str, *, dim: int, sparse: bool = False) -> EdgeWriter:
        """Start building `version_id`, first removing what dead builds left behind."""
        _check_version_id(version_id)
        final = self._root / version_id
        building = self._root / f"{_BUILDING}{version_id}"
        if final.exists():
            raise StoreError(f"version {version_id!r} already exists in {self._root}")
        try:
            removed = self.remove_abandoned()
        except StoreError as exc:  # a cleanup that fails must not stop a new build
            log.warning("could not remove what dead builds left behind: %s", exc)
        else:
            if removed:
                log.warning("removed what dead builds left behind: %s", ", ".join(removed))
        lock_path = _lock_path(self._root, version_id)
        try:
            lock_fd = _try_lock(lock_path, retry=True)
        except OSError as exc:
            raise StoreError(f"cannot lock {lock_path} to build {version_id!r}: {exc}") from exc
        if lock_fd is None:
            raise StoreError(f"version {version_id!r} is being built by a live process")
        try:
            writer = self._create_locked(
                version_id, dim, sparse, building, final, lock_fd, lock_path
            )
        except BaseException:
            _release(lock_fd, lock_path)
            raise
        return writer

    def _create_locked(
        self, version_id: str, dim: int, sparse: bool, building: Path, final: Path,
        lock_fd: int, lock_path: Path,
    ) -> EdgeWriter:
        if final.exists():  # sealed by another process since the check in create()
            raise StoreError(f"version {version_id!r} already exists in {self._root}")
        # We hold the lock, so a directory still here is a dead build's, left since the cleanup.
        shutil.rmtree(building, ignore_errors=True)
        config = EdgeConfig(
            vectors=EdgeVectorParams(size=dim, distance=Distance.Cosine),
            # The store applies IDF at query time: document vectors hold the TF part only.
            sparse_vectors=(
                {SPARSE_VECTOR: EdgeSparseVectorParams(modifier=Modifier.Idf)} if sparse else None
            ),
            hnsw_config=HnswIndexConfig(
                m=16, ef_construct=100, full_scan_threshold=self._full_scan_threshold_kb
            ),
            optimizers=EdgeOptimizersConfig(indexing_threshold=self._indexing_threshold_kb),
            wal_enabled=False,
        )
        try:
            shard = EdgeShard.create(str(building), config)
        except Exception as exc:
            raise StoreError(f"cannot create version {version_id!r} in {building}: {exc}") from exc
        try:
            # Before any point: without these, filtered search silently misses permitted points.
            for name in INDEXED_FIELDS:
                shard.update(UpdateOperation.create_field_index(name, _field_index(name)))
        except Exception as exc:
            shard.close()
            shutil.rmtree(building, ignore_errors=True)
            raise StoreError(
                f"cannot create payload indexes for version {version_id!r}: {exc}"
            ) from exc
        return EdgeWriter(shard, building, final, lock_fd, lock_path, sparse)

    def remove_abandoned(self) -> list[str]:
        """Delete what dead builds and switches left under the root; returns the names removed.

        A `.building-<id>` directory goes (with its lock file) when its lock can be taken, that
        is when no live process is building it; a lock file left alone (a builder killed between
        the rename into place and the unlink) goes the same way; so do `.dropping-<id>`
        directories (a drop that died); `.CURRENT.*.tmp` files go when no switch is running.
        Sealed versions and CURRENT are never touched. Called by `create()`;
        call it at start-up too. Safe to run from several processes at once.
        """
        try:
            names = sorted(os.listdir(self._root))
        except OSError as exc:
            raise StoreError(f"cannot list {self._root}: {exc}") from exc
        removed: list[str] = []
        ids = {n[len(_BUILDING) :] for n in names if n.startswith(_BUILDING)}
        ids |= {
            n[len(_LOCK_PREFIX) : -len(_LOCK_SUFFIX)]
            for n in names
            if n.startswith(_LOCK_PREFIX) and n.endswith(_LOCK_SUFFIX)
        }
        for version_id in sorted(v for v in ids if _VERSION_ID.fullmatch(v)):
            building = self._root / f"{_BUILDING}{version_id}"
            lock_path = _lock_path(self._root, version_id)
            try:
                fd = _try_lock(lock_path, retry=False)
            except OSError as exc:
                raise StoreError(f"cannot lock {lock_path}: {exc}") from exc
            if fd is None:
                continue  # a live build (or another cleaner got there first)
            try:
                if building.is_dir():
                    shutil.rmtree(building)
                    removed.append(building.name)
            except OSError as exc:
                raise StoreError(f"cannot remove the abandoned build {building}: {exc}") from exc
            finally:
                _release(fd, lock_path)
            if lock_path.name in names:
                removed.append(lock_path.name)
        for name in names:
            if name.startswith(_DROPPING) and (self._root / name).is_dir():
                # Renamed out of sight by a drop() that died (or is still deleting: both
                # deletes then ignore what the other already removed).
                shutil.rmtree(self._root / name, ignore_errors=True)
                removed.append(name)
        temps = [
            n
            for n in names
            if n.startswith(_CURRENT_TMP_PREFIX) and n.endswith(_CURRENT_TMP_SUFFIX)
        ]
        if temps:
            with self._root_lock(blocking=False) as locked:
                if locked:  # else a switch is running: its temp file is live; next time
                    for name in temps:
                        with contextlib.suppress(FileNotFoundError):
                            (self._root / name).unlink()
                            removed.append(name)
        return sorted(removed)

    @contextlib.contextmanager
    def _root_lock(self, *, blocking: bool) -> Iterator[int | None]:
        """An flock on the root directory itself (no extra file): switches and temp cleanup.

        Yields the directory's fd, or None if `blocking` is false and another process holds it.
        """
        fd = os.open(self._root, os.O_RDONLY)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
            except BlockingIOError:
                yield None
                return
            yield fd
        finally:
            os.close(fd)

    def open(self, version_id: str) -> EdgeReader:
        _check_version_id(version_id)
        path = self._root / version_id
        if not path.is_dir():
            raise StoreError(f"no sealed version {version_id!r} in {self._root}")
        try:
            shard = EdgeShard.load(str(path))
        except Exception as exc:
            raise StoreError(f"cannot load version {version_id!r} from {path}: {exc}") from exc
        return EdgeReader(shard, version_id)

    def check_readable(self, version_id: str) -> None:
        """StoreError unless a child process can load the version (retrieval/edge_probe.py)."""
        _check_version_id(version_id)
        if not (self._root / version_id).is_dir():
            raise StoreError(f"no sealed version {version_id!r} in {self._root}")
        probe(self._root, version_id)

    def versions(self) -> list[str]:
        try:
            entries = list(self._root.iterdir())
        except OSError as exc:
            raise StoreError(f"cannot list versions in {self._root}: {exc}") from exc
        return sorted(p.name for p in entries if p.is_dir() and _VERSION_ID.fullmatch(p.name))

    def drop(self, version_id: str) -> None:
        _check_version_id(version_id)
        if version_id == self.current():
            raise StoreError(f"cannot drop version {version_id!r}: it is the current version")
        path = self._root / version_id
        if not path.is_dir():
            raise StoreError(f"cannot drop version {version_id!r}: no such version in {self._root}")
        # Out of sight first, in one atomic step: deleting in place and dying half-way would
        # leave a directory that versions() lists but that holds only part of a version.
        doomed = self._root / f"{_DROPPING}{version_id}"
        try:
            shutil.rmtree(doomed, ignore_errors=True)  # an earlier drop of this id that died
            os.rename(path, doomed)
            _fsync_dir(self._root)
        except OSError as exc:
            raise StoreError(f"cannot drop version {version_id!r}: {exc}") from exc
        # The version is gone; files that will not go now are removed by remove_abandoned().
        shutil.rmtree(doomed, ignore_errors=True)

    def current(self) -> str | None:
        try:
            text = (self._root / _CURRENT).read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreError(f"cannot read {self._root / _CURRENT}: {exc}") from exc
        return text or None

    def switch(self, version_id: str) -> None:
        _check_version_id(version_id)
        if version_id not in self.versions():
            raise StoreError(
                f"cannot switch to version {version_id!r}: no sealed version of that id in "
                f"{self._root} (sealed: {', '.join(self.versions()) or 'none'})"
            )
        target = self._root / _CURRENT
        tmp = self._root / (
            f"{_CURRENT_TMP_PREFIX}{os.getpid()}.{threading.get_ident()}{_CURRENT_TMP_SUFFIX}"
        )
        try:
            # Under the root lock, so remove_abandoned() never deletes a live switch's temp file.
            with self._root_lock(blocking=True) as root_fd:
                assert root_fd is not None
                try:
                    with open(tmp, "w", encoding="utf-8") as f:
                        f.write(version_id + "\n")
                        f.flush()
                        os.fsync(f.fileno())
                    os.replace(tmp, target)
                    os.fsync(root_fd)  # the rename itself, durable
                except OSError:
                    tmp.unlink(missing_ok=True)
                    raise
        except OSError as exc:
            raise StoreError(f"cannot switch to version {version_id!r}: {exc}") from exc

    def close(self) -> None:
        """Nothing to release: readers and writers own their shards."""
