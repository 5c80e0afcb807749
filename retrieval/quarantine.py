"""Quarantine: documents or whole sources taken out of every caller's results until released.

One JSON file (data_dir/quarantine.json), written atomically by the CLI or the admin API and
re-read by every server process when it changes, so a quarantine applies to the next query in
every version. Entries say who quarantined what, when and why. A file that cannot be read fails
the queries (StoreError) rather than serving what may have been quarantined.
"""

from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from retrieval.errors import StoreError
from retrieval.files import file_stamp, write_json_atomic

Kind = Literal["document", "source"]


@dataclass(frozen=True)
class QuarantineEntry:
    kind: Kind
    target: str  # a doc id (SOURCE:PATH) or a source name
    by: str
    at: str
    reason: str


@dataclass(frozen=True)
class Quarantined:
    """What is out of every caller's results now."""

    documents: frozenset[str] = frozenset()
    sources: frozenset[str] = frozenset()

    def holds(self, doc_id: object, source: object) -> bool:
        return doc_id in self.documents or source in self.sources


class Quarantine:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._key: object = ()
        self._entries: list[QuarantineEntry] = []

    def _read(self) -> list[QuarantineEntry]:
        if not self.path.exists():
            return []
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            return [QuarantineEntry(**e) for e in raw["entries"]]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise StoreError(f"quarantine file {self.path} cannot be read ({exc}); fix it or "
                             "restore it from backup") from exc

    def entries(self) -> list[QuarantineEntry]:
        with self._lock:
            key = file_stamp(self.path)
            if key != self._key:
                self._entries = self._read()
                self._key = key
            return list(self._entries)

    def current(self) -> Quarantined:
        entries = self.entries()
        return Quarantined(
            frozenset(e.target for e in entries if e.kind == "document"),
            frozenset(e.target for e in entries if e.kind == "source"),
        )

    def add(self, kind: Kind, target: str, *, by: str, reason: str) -> QuarantineEntry:
        """Quarantine a document or source; a second quarantine of the same target is a no-op
        that returns the first entry."""
        with self._lock:
            entries = self._read()
            for entry in entries:
                if (entry.kind, entry.target) == (kind, target):
                    return entry
            entry = QuarantineEntry(kind, target, by, datetime.now(UTC).isoformat(), reason)
            self._write([*entries, entry])
            return entry

    def release(self, kind: Kind, target: str) -> QuarantineEntry | None:
        """Release a quarantine; None if that target was not quarantined."""
        with self._lock:
            entries = self._read()
            found = next((e for e in entries if (e.kind, e.target) == (kind, target)), None)
            if found is not None:
                self._write([e for e in entries if e is not found])
            return found

    def _write(self, entries: list[QuarantineEntry]) -> None:
        write_json_atomic(self.path, {"entries": [asdict(e) for e in entries]})
        self._key = ()
