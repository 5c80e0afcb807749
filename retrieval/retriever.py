"""Permission-filtered search over the current index version, checked again after the search."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from retrieval.access import DocumentAccess
from retrieval.bm25 import Bm25Encoder
from retrieval.embedder import Embedder
from retrieval.errors import NoIndexError, StoreError
from retrieval.scope import Scope
from retrieval.settings import RetrievalSettings
from retrieval.store import Hit, Ranking, SearchMode, VersionReader
from retrieval.versions import VersionCatalog, VersionInfo

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Retrieved:
    """Hits the caller may read, from one index version, and how many failed the re-check."""

    index_version: str
    hits: list[Hit]
    dropped: int
    # The caller's permission check on this version, for checking chunks again downstream.
    permitted: Callable[[Mapping[str, object]], bool]
    mode: SearchMode = SearchMode.DENSE  # how the hits were ranked


class Retriever:
    """Embeds the query and searches the version that is current at the time of the call.

    The current pointer is read on every call, so a switch made by another process (ingest,
    rollback) is served from the next request on, and each response comes from one version.
    Document ACLs changed since that version was built apply (retrieval/access.py), both in the
    search filter and in the re-check of every hit.

    Chunks are ranked by `ranking` (hybrid by default), or by the mode a call asks for. A
    version without BM25 vectors (built before them) is searched dense: `Retrieved.mode` says
    which ranking was used.
    """

    def __init__(self, catalog: VersionCatalog, embedder: Embedder, access: DocumentAccess,
                 *, bm25: Bm25Encoder | None = None, ranking: Ranking | None = None) -> None:
        self._catalog = catalog
        self._embedder = embedder
        self._access = access
        self._bm25 = bm25 or Bm25Encoder()
        self._ranking = ranking or RetrievalSettings().ranking()
        self._infos: dict[str, VersionInfo] = {}
        self._readers: dict[str, VersionReader] = {}
        self._lock = threading.Lock()

    def _reader(self, version_id: str) -> tuple[VersionReader, VersionInfo]:
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
                self._infos[version_id] = info
            return reader, self._infos[version_id]

    def _ranking_for(self, info: VersionInfo, mode: SearchMode | None) -> Ranking:
        ranking = replace(self._ranking, mode=mode or self._ranking.mode)
        if ranking.mode is SearchMode.DENSE:
            return ranking
        tokenizer = info.sparse.split(";", 1)[0]
        if tokenizer != self._bm25.tokenizer_name:
            # Built before BM25 vectors, or with terms made otherwise: the embedding alone.
            log.info("index version %s has no %s vectors (%r): searching it dense",
                     info.id, self._bm25.tokenizer_name, info.sparse)
            return replace(ranking, mode=SearchMode.DENSE)
        return ranking

    def search(self, query: str, *, scope: Scope, top_k: int, mode: SearchMode | None = None
               ) -> Retrieved:
        """The top_k chunks the scope may read, best first, ranked in `mode` (default: the
        configured one)."""
        version = self._catalog.current()
        if version is None:
            raise NoIndexError("no index version has been built yet: run `clearance ingest`")
        reader, info = self._reader(version)
        ranking = self._ranking_for(info, mode)
        access = self._access.for_version(version)
        vector = self._embedder.embed_query(query)
        sparse = self._bm25.encode_query(query) if ranking.mode is not SearchMode.DENSE else None
        read_filter = access.read_filter(scope)
        hits = reader.search(vector.tolist(), access=read_filter, limit=top_k, sparse=sparse,
                             ranking=ranking)

        def permitted(payload: Mapping[str, object]) -> bool:
            return access.admits(scope, payload, read_filter)

        kept = [h for h in hits if permitted(h.payload)]
        dropped = len(hits) - len(kept)
        if dropped:
            # The store filter let through a chunk the caller may not read: never expected.
            log.error("permission re-check dropped %d hit(s) for %s in %s",
                      dropped, scope.user, version)
        return Retrieved(version, kept, dropped, permitted, ranking.mode)

    def close(self) -> None:
        with self._lock:
            for reader in self._readers.values():
                reader.close()
            self._readers.clear()
            self._infos.clear()
