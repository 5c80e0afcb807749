"""The source viewer's use case: one document version as the caller may read it now, and its
original file, each answered through `RetrievalService.fetch` (audited as "view" and
"download"), which checks the caller's access again at the call.

A document that does not exist, one the caller may not read and a version that is not the one in
the current index are the same NoReadableVersion, with the same message; only a caller who may
read the document learns which version is current (`current_version`), as `fetch` would tell
them anyway.

The original is read again from its declared source, found as discovery finds files
(ingest/sources.py `locate`: no link out of the source, no hidden or unsafe path, no directory
reached through a link), and only while its bytes still hash to the version: a file changed or
gone since the build is OriginalGone, said only to a caller who may read the document. What is
served is the bytes that were hashed, read at most to the source's `max_file_bytes`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from application.answering import Fetched, RetrievalService
from application.errors import NoReadableVersion, OriginalGone
from ingest.parser import media_type
from ingest.settings import FileLimits, SourceSettings
from ingest.sources import locate, read_version
from retrieval.payload import ChunkPayload
from retrieval.retriever import Retrieved
from retrieval.scope import Scope

log = logging.getLogger(__name__)

GONE = "the original of this version is no longer at its source"


@dataclass(frozen=True)
class Original:
    """A document version's original file: `content` None if it is not at its source now."""

    name: str  # the file's name, the last part of its uri
    media_type: str  # by its suffix (ingest/parser.py)
    content: bytes | None


@dataclass(frozen=True)
class DocumentView:
    fields: dict[str, Any]  # `document_fields`
    original: Original


def document_fields(retrieved: Retrieved, *, cited: str | None = None) -> dict[str, Any]:
    """One document as the viewer and the MCP tool `fetch` describe it, from its chunks (at
    least one, in order); `cited` flags the section of that chunk id."""
    first = retrieved.hits[0].payload
    return {
        "index_version": retrieved.index_version,
        "doc_id": first.doc_id, "source": first.source, "title": first.title, "uri": first.uri,
        "doc_version": first.doc_version, "source_modified_at": first.source_modified_at,
        "ingested_at": first.ingested_at,
        "pages": sorted({h.payload.page for h in retrieved.hits if h.payload.page is not None}),
        "sections": [{"chunk_id": h.point_id, "chunk_index": h.payload.chunk_index,
                      "page": h.payload.page, "section": h.payload.section,
                      "text": h.payload.text, "cited": h.point_id == cited}
                     for h in retrieved.hits],
        "complete": retrieved.complete,
    }


class Documents:
    """The viewer and the download over the caller's access now and the declared sources."""

    def __init__(self, retrieval: RetrievalService, sources: Sequence[SourceSettings],
                 limits: FileLimits) -> None:
        self._retrieval = retrieval
        self._sources = {s.name: s for s in sources}
        self._limits = limits

    def view(self, doc_id: str, doc_version: str, *, scope: Scope, request_id: str,
             chunk: str | None = None) -> DocumentView:
        """The document version's sections, `chunk` flagged, and whether its original is at its
        source; NoReadableVersion unless the caller may read it and it is the current one."""
        fetched = self._fetch(doc_id, doc_version, scope, request_id, "view")
        retrieved = fetched.retrieved
        return DocumentView(document_fields(retrieved, cited=chunk),
                            self._original(retrieved.hits[0].payload))

    def download(self, doc_id: str, doc_version: str, *, scope: Scope, request_id: str
                 ) -> Original:
        """The original file of the version (its `content` set); NoReadableVersion as `view`,
        OriginalGone if the file at its source is no longer that version."""
        fetched = self._fetch(doc_id, doc_version, scope, request_id, "download")
        original = self._original(fetched.retrieved.hits[0].payload)
        if original.content is None:
            # The fetch record says the caller may have it; this one says they did not get it.
            self._retrieval.record_failure("download", request_id, GONE)
            raise OriginalGone(GONE)
        return original

    def _fetch(self, doc_id: str, doc_version: str, scope: Scope, request_id: str,
               action: str) -> Fetched:
        fetched = self._retrieval.fetch(doc_id, scope=scope, request_id=request_id,
                                        doc_version=doc_version, action=action)
        if not fetched.retrieved.hits:
            raise NoReadableVersion(current_version=fetched.current_version)
        return fetched

    def _original(self, payload: ChunkPayload) -> Original:
        name = payload.uri.rsplit("/", 1)[-1]
        kind = media_type(name)
        source = self._sources.get(payload.source)
        found = None if source is None else locate(source, payload.uri)
        if source is None or found is None:
            return Original(name, kind, None)
        limit = self._limits.overridden(source.limits).max_file_bytes
        try:
            content = read_version(found.path, payload.doc_version, int(limit))
        except OSError as exc:
            log.warning("%s: the original cannot be read: %s", payload.doc_id, exc)
            content = None
        return Original(name, kind, content)
