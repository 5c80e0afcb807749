"""Build a new index version from every declared source, then switch to it.

The build is incremental: a document whose content (sha256) is the same as in the current
version reuses that version's chunks and vectors instead of being parsed and embedded again.
Its payload takes the new index version, the file's ACL and modified time as they are now, and
keeps `ingested_at` (when that content was ingested). A changed or new file is parsed and
embedded; a deleted one is simply not in the new version. Every chunk also gets a BM25 sparse
vector (retrieval/bm25.py), reused chunks included: it is computed from the chunk's text, so a
version built before sparse vectors, or with other BM25 settings, lends its chunks all the
same. If the current version was built with another embedder (name or dimension), or cannot
be read, every file is parsed and embedded.

A build of one source (`only_source`) reads only that source's files; the other sources'
documents are carried over from the current version as they are (chunks, vectors, modified
time), with the ACL they have now. Without a usable current version it reads every source.

A document's ACL is its override (`clearance acl set`) if it has one, else its source's first
matching rule; a symbolic link followed within its source (`links = "within_source"`) keeps
only what its target's ACL also allows (ingest/sources.py). Links not followed and files with
unsafe names are reported in `skipped`. Each version records its document table (doc id →
source, uri, ACL, link target) beside its manifest: retrieval/access.py compares it with
today's ACLs when the version is served.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from ingest.chunker import chunk_document
from ingest.errors import IngestError, ParseError
from ingest.sandbox import ParserSandbox
from ingest.settings import FileLimits, IngestSettings, SourceSettings
from ingest.sources import Skipped, SourceFile, content_hash, discover
from ingest.tagging import chunk_payload, point_id
from policies.acl_rules import effective_acl
from retrieval.bm25 import Bm25Encoder
from retrieval.embedder import Embedder
from retrieval.errors import StoreError
from retrieval.payload import ChunkPayload, stored_doc_id
from retrieval.store import StoredChunk, VersionWriter
from retrieval.unit_vectors import UNITS_FORMAT, embed_chunk_units
from retrieval.versions import DocumentEntry, VersionCatalog, VersionInfo, new_version_id

log = logging.getLogger(__name__)

# Chunks are embedded and written in batches across documents: one model call per batch
# (the model sorts a batch by length, so larger batches pad less).
EMBED_BATCH = 128
# Reused chunks already have their vectors: they are written in larger batches.
WRITE_BATCH = 512

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
    documents: int = 0  # documents in the new version, reused ones included
    chunks: int = 0  # chunks in the new version, reused ones included
    errors: list[FileProblem] = field(default_factory=list)
    no_acl: list[FileProblem] = field(default_factory=list)
    skipped: list[FileProblem] = field(default_factory=list)  # links not followed, unsafe names
    reused: int = 0  # documents whose chunks and vectors came from the previous version
    carried: int = 0  # of those, documents of other sources in a one-source build
    embedded_chunks: int = 0  # chunks parsed and embedded in this run
    seconds: float = 0.0  # wall time of the whole build


@dataclass(frozen=True)
class _Previous:
    """A chunk of the current version whose payload parsed: what a build may reuse."""

    point_id: str
    vector: Sequence[float]
    payload: ChunkPayload


class _BatchWriter:
    """Embeds new chunks EMBED_BATCH at a time and writes reused ones WRITE_BATCH at a time, in
    a worker thread, while the caller parses the next files. Every chunk gets its BM25 vector.

    One batch is in the worker at a time, and batches are written in the order they were made;
    the next batch waits for the one before it, and an error in the worker surfaces at the next
    add or at flush(). The model's matrix work releases the GIL, so parsing (Python) and
    embedding (torch) overlap.
    """

    def __init__(self, writer: VersionWriter, embedder: Embedder, bm25: Bm25Encoder) -> None:
        self._writer = writer
        self._embedder = embedder
        self._bm25 = bm25
        self._pending: list[tuple[str, ChunkPayload]] = []
        self._ready: list[_Previous] = []
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-embed")
        self._in_flight: Future[None] | None = None

    def add(self, chunk_id: str, payload: ChunkPayload) -> None:
        """A new chunk, to embed."""
        self._pending.append((chunk_id, payload))
        if len(self._pending) >= EMBED_BATCH:
            self._submit_pending()

    def add_ready(self, chunk: _Previous) -> None:
        """A chunk that already has its dense vector."""
        self._ready.append(chunk)
        if len(self._ready) >= WRITE_BATCH:
            self._submit_ready()

    def flush(self) -> None:
        """Write everything added so far; returns when it is written (or raises its error)."""
        self._submit_pending()
        self._submit_ready()
        self._wait()

    def close(self) -> None:
        """Stop the worker (after the batch it is on); call it whatever happened."""
        self._worker.shutdown(wait=True, cancel_futures=True)

    def _wait(self) -> None:
        if self._in_flight is not None:
            done, self._in_flight = self._in_flight, None
            done.result()  # re-raises what the worker raised

    def _submit(self, job: Callable[[], None]) -> None:
        self._wait()
        self._in_flight = self._worker.submit(job)

    def _submit_pending(self) -> None:
        if self._pending:
            batch, self._pending = self._pending, []
            self._submit(lambda: self._embed_and_write(batch))

    def _submit_ready(self) -> None:
        if self._ready:
            batch, self._ready = self._ready, []
            self._submit(lambda: self._encode_and_write(batch))

    def _embed_and_write(self, batch: list[tuple[str, ChunkPayload]]) -> None:
        vectors = self._embedder.embed_documents([p.text for _, p in batch])
        # Each chunk's sentences and table rows too, so answering need not embed them.
        units = embed_chunk_units([p.text for _, p in batch], self._embedder)
        batch = [(cid, replace(payload, unit_vectors=stored))
                 for (cid, payload), stored in zip(batch, units, strict=True)]
        self._writer.upsert(
            [
                StoredChunk(cid, vec.tolist(), payload.to_payload(),
                            self._bm25.encode_document(payload.text))
                for (cid, payload), vec in zip(batch, vectors, strict=True)
            ]
        )

    def _encode_and_write(self, batch: list[_Previous]) -> None:
        self._writer.upsert([
            StoredChunk(c.point_id, c.vector, c.payload.to_payload(),
                        self._bm25.encode_document(c.payload.text))
            for c in batch
        ])


def _file_version(file: SourceFile) -> str:
    """The file's content hash; ParseError if it cannot be read."""
    try:
        return content_hash(file.path)
    except OSError as exc:
        raise ParseError(f"{file.path.name}: cannot read file ({exc.strerror or exc})") from exc


