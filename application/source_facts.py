"""What the current index version holds of each source: documents, chunks, and when its
content last changed (the newest `source_modified_at`) and was last ingested (the newest
`ingested_at`). Read from the chunks themselves, for the report and the integration record."""

from __future__ import annotations

from dataclasses import dataclass, field

from retrieval.versions import VersionCatalog


@dataclass
class SourceFacts:
    documents: int = 0
    chunks: int = 0
    newest_modified: str | None = None
    last_ingested: str | None = None
    _docs: set[str] = field(default_factory=set, repr=False)


def source_facts(catalog: VersionCatalog) -> tuple[str | None, dict[str, SourceFacts]]:
    """(the current version, or None before the first build; facts per source name).
    StoreError if the version cannot be read: no figure is made up."""
    current = catalog.current()
    if current is None:
        return None, {}
    facts: dict[str, SourceFacts] = {}
    reader = catalog.backend.open(current)
    try:
        for chunk in reader.iter_chunks():
            p = chunk.payload
            entry = facts.setdefault(str(p.get("source")), SourceFacts())
            entry.chunks += 1
            entry._docs.add(str(p.get("doc_id")))
            entry.newest_modified = _later(entry.newest_modified, p.get("source_modified_at"))
            entry.last_ingested = _later(entry.last_ingested, p.get("ingested_at"))
    finally:
        reader.close()
    for entry in facts.values():
        entry.documents = len(entry._docs)
    return current, facts


def _later(a: str | None, b: object) -> str | None:
    if not isinstance(b, str):
        return a
    return b if a is None or b > a else a
