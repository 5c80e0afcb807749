"""Build a new index version from every declared source, then switch to it."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ingest.chunker import chunk_document
from ingest.errors import IngestError, ParseError
from ingest.parser import parse_document
from ingest.settings import IngestSettings, SourceSettings
from ingest.sources import SourceFile, content_hash, discover
from ingest.tagging import chunk_payload, point_id
from retrieval.embedder import Embedder
from retrieval.store import StoredChunk, VersionWriter
from retrieval.versions import VersionCatalog, VersionInfo, new_version_id

log = logging.getLogger(__name__)

# Chunks are embedded and written in batches across documents: one model call per batch.
EMBED_BATCH = 64

Progress = Callable[[int, int], None]  # (files done, files total)


@dataclass(frozen=True)
class FileProblem:
    """A file that was not ingested, and why."""

    doc_id: str
    reason: str


@dataclass
class IngestReport:
    """What one ingest run did."""

    version_id: str
    documents: int = 0
    chunks: int = 0
    errors: list[FileProblem] = field(default_factory=list)
    no_acl: list[FileProblem] = field(default_factory=list)


class _BatchWriter:
    """Collects tagged chunks and embeds and writes them EMBED_BATCH at a time."""

    def __init__(self, writer: VersionWriter, embedder: Embedder) -> None:
        self._writer = writer
        self._embedder = embedder
        self._pending: list[tuple[str, dict[str, object]]] = []

    def add(self, chunk_id: str, payload: dict[str, object]) -> None:
        self._pending.append((chunk_id, payload))
        if len(self._pending) >= EMBED_BATCH:
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        vectors = self._embedder.embed_documents([str(p["text"]) for _, p in self._pending])
        self._writer.upsert(
            [
                StoredChunk(cid, vec.tolist(), payload)
                for (cid, payload), vec in zip(self._pending, vectors, strict=True)
            ]
        )
        self._pending.clear()


def _ingest_file(
    file: SourceFile,
    batch: _BatchWriter,
    settings: IngestSettings,
    version_id: str,
    embedder: Embedder,
) -> int:
    """Parse, chunk and tag one file; returns its chunk count. ParseError if it has no text."""
    doc = parse_document(file.path)
    chunks = chunk_document(
        doc,
        chunk_size=settings.chunk_size,
        chunk_overlap=settings.chunk_overlap,
        tokenizer=embedder.token_ids,  # bound in the embedder's units: it reads 256 at most
    )
    if not chunks:
        raise ParseError(f"{file.path.name}: no text to index")
    version, ingested_at = content_hash(file.path), datetime.now(UTC)
    title = doc.title or file.path.stem
    for chunk in chunks:
        payload = chunk_payload(
            file,
            chunk,
            title=title,
            doc_version=version,
            ingested_at=ingested_at,
            index_version=version_id,
        )
        batch.add(point_id(file.doc_id, chunk.index), payload)
    return len(chunks)


def build_index_version(
    sources: Sequence[SourceSettings],
    settings: IngestSettings,
    *,
    catalog: VersionCatalog,
    embedder: Embedder,
    progress: Progress | None = None,
) -> IngestReport:
    """Parse every source into a new sealed version and switch to it.

    A file without a matching ACL rule is not read at all; a file that fails to parse is
    reported and the rest go on. If nothing could be ingested, the new version is discarded
    and the current one stays.
    """
    files = list(discover(sources))
    report = IngestReport(version_id=new_version_id())
    writer = catalog.backend.create(report.version_id, dim=embedder.dim)
    try:
        batch = _BatchWriter(writer, embedder)
        for done, file in enumerate(files, start=1):
            if file.acl is None:
                report.no_acl.append(FileProblem(file.doc_id, "no ACL rule matches this file"))
            else:
                try:
                    report.chunks += _ingest_file(
                        file, batch, settings, report.version_id, embedder
                    )
                    report.documents += 1
                except ParseError as exc:
                    report.errors.append(FileProblem(file.doc_id, str(exc)))
            if progress:
                progress(done, len(files))
        batch.flush()
        if report.documents == 0:
            raise IngestError(
                "no document could be ingested; the current index version is unchanged"
            )
        writer.seal()
    except BaseException:
        writer.abort()
        raise
    catalog.record(
        VersionInfo(
            id=report.version_id,
            created_at=datetime.now(UTC).isoformat(),
            embedder=embedder.name,
            dim=embedder.dim,
            documents=report.documents,
            chunks=report.chunks,
            sources=[s.name for s in sources],
        )
    )
    catalog.switch(report.version_id)
    log.info("index version %s: %d documents, %d chunks", report.version_id,
             report.documents, report.chunks)
    return report
