"""The pause switch: stop generating answers (answers become extractive) or stop the service.

One JSON file (data_dir/pause.json, a JsonStateFile), changed under its lock by the CLI or the
admin API and re-read by every server process when it changes, so a pause applies to the next
request and survives a restart. A file that cannot be read counts as both paused: an operator
who paused must not be silently overridden by a damaged file.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from control.backend import PgStateBackend, open_document
from control.errors import StateUnreadable

log = logging.getLogger(__name__)

Target = Literal["generation", "service"]
TARGETS: tuple[Target, ...] = ("generation", "service")


@dataclass(frozen=True)
class Paused:
    """Who paused what, when and why."""

    by: str
    at: str
    reason: str


@dataclass(frozen=True)
class PauseState:
    generation: Paused | None = None
    service: Paused | None = None
    problem: str | None = None  # the pause file could not be read: everything counts as paused

    @property
    def generation_paused(self) -> bool:
        return self.generation is not None or self.problem is not None

    @property
    def service_paused(self) -> bool:
        return self.service is not None or self.problem is not None

    def service_message(self) -> str:
        if self.problem is not None:
            return f"the service is paused: {self.problem}"
        assert self.service is not None
        reason = f" ({self.service.reason})" if self.service.reason else ""
        return (f"the service is paused by an administrator since {self.service.at}{reason}; "
                "try again later")


def _parse(raw: Any) -> PauseState:
    if raw is None:
        return PauseState()
    generation, service = (Paused(**raw[t]) if raw.get(t) else None for t in TARGETS)
    return PauseState(generation, service)


def _damaged(where: object, exc: Exception) -> PauseState:
    problem = (f"pause file {where} cannot be read ({exc}); fix or delete it, or set the pause "
               "again")
    log.error("%s", problem)
    return PauseState(problem=problem)


def _dump(state: PauseState) -> dict[str, Any]:
    return {t: asdict(e) if (e := getattr(state, t)) else None for t in TARGETS}


class PauseSwitch:
    def __init__(self, where: Path | PgStateBackend) -> None:
        self._file = open_document(where, "pause", parse=_parse, dump=_dump, fallback=_damaged,
                                   unreadable=lambda p, e: StateUnreadable(str(e)),
                                   what="pause file")
        self.where = self._file.where
        self.path = None if isinstance(where, PgStateBackend) else Path(where)  # the file

    def current(self) -> PauseState:
        return self._file.current()[1]

    def pause(self, target: Target, *, by: str, reason: str,
              before_commit: Callable[[], None] | None = None) -> Paused:
        """Pause generation or the service; pausing what is paused keeps the first entry.

        `before_commit` (the audit record) runs once the new state is written but before it
        takes effect; if it raises, nothing changes. StateWriteError if the state cannot be
        written: nothing changes either.
        """
        with self._file.change(before_commit) as change:
            entries = _entries(change.value)
            existing = entries[target]
            if existing is not None and change.value.problem is None:
                change.commit, change.audit_unchanged = False, True
            else:
                existing = Paused(by, datetime.now(UTC).isoformat(), reason)
                change.value = _state({**entries, target: existing})
        return existing

    def resume(self, target: Target, before_commit: Callable[[], None] | None = None
               ) -> Paused | None:
        """Resume; the entry that was in force (an unreadable file counts as one), or None if
        it was not paused (then `before_commit` is not run). Failures as for pause()."""
        with self._file.change(before_commit) as change:
            entries = _entries(change.value)
            existing = entries[target]
            if existing is None:
                change.commit = False
            else:
                change.value = _state({**entries, target: None})
        return existing


def _state(entries: dict[str, Paused | None]) -> PauseState:
    return PauseState(generation=entries["generation"], service=entries["service"])


def _entries(state: PauseState) -> dict[str, Paused | None]:
    if state.problem is not None:
        # Rewriting a damaged file keeps everything paused but the target being changed.
        kept = Paused("system", datetime.now(UTC).isoformat(),
                      "the pause file was unreadable; resume explicitly")
        return dict.fromkeys(TARGETS, kept)
    return {t: getattr(state, t) for t in TARGETS}
