"""Permission-filtered search over the current index version, checked again after the search."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from observability import metrics
from retrieval.access import DocumentAccess
from retrieval.bm25 import Bm25Encoder
from retrieval.embedder import Embedder
from retrieval.errors import NoIndexError, StoreError
from retrieval.payload import ChunkHit, ChunkPayload
from retrieval.readers import ReaderPool
from retrieval.scope import Scope
from retrieval.settings import RetrievalSettings
from retrieval.store import Hit, Ranking, SearchMode
from retrieval.versions import VersionCatalog, VersionInfo

log = logging.getLogger(__name__)


MAX_DOCUMENT_CHUNKS = 2000  # the most of one document `Retriever.document` returns


@dataclass(frozen=True)
class Retrieved:
    """Hits the caller may read, from one index version, and how many failed the re-check
    (their payload did not parse, or the caller may not read them)."""

    index_version: str
    hits: list[ChunkHit]
    dropped: int
    # The caller's permission check on this version, for checking chunks again downstream.
    permitted: Callable[[ChunkPayload], bool]
    mode: SearchMode = SearchMode.DENSE  # how the hits were ranked
    # False when a document has more chunks than `Retriever.document` returns: `hits` are then
    # some of them, not all, and whoever shows them must say so.
    complete: bool = True


class Retriever:
    """Embeds the query and searches the version that is current at the time of the call.

    The current pointer is read on every call, so a switch made by another process (ingest,
    rollback) is served from the next request on, and each response comes from one version.
    Only the current version stays loaded: one a search still holds is closed when that search
    ends (retrieval/readers.py). Document ACLs changed since that version was built apply
    (retrieval/access.py), both in the search filter and in the re-check of every hit.

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
        # A version's ACL table goes with its reader.
        self._readers = ReaderPool(catalog, embedder, on_close=access.forget)

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
        # Held for the whole search: a switch meanwhile cannot close the version under it, and
        # the reader is closed once the last search on a version no longer current ends.
        started = time.monotonic()
        with self._readers.hold(version) as (reader, info):
            ranking = self._ranking_for(info, mode)
            access = self._access.for_version(version)
            embedding = time.monotonic()
            vector = self._embedder.embed_query(query)
            metrics.record_embedding(time.monotonic() - embedding)
            sparse = (self._bm25.encode_query(query) if ranking.mode is not SearchMode.DENSE
                      else None)
            read_filter = access.read_filter(scope)
            hits = reader.search(vector.tolist(), access=read_filter, limit=top_k,
                                 sparse=sparse, ranking=ranking)
        metrics.record_search(str(ranking.mode), time.monotonic() - started)

        def permitted(payload: ChunkPayload) -> bool:
            return access.admits(scope, payload, read_filter)

        parsed, unparsed = _parse(hits, version)
        kept = [h for h in parsed if permitted(h.payload)]
        dropped = len(hits) - len(kept)
        metrics.record_dropped("search", dropped)
        if dropped:
            # The store filter let through a chunk the caller may not read, or one whose
            # payload does not parse (no usable ACL, say): never expected.
            log.error("permission re-check dropped %d hit(s) for %s in %s (%d with a payload "
                      "that does not parse)", dropped, scope.user, version, unparsed)
        return Retrieved(version, kept, dropped, permitted, ranking.mode)

    def document(self, doc_id: str, *, scope: Scope, max_chunks: int = MAX_DOCUMENT_CHUNKS
                 ) -> Retrieved:
        """The chunks of one document the scope may read, in document order: through the same
        permission filter inside the store (narrowed to the document) and the same re-check of
        every chunk as a search. A document the scope may not read has no chunks, exactly like
        one that does not exist."""
        version = self._catalog.current()
        if version is None:
            raise NoIndexError("no index version has been built yet: run `clearance ingest`")
        with self._readers.hold(version) as (reader, _):
            access = self._access.for_version(version)
            read_filter = replace(access.read_filter(scope), only_docs=frozenset({doc_id}))
            # Any query vector will do: the filter picks the chunks, their order comes after.
            hits = reader.search(self._embedder.embed_query(doc_id).tolist(),
                                 access=read_filter, limit=max_chunks)

        def permitted(payload: ChunkPayload) -> bool:
            return access.admits(scope, payload, read_filter) and payload.doc_id == doc_id

        parsed, _ = _parse(hits, version)
        kept = sorted((h for h in parsed if permitted(h.payload)),
                      key=lambda h: h.payload.chunk_index)
        dropped = len(hits) - len(kept)
        metrics.record_dropped("fetch", dropped)
        if dropped:
            log.error("permission re-check dropped %d chunk(s) of %s for %s in %s", dropped,
                      doc_id, scope.user, version)
        return Retrieved(version, kept, dropped, permitted, SearchMode.DENSE,
                         complete=len(hits) < max_chunks)

    def check_current(self) -> str | None:
        """Why the current version cannot be searched now, or None if it can (for /healthz:
        cheap once the version is open)."""
        try:
            version = self._catalog.current()
            if version is None:
                return "no index version has been built yet: run `clearance ingest`"
            with self._readers.hold(version):
                return None
        except StoreError as exc:
            return str(exc)

    def open_versions(self) -> list[str]:
        """The versions this process has open now (the current one, and any still in use)."""
        return self._readers.open_versions()

    def close(self) -> None:
        self._readers.close()


def _parse(hits: list[Hit], version: str) -> tuple[list[ChunkHit], int]:
    """The hits whose payload parses (retrieval/payload.py), and how many did not: those are
    never served (fail closed), whatever their ACL says."""
    parsed: list[ChunkHit] = []
    for hit in hits:
        try:
            payload = ChunkPayload.from_payload(hit.payload)
        except ValueError as exc:
            log.error("index version %s: point %s not served: %s", version, hit.point_id, exc)
            continue
        parsed.append(ChunkHit(hit.point_id, hit.score, payload, hit.similarity))
    return parsed, len(hits) - len(parsed)
