"""Index versions: their manifests, the current pointer, switching and rollback."""

from __future__ import annotations

import json
import logging
import secrets
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from control.state_file import write_json_atomic
from retrieval.errors import StoreError
from retrieval.payload import ChunkPayload
from retrieval.store import VectorBackend

log = logging.getLogger(__name__)

_DOCS = ".docs.json"  # beside <id>.json: the version's document table


@dataclass(frozen=True)
class VersionInfo:
    """What a version holds and how it was built; written once, when the version is sealed."""

    id: str
    created_at: str
    embedder: str
    dim: int
    documents: int
    chunks: int
    sources: list[str] = field(default_factory=list)
    job_id: str | None = None
    chunking: str = ""  # how documents were cut; reuse across versions needs the same
    sparse: str = ""  # the BM25 encoder of its sparse vectors (retrieval/bm25.py); "" = none


@dataclass(frozen=True)
class DocumentEntry:
    """One document of a version: where it came from and the ACL its chunks were written with."""

    source: str
    uri: str
    acl: tuple[str, ...]
    # A symbolic link followed within its source: its target's uri, whose ACL applies as well.
    target: str | None = None


def new_version_id(now: datetime | None = None) -> str:
    """A sortable, unique id: the UTC build time plus a random suffix."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S")
    return f"v{stamp}-{secrets.token_hex(2)}"


class VersionCatalog:
    """Manifests on disk beside the store; the store itself holds the current pointer."""

    def __init__(self, manifest_dir: Path, backend: VectorBackend) -> None:
        self._dir = manifest_dir
        self.backend = backend

    def record(self, info: VersionInfo) -> None:
        """Write the manifest of a version, atomically and durably."""
        write_json_atomic(self._dir / f"{info.id}.json", asdict(info))

    def record_documents(self, version_id: str, documents: dict[str, DocumentEntry]) -> None:
        """Write the document table of a version (before it is sealed): doc id → entry."""
        table = {
            doc_id: {"source": e.source, "uri": e.uri, "acl": list(e.acl)}
            | ({"target": e.target} if e.target is not None else {})
            for doc_id, e in sorted(documents.items())
        }
        write_json_atomic(self._dir / f"{version_id}{_DOCS}", table)

    def documents(self, version_id: str) -> dict[str, DocumentEntry]:
        """The document table of a version: doc id → source, uri and the ACL it was built with.

        Versions built before tables were written get theirs from their chunks (once; then it
        is saved). StoreError if neither can be read.
        """
        path = self._dir / f"{version_id}{_DOCS}"
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            table = self._documents_from_chunks(version_id)
            self.record_documents(version_id, table)
            return table
        except (OSError, ValueError) as exc:
            raise StoreError(f"cannot read the document table {path}: {exc}") from exc
        return {
            doc_id: DocumentEntry(e["source"], e["uri"], tuple(e["acl"]), e.get("target"))
            for doc_id, e in raw.items()
        }

    def has_document(self, doc_id: str) -> bool:
        """Whether any sealed version holds the document."""
        return any(doc_id in self.documents(info.id) for info in self.sealed())

    def _documents_from_chunks(self, version_id: str) -> dict[str, DocumentEntry]:
        reader = self.backend.open(version_id)
        try:
            table: dict[str, DocumentEntry] = {}
            unparsed = 0
            for chunk in reader.iter_chunks():
                try:
                    p = ChunkPayload.from_payload(chunk.payload)
                except ValueError:
                    unparsed += 1  # never served (retrieval/retriever.py): no entry either
                    continue
                table.setdefault(p.doc_id, DocumentEntry(p.source, p.uri, p.acl, p.link_target))
            if unparsed:
                log.warning("index version %s: %d chunk(s) with a payload that does not parse "
                            "left out of its document table", version_id, unparsed)
            return table
        finally:
            reader.close()

    def forget(self, version_id: str) -> None:
        """Delete a manifest and document table (of a build that was aborted)."""
        (self._dir / f"{version_id}.json").unlink(missing_ok=True)
        (self._dir / f"{version_id}{_DOCS}").unlink(missing_ok=True)

    def get(self, version_id: str) -> VersionInfo | None:
        try:
            raw = json.loads((self._dir / f"{version_id}.json").read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        return VersionInfo(**raw)

    def sealed(self) -> list[VersionInfo]:
        """Versions present both in the store and in the manifests, oldest first."""
        infos = (self.get(v) for v in self.backend.versions())
        return sorted((i for i in infos if i is not None), key=lambda i: (i.created_at, i.id))

    def current(self) -> str | None:
        return self.backend.current()

    def prune(self, keep: int) -> list[str]:
        """Delete all but the newest `keep` versions, never the current one; returns the ids."""
        current = self.current()
        versions = [i.id for i in self.sealed()]
        doomed = [v for v in versions[: max(len(versions) - keep, 0)] if v != current]
        for version_id in doomed:
            self.backend.drop(version_id)
            self.forget(version_id)
        # Manifests of builds killed between their manifest and their seal.
        present = set(self.backend.versions())
        for manifest in self._dir.glob("*.json"):
            if manifest.name.removesuffix(_DOCS).removesuffix(".json") not in present:
                manifest.unlink(missing_ok=True)
        return doomed

    def switch(self, version_id: str) -> None:
        if self.get(version_id) is None:
            raise StoreError(f"index version {version_id!r} has no manifest; it was never sealed")
        self.backend.switch(version_id)

    def rollback(self, to: str | None = None) -> str:
        """Switch to `to`, or to the version built before the current one; returns the id."""
        versions = [i.id for i in self.sealed()]
        if to is not None:
            if to not in versions:
                raise StoreError(
                    f"index version {to!r} does not exist; `clearance index versions` lists them"
                )
            target = to
        else:
            current = self.current()
            if current not in versions or versions.index(current) == 0:
                raise StoreError("there is no earlier index version to roll back to")
            target = versions[versions.index(current) - 1]
        self.backend.switch(target)
        return target
