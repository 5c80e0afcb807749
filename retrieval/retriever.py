"""Permission-filtered search over the current index version, checked again after the search."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from retrieval.access import DocumentAccess
from retrieval.embedder import Embedder
from retrieval.errors import NoIndexError, StoreError
from retrieval.scope import Scope
from retrieval.store import Hit, VersionReader
from retrieval.versions import VersionCatalog

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Retrieved:
    """Hits the caller may read, from one index version, and how many failed the re-check."""

    index_version: str
    hits: list[Hit]
    dropped: int
    # The caller's permission check on this version, for checking chunks again downstream.
    permitted: Callable[[Mapping[str, object]], bool]


class Retriever:
    """Embeds the query and searches the version that is current at the time of the call.

    The current pointer is read on every call, so a switch made by another process (ingest,
    rollback) is served from the next request on, and each response comes from one version.
    Document ACLs changed since that version was built apply (retrieval/access.py), both in the
    search filter and in the re-check of every hit.
    """

    def __init__(self, catalog: VersionCatalog, embedder: Embedder, access: DocumentAccess
                 ) -> None:
        self._catalog = catalog
        self._embedder = embedder
        self._access = access
        self._readers: dict[str, VersionReader] = {}
        self._lock = threading.Lock()

    def _reader(self, version_id: str) -> VersionReader:
        with self._lock:
            reader = self._readers.get(version_id)
            if reader is None:
                info = self._catalog.get(version_id)
                if info is None:
                    raise StoreError(f"index version {version_id} has no manifest")
                if info.embedder != self._embedder.name or info.dim != self._embedder.dim:
                    raise StoreError(
                        f"index version {version_id} was built with {info.embedder} "
                        f"({info.dim} dims), but queries use {self._embedder.name} "
                        f"({self._embedder.dim} dims); re-index or roll back"
                    )
                reader = self._readers[version_id] = self._catalog.backend.open(version_id)
            return reader

    def search(self, query: str, *, scope: Scope, top_k: int) -> Retrieved:
        """The top_k chunks the scope may read, best first."""
        version = self._catalog.current()
        if version is None:
            raise NoIndexError("no index version has been built yet: run `clearance ingest`")
        reader = self._reader(version)
        access = self._access.for_version(version)
        vector = self._embedder.embed_query(query)
        read_filter = access.read_filter(scope)
        hits = reader.search(vector.tolist(), access=read_filter, limit=top_k)

        def permitted(payload: Mapping[str, object]) -> bool:
            return access.admits(scope, payload, read_filter)

        kept = [h for h in hits if permitted(h.payload)]
        dropped = len(hits) - len(kept)
        if dropped:
            # The store filter let through a chunk the caller may not read: never expected.
            log.error("permission re-check dropped %d hit(s) for %s in %s",
                      dropped, scope.user, version)
        return Retrieved(version, kept, dropped, permitted)

    def close(self) -> None:
        with self._lock:
            for reader in self._readers.values():
                reader.close()
            self._readers.clear()