def _ingest_file(
    file: SourceFile,
    version: str,
    batch: _BatchWriter,
    settings: IngestSettings,
    version_id: str,
    embedder: Embedder,
    parser: ParserSandbox,
    limits: FileLimits,
) -> int:
    """Parse (in the sandbox, within `limits`), chunk and tag one file; returns its chunk
    count. ParseError if it has no text, goes over a limit, or cannot be chunked."""
    doc = parser.parse(file.path, limits)
    try:
        chunks = chunk_document(
            doc,
            chunk_size=settings.chunk_size,
            chunk_overlap=settings.chunk_overlap,
            tokenizer=embedder.token_ids,  # bound in the embedder's units: it reads 256 at most
        )
    except Exception as exc:
        # One file's text must not end the build: NLTK's sentence splitter, for one, raises
        # TimeoutError when its regular expressions run over 5 s on one long section.
        log.warning("%s: chunking failed", file.doc_id, exc_info=True)
        raise ParseError(f"{file.path.name}: cannot be cut into chunks "
                         f"({type(exc).__name__}: {str(exc)[:150]})") from exc
    if not chunks:
        raise ParseError(f"{file.path.name}: no text to index")
    ingested_at = datetime.now(UTC)
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


def _reuse_chunks(
    previous: list[_Previous],
    batch: _BatchWriter,
    version_id: str,
    acl: Sequence[str],
    modified_at: str | None,
) -> int:
    """Write the previous version's chunks of an unchanged document; returns the chunk count.

    The vectors and text are kept; the payload gets the new index version, the document's ACL
    now (the rules may have changed, the content did not) and, when the file was read, its
    modified time now.
    """
    if not acl:
        raise ValueError(f"{previous[0].payload.doc_id}: refusing to write a chunk "
                         "without an ACL")
    for chunk in previous:
        payload = replace(chunk.payload, index_version=version_id, acl=tuple(acl))
        if modified_at is not None:
            payload = replace(payload, source_modified_at=modified_at)
        batch.add_ready(replace(chunk, payload=payload))
    return len(previous)


def chunking_fingerprint(settings: IngestSettings, embedder: Embedder) -> str:
    """How documents are cut into chunks: a version built otherwise cannot lend its chunks."""
    return (f"size={settings.chunk_size},overlap={settings.chunk_overlap},tokens={embedder.name},"
            f"units={UNITS_FORMAT}")


