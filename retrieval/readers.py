"""Open readers of index versions, shared by concurrent searches, closed when no longer used.

A search holds the reader of the version it started on until it ends (`hold`), so a switch
meanwhile never closes a version under a running search, and each response comes from one
version. A reader is closed as soon as its version is neither current nor held: a long-running
server would otherwise keep every version it ever served loaded (the embedded engine keeps 8
threads, tens of MB and a memory map of every file per loaded version, and a deleted version's
disk space is freed only once its files are unmapped).

Before a version is opened, the backend checks that this process can read it safely
(`VectorBackend.check_readable`: for the embedded engine a child process loads it first, so a
filesystem that cannot back the engine's memory maps kills the child, not the server). A version
that failed to open is not tried again for RETRY_S seconds: its requests fail at once, with the
same error, instead of each starting a probe.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from retrieval.embedder import Embedder
from retrieval.errors import StoreError
from retrieval.store import VersionReader
from retrieval.versions import VersionCatalog, VersionInfo

log = logging.getLogger(__name__)

RETRY_S = 10.0


@dataclass
class _Entry:
    reader: VersionReader
    info: VersionInfo
    users: int = 0


class ReaderPool:
    """One reader per version in use; `on_close(version_id)` runs after a reader is closed."""

    def __init__(self, catalog: VersionCatalog, embedder: Embedder, *,
                 on_close: Callable[[str], None] | None = None) -> None:
        self._catalog = catalog
        self._embedder = embedder
        self._on_close = on_close
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}
        self._opening: dict[str, threading.Lock] = {}
        self._failed: dict[str, tuple[float, str]] = {}

    @contextmanager
    def hold(self, version_id: str) -> Iterator[tuple[VersionReader, VersionInfo]]:
        """The reader of `version_id`, opened if need be and kept open until the block ends;
        StoreError if the version cannot be served."""
        entry = self._acquire(version_id)
        try:
            yield entry.reader, entry.info
        finally:
            self._release(entry)

    def open_versions(self) -> list[str]:
        with self._lock:
            return sorted(self._entries)

    def _acquire(self, version_id: str) -> _Entry:
        with self._lock:
            entry = self._entries.get(version_id)
            if entry is not None:
                entry.users += 1
                return entry
            opening = self._opening.setdefault(version_id, threading.Lock())
        # One thread opens a version; the others wait for it rather than open it twice.
        with opening:
            try:
                with self._lock:
                    entry = self._entries.get(version_id)
                    if entry is not None:
                        entry.users += 1
                        return entry
                entry = self._open(version_id)
                with self._lock:
                    entry.users += 1
                    self._entries[version_id] = entry
                return entry
            finally:
                with self._lock:
                    self._opening.pop(version_id, None)

    def _open(self, version_id: str) -> _Entry:
        with self._lock:
            failed = self._failed.get(version_id)
        if failed is not None and time.monotonic() - failed[0] < RETRY_S:
            raise StoreError(failed[1])
        info = self._catalog.get(version_id)
        if info is None:
            raise StoreError(f"index version {version_id} has no manifest")
        if info.embedder != self._embedder.name or info.dim != self._embedder.dim:
            raise StoreError(
                f"index version {version_id} was built with {info.embedder} "
                f"({info.dim} dims), but queries use {self._embedder.name} "
                f"({self._embedder.dim} dims); re-index or roll back"
            )
        backend = self._catalog.backend
        try:
            backend.check_readable(version_id)
            reader = backend.open(version_id)
        except StoreError as exc:
            log.error("index version %s cannot be served: %s", version_id, exc)
            with self._lock:
                self._failed[version_id] = (time.monotonic(), str(exc))
            raise
        with self._lock:
            self._failed.pop(version_id, None)
        log.info("opened index version %s", version_id)
        return _Entry(reader, info)

    def _release(self, entry: _Entry) -> None:
        try:
            current = self._catalog.current()
        except StoreError as exc:  # keep everything open until the pointer reads again
            log.warning("cannot read the current index version: %s", exc)
            current = entry.info.id
        with self._lock:
            entry.users -= 1
            idle = [v for v, e in self._entries.items() if e.users == 0 and v != current]
            doomed = [self._entries.pop(v) for v in idle]
        for stale in doomed:
            self._close(stale)
            log.info("closed index version %s: no longer current, and no search uses it",
                     stale.info.id)

    def _close(self, entry: _Entry) -> None:
        try:
            entry.reader.close()
        except StoreError as exc:
            log.warning("%s", exc)
        if self._on_close is not None:
            self._on_close(entry.info.id)

    def close(self) -> None:
        """Close every reader, in use or not (at shutdown)."""
        with self._lock:
            entries = list(self._entries.values())
            self._entries.clear()
        for entry in entries:
            self._close(entry)
