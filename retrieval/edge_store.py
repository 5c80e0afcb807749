"""The vector store on qdrant-edge-py: one EdgeShard directory per version, a pointer file.

The only module that imports `qdrant_edge`. Layout under `root`:

    root/<version_id>/            a sealed version (an EdgeShard directory), never written again
    root/.building-<version_id>/  a version being built; renamed to root/<version_id>/ by seal()
    root/CURRENT                  the current version id, replaced atomically with os.replace

Shards are created with the write-ahead log disabled. A version is all-or-nothing: `seal()` flushes
before the rename, and a build that dies is rebuilt, so the log would protect nothing. Without it
the engine takes no lock on the directory, so several processes (server workers) and several
readers in one process can load the same sealed version; with it a second load fails with
`Can't init WAL: WouldBlock`. Loading still writes to a sealed directory (it rewrites its JSON
metadata atomically, with the same content, and maps its files read-write): keep it writable.
"""

from __future__ import annotations

import contextlib
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
    EdgeVectorParams,
    FieldCondition,
    Filter,
    HnswIndexConfig,
    MatchAny,
    PayloadSchemaType,
    Point,
    Query,
    QueryRequest,
    ScrollRequest,
    UpdateOperation,
)

from retrieval.errors import StoreError
from retrieval.store import INDEXED_FIELDS, Hit, StoredChunk

_CURRENT = "CURRENT"
_BUILDING = ".building-"
# Version ids become directory names: no separators, no leading dot (hidden = building/temp).
_VERSION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_SCROLL_PAGE = 256
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


def _acl_filter(principals: Collection[str]) -> Filter:
    return Filter(must=[FieldCondition(key="acl", match=MatchAny(any=sorted(principals)))])


class EdgeWriter:
    """A version being built in root/.building-<id>/; seal() renames it into place."""

    def __init__(self, shard: EdgeShard, building: Path, final: Path) -> None:
        self._shard: EdgeShard | None = shard
        self._building = building
        self._final = final
        self._lock = threading.Lock()

    def _open_shard(self) -> EdgeShard:
        if self._shard is None:
            raise StoreError(f"version {self._final.name!r} is already sealed or aborted")
        return self._shard

    def upsert(self, chunks: Sequence[StoredChunk]) -> None:
        with self._lock:
            shard = self._open_shard()
            try:
                # Point() itself validates ids (int or UUID only), so it is inside the try.
                points = [
                    Point(c.point_id, [float(x) for x in c.vector], dict(c.payload)) for c in chunks
                ]
                shard.update(UpdateOperation.upsert_points(points))
            except Exception as exc:
                name = self._final.name
                raise StoreError(
                    f"upsert of {len(chunks)} points into version {name!r} failed: {exc}"
                ) from exc

    def indexed_fields(self) -> dict[str, str]:
        """Payload fields with an index, as the engine reports them: {field: schema type}."""
        with self._lock:
            shard = self._open_shard()
            schema = shard.info().payload_schema
        # The engine's enums are not Python Enums: no .name, but str() is "PayloadSchemaType.X".
        return {
            name: str(info.data_type).rsplit(".", 1)[-1].lower() for name, info in schema.items()
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

    def abort(self) -> None:
        with self._lock:
            if self._shard is not None:
                # The directory is deleted next: a failed close leaves nothing worth keeping.
                with contextlib.suppress(Exception):
                    self._shard.close()
                self._shard = None
            shutil.rmtree(self._building, ignore_errors=True)


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
        self, vector: Sequence[float], *, principals: Collection[str], limit: int
    ) -> list[Hit]:
        if not principals:
            return []
        request = QueryRequest(
            limit=limit,
            query=Query.Nearest([float(x) for x in vector]),
            filter=_acl_filter(principals),
            with_payload=True,
        )
        points = self._call("search", EdgeShard.query, request)
        return [Hit(str(p.id), float(p.score), dict(p.payload or {})) for p in points]

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
                if not isinstance(record.vector, list):
                    raise StoreError(
                        f"version {self._version_id!r}: point {record.id} has no single dense "
                        f"vector (got {type(record.vector).__name__})"
                    )
                yield StoredChunk(str(record.id), record.vector, dict(record.payload or {}))
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

    def create(self, version_id: str, *, dim: int) -> EdgeWriter:
        _check_version_id(version_id)
        final = self._root / version_id
        building = self._root / f"{_BUILDING}{version_id}"
        if final.exists():
            raise StoreError(f"version {version_id!r} already exists in {self._root}")
        if building.exists():
            raise StoreError(
                f"version {version_id!r} is being built, or a build died: remove {building} "
                "if no build is running"
            )
        config = EdgeConfig(
            vectors=EdgeVectorParams(size=dim, distance=Distance.Cosine),
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
                shard.update(UpdateOperation.create_field_index(name, PayloadSchemaType.Keyword))
        except Exception as exc:
            shard.close()
            shutil.rmtree(building, ignore_errors=True)
            raise StoreError(
                f"cannot create payload indexes for version {version_id!r}: {exc}"
            ) from exc
        return EdgeWriter(shard, building, final)

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
        try:
            shutil.rmtree(path)
        except OSError as exc:
            raise StoreError(f"cannot drop version {version_id!r}: {exc}") from exc

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
        tmp = self._root / f".{_CURRENT}.{os.getpid()}.{threading.get_ident()}.tmp"
        try:
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(version_id + "\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
            _fsync_dir(self._root)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise StoreError(f"cannot switch to version {version_id!r}: {exc}") from exc

    def close(self) -> None:
        """Nothing to release: readers and writers own their shards."""