def _previous_chunks(
    catalog: VersionCatalog, embedder: Embedder, wanted: Callable[[str], bool], chunking: str
) -> dict[str, list[_Previous]]:
    """The current version's chunks of the documents `wanted` accepts, by document, in order.

    Empty when there is no current version, when it was built with another embedder, or when
    it cannot be read (then every file is parsed and embedded again). The version is read once;
    chunks of documents that are gone are dropped as they are read. A document with a chunk
    whose payload does not parse (retrieval/payload.py) is not reused: it is read again.
    """
    current = catalog.current()
    if current is None:
        return {}
    info = catalog.get(current)
    if info is None or info.embedder != embedder.name or info.dim != embedder.dim:
        log.info(
            "index version %s was built with another embedder (%s, %s dimensions): "
            "every file is embedded again",
            current, info.embedder if info else "unknown", info.dim if info else "unknown",
        )
        return {}
    if info.chunking != chunking:
        log.info("index version %s was chunked as %r, now %r: every file is embedded again",
                 current, info.chunking, chunking)
        return {}
    by_doc: dict[str, list[_Previous]] = {}
    unparsed: set[str] = set()  # documents with a chunk whose payload does not parse
    unparsed_chunks = 0
    try:
        reader = catalog.backend.open(current)
    except StoreError as exc:
        log.warning("cannot open index version %s to reuse its chunks (%s): "
                    "every file is embedded again", current, exc)
        return {}
    try:
        for chunk in reader.iter_chunks():
            try:
                payload = ChunkPayload.from_payload(chunk.payload)
            except ValueError:
                unparsed_chunks += 1
                doc_id = stored_doc_id(chunk.payload)
                if doc_id is not None:
                    unparsed.add(doc_id)
                continue
            if wanted(payload.doc_id):
                by_doc.setdefault(payload.doc_id, []).append(
                    _Previous(chunk.point_id, chunk.vector, payload))
    except StoreError as exc:
        log.warning("cannot read index version %s to reuse its chunks (%s): "
                    "every file is embedded again", current, exc)
        return {}
    finally:
        with contextlib.suppress(StoreError):
            reader.close()
    if unparsed_chunks:
        log.warning("index version %s: %d chunk(s) have a payload that does not parse: their "
                    "documents are read again, not reused", current, unparsed_chunks)
    complete: dict[str, list[_Previous]] = {}
    for doc_id, chunks in by_doc.items():
        chunks.sort(key=lambda c: c.payload.chunk_index)
        # Reuse a document only whole: every chunk 0..n-1, parsed, one content version.
        if (
            doc_id not in unparsed
            and [c.payload.chunk_index for c in chunks] == list(range(len(chunks)))
            and len({c.payload.doc_version for c in chunks}) == 1
        ):
            complete[doc_id] = chunks
    return complete


