"""What a scrape of /metrics says about the index: the current version's age and size, and each
source's documents by how long ago they were last modified (`source_modified_at`).

A version never changes once sealed, so what is read from its chunks is read once per version
and kept; only the ages are worked out again at each scrape.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime

from retrieval.errors import StoreError
from retrieval.payload import ChunkPayload
from retrieval.versions import VersionCatalog

# Age bands of a document's source_modified_at: (label, upper bound in days).
AGE_BANDS = (("1d", 1), ("7d", 7), ("30d", 30), ("90d", 90), ("365d", 365), ("older", None))


@dataclass(frozen=True)
class IndexFacts:
    version: str | None
    age_s: float | None  # since the current version was built
    documents: int
    # (source, age band) -> documents
    by_source_age: dict[tuple[str, str], int]


@dataclass(frozen=True)
class _Version:
    id: str
    created_at: datetime
    documents: int
    modified: tuple[tuple[str, datetime], ...]  # (source, source_modified_at) per document


class IndexFactsReader:
    """IndexFacts of the catalog's current version, its chunks read once per version."""

    def __init__(self, catalog: VersionCatalog) -> None:
        self._catalog = catalog
        self._cached: _Version | None = None
        self._lock = threading.Lock()

    def facts(self, now: datetime | None = None) -> IndexFacts:
        now = now or datetime.now(UTC)
        try:
            version = self._version()
        except (StoreError, OSError) as exc:
            raise StoreError(f"the index cannot be described: {exc}") from exc
        if version is None:
            return IndexFacts(None, None, 0, {})
        bands: Counter[tuple[str, str]] = Counter()
        for source, modified in version.modified:
            bands[(source, _band((now - modified).total_seconds() / 86400))] += 1
        return IndexFacts(version.id, (now - version.created_at).total_seconds(),
                          version.documents, dict(bands))

    def _version(self) -> _Version | None:
        current = self._catalog.current()
        if current is None:
            return None
        with self._lock:
            if self._cached is not None and self._cached.id == current:
                return self._cached
            info = self._catalog.get(current)
            if info is None:
                return None
            self._cached = _Version(current, _parse_time(info.created_at), info.documents,
                                    self._modified(current))
            return self._cached

    def _modified(self, version_id: str) -> tuple[tuple[str, datetime], ...]:
        reader = self._catalog.backend.open(version_id)
        try:
            seen: dict[str, tuple[str, datetime]] = {}
            for chunk in reader.iter_chunks():
                try:
                    p = ChunkPayload.from_payload(chunk.payload)
                except ValueError:
                    continue  # never served: not counted either
                if p.doc_id not in seen:
                    seen[p.doc_id] = (p.source, _parse_time(p.source_modified_at))
            return tuple(seen.values())
        finally:
            reader.close()


def _band(days: float) -> str:
    for label, bound in AGE_BANDS:
        if bound is None or days < bound:
            return label
    return AGE_BANDS[-1][0]


def _parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
