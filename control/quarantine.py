"""Quarantine: documents or whole sources taken out of every caller's results until released.

One JSON file (data_dir/quarantine.json, a JsonStateFile), changed under its lock by the CLI or
the admin API and re-read by every server process when it changes, so a quarantine applies to
the next query in every version. Entries say who quarantined what, when and why. A file that
cannot be read fails the queries (StateUnreadable) rather than serving what may have been
quarantined.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from control.backend import PgStateBackend, open_document
from control.errors import StateUnreadable

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


def _parse(raw: Any) -> list[QuarantineEntry]:
    if raw is None:
        return []
    entries = [QuarantineEntry(**e) for e in raw["entries"]]
    if any(e.kind not in ("document", "source") for e in entries):
        raise ValueError("an entry's kind is neither document nor source")
    return entries


def _unreadable(where: object, exc: Exception) -> StateUnreadable:
    return StateUnreadable(f"quarantine file {where} cannot be read ({exc}); fix it or restore it "
                           "from backup")


class Quarantine:
    def __init__(self, where: Path | PgStateBackend) -> None:
        self._file = open_document(where, "quarantine", parse=_parse, unreadable=_unreadable,
                                   dump=lambda es: {"entries": [asdict(e) for e in es]},
                                   what="quarantine file")
        self.where = self._file.where
        self.path = None if isinstance(where, PgStateBackend) else Path(where)  # the file

    def entries(self) -> list[QuarantineEntry]:
        return list(self._file.current()[1])

    def current(self) -> Quarantined:
        entries = self.entries()
        return Quarantined(
            frozenset(e.target for e in entries if e.kind == "document"),
            frozenset(e.target for e in entries if e.kind == "source"),
        )

    def add(self, kind: Kind, target: str, *, by: str, reason: str,
            before_commit: Callable[[], None] | None = None) -> QuarantineEntry:
        """Quarantine a document or source; a second quarantine of the same target keeps the
        first entry (and returns it). `before_commit` as for JsonStateFile.change."""
        with self._file.change(before_commit) as change:
            for entry in change.value:
                if (entry.kind, entry.target) == (kind, target):
                    change.commit, change.audit_unchanged = False, True
                    break
            else:
                entry = QuarantineEntry(kind, target, by, datetime.now(UTC).isoformat(), reason)
                change.value = [*change.value, entry]
        return entry

    def release(self, kind: Kind, target: str, before_commit: Callable[[], None] | None = None
                ) -> QuarantineEntry | None:
        """Release a quarantine; None if that target was not quarantined (then nothing is
        written and `before_commit` is not run)."""
        with self._file.change(before_commit) as change:
            found = next((e for e in change.value if (e.kind, e.target) == (kind, target)), None)
            if found is None:
                change.commit = False
            else:
                change.value = [e for e in change.value if e is not found]
        return found