def build_index_version(
    sources: Sequence[SourceSettings],
    settings: IngestSettings,
    *,
    catalog: VersionCatalog,
    embedder: Embedder,
    progress: Progress | None = None,
    reuse: bool = True,
    only_source: str | None = None,
    acl_overrides: Mapping[str, tuple[str, ...]] | None = None,
    bm25: Bm25Encoder | None = None,
    parser: ParserSandbox | None = None,
) -> IngestReport:
    """Parse the sources into a new sealed version and switch to it.

    A file without an ACL (no override, no matching rule) is not read at all; a file that fails
    to parse is reported and the rest go on. An unchanged file reuses the current version's
    chunks and vectors (see the module docstring); `reuse=False` parses and embeds every file.
    `only_source` reads that source alone and carries the others over. If nothing could be
    ingested, the new version is discarded and the current one stays. `bm25` weights the
    chunks' sparse vectors (default parameters if not given). Files are parsed in `parser`,
    which the caller keeps (and closes) to spare later builds its start-up; without one the
    build starts its own worker at the first file to parse and stops it at the end.
    """
    started = time.perf_counter()
    by_name = {s.name: s for s in sources}
    if only_source is not None and only_source not in by_name:
        raise IngestError(
            f"unknown source {only_source!r}: declared sources are {', '.join(by_name) or 'none'}"
        )
    overrides = acl_overrides or {}
    report = IngestReport(version_id=new_version_id())
    chunking = chunking_fingerprint(settings, embedder)
    read = [by_name[only_source]] if only_source is not None else list(sources)
    skipped: list[Skipped] = []
    files = [_with_override(f, by_name, overrides) for f in discover(read, skipped)]
    file_ids = {f.doc_id for f in files if f.acl}

    def wanted(doc_id: str) -> bool:
        source = doc_id.split(":", 1)[0]
        if only_source is not None and source != only_source:
            return source in by_name  # carried over, unless its source is no longer declared
        return doc_id in file_ids

    previous = _previous_chunks(catalog, embedder, wanted, chunking) if reuse else {}
    if only_source is not None and not previous and catalog.current() is not None:
        log.info("nothing to carry over from the current version: reading every source")
        skipped.clear()
        files = [_with_override(f, by_name, overrides) for f in discover(sources, skipped)]
        file_ids = {f.doc_id for f in files if f.acl}
        only_source = None
        previous = _previous_chunks(catalog, embedder, file_ids.__contains__, chunking)
    report.skipped = [FileProblem(s.doc_id, s.reason) for s in skipped]
    documents: dict[str, DocumentEntry] = {}
    bm25 = bm25 or Bm25Encoder()
    writer = catalog.backend.create(report.version_id, dim=embedder.dim, sparse=True)
    batch = _BatchWriter(writer, embedder, bm25)
    own_parser = parser is None
    parser = parser or ParserSandbox()
    limits = {s.name: settings.limits.overridden(s.limits) for s in sources}
    try:
        for done, file in enumerate(files, start=1):
            if not file.acl:
                report.no_acl.append(FileProblem(file.doc_id, file.no_acl_reason()))
            else:
                old = previous.pop(file.doc_id, None)
                try:
                    version = _file_version(file)
                    if (old is not None and old[0].payload.doc_version == version
                            and old[0].payload.link_target == file.link_target):
                        report.chunks += _reuse_chunks(
                            old, batch, report.version_id, file.acl,
                            file.modified_at.isoformat(),
                        )
                        report.reused += 1
                    else:
                        count = _ingest_file(
                            file, version, batch, settings, report.version_id, embedder,
                            parser, limits[file.source],
                        )
                        report.chunks += count
                        report.embedded_chunks += count
                    report.documents += 1
                    documents[file.doc_id] = DocumentEntry(file.source, file.uri, file.acl,
                                                           file.link_target)
                except ParseError as exc:
                    report.errors.append(FileProblem(file.doc_id, str(exc)))
            if progress:
                progress(done, len(files))
        if only_source is not None:
            # What is left of `previous` are the other sources' documents: carried over.
            for doc_id, chunks in sorted(previous.items()):
                entry = _carried_entry(doc_id, chunks[0], by_name, overrides)
                if not entry.acl:
                    report.no_acl.append(FileProblem(doc_id, "no ACL rule matches this file"))
                    continue
                report.chunks += _reuse_chunks(chunks, batch, report.version_id, entry.acl, None)
                report.documents += 1
                report.reused += 1
                report.carried += 1
                documents[doc_id] = entry
        if own_parser:
            parser.close()
        batch.flush()
        batch.close()
        if report.documents == 0:
            raise IngestError(
                "no document could be ingested; the current index version is unchanged"
            )
        # The manifest goes first: a build killed after its seal is then still listed, and
        # one killed before leaves only a manifest that the next prune removes.
        catalog.record_documents(report.version_id, documents)
        catalog.record(
            VersionInfo(
                id=report.version_id,
                created_at=datetime.now(UTC).isoformat(),
                embedder=embedder.name,
                dim=embedder.dim,
                documents=report.documents,
                chunks=report.chunks,
                sources=sorted({e.source for e in documents.values()}),
                chunking=chunking,
                sparse=bm25.name,
            )
        )
        writer.seal()
    except BaseException:
        if own_parser:
            parser.close()
        batch.close()  # no write may land after the abort
        writer.abort()
        catalog.forget(report.version_id)
        raise
    catalog.switch(report.version_id)
    report.seconds = time.perf_counter() - started
    log.info(
        "index version %s: %d documents (%d reused), %d chunks (%d embedded) in %.1f s",
        report.version_id, report.documents, report.reused, report.chunks,
        report.embedded_chunks, report.seconds,
    )
    return report


def _with_override(
    file: SourceFile,
    by_name: Mapping[str, SourceSettings],
    overrides: Mapping[str, tuple[str, ...]],
) -> SourceFile:
    # A followed link's ACL also depends on its target's override.
    acl = effective_acl(by_name[file.source], file.uri, overrides, file.link_target)
    return file if acl == file.acl else replace(file, acl=acl)


def _carried_entry(
    doc_id: str,
    chunk: _Previous,
    by_name: Mapping[str, SourceSettings],
    overrides: Mapping[str, tuple[str, ...]],
) -> DocumentEntry:
    """The table entry of a document carried over from the current version, with its ACL now."""
    source, uri, target = chunk.payload.source, chunk.payload.uri, chunk.payload.link_target
    acl = effective_acl(by_name[source], uri, overrides, target) or ()
    return DocumentEntry(source, uri, acl, target)
