"""The pause switch: stop generating answers (answers become extractive) or stop the service.

One JSON file (data_dir/pause.json), written atomically by the CLI or the admin API and re-read
by every server process when it changes, so a pause applies to the next request and survives a
restart. A file that cannot be read counts as both paused: an operator who paused must not be
silently overridden by a damaged file.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from retrieval.errors import StateWriteError, is_full
from retrieval.files import file_stamp, replacing_json

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


class PauseSwitch:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._key: object = ()
        self._state = PauseState()

    def _read(self) -> PauseState:
        if not self.path.exists():
            return PauseState()
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            generation, service = (Paused(**raw[t]) if raw.get(t) else None for t in TARGETS)
            return PauseState(generation, service)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            problem = (f"pause file {self.path} cannot be read ({exc}); fix or delete it, "
                       "or set the pause again")
            log.error("%s", problem)
            return PauseState(problem=problem)

    def current(self) -> PauseState:
        with self._lock:
            key = file_stamp(self.path)
            if key != self._key:
                self._state = self._read()
                self._key = key
            return self._state

    def pause(self, target: Target, *, by: str, reason: str,
              before_commit: Callable[[], None] | None = None) -> Paused:
        """Pause generation or the service; pausing what is paused keeps the first entry.

        `before_commit` (the audit record) runs once the new state is written but before it
        takes effect, under this switch's lock (so it must not use the switch); if it raises,
        nothing changes. StateWriteError if the state cannot be written: nothing changes either.
        """
        with self._lock:
            state = self._read()
            existing: Paused | None = getattr(state, target)
            if existing is not None:
                if before_commit is not None:
                    before_commit()
                return existing
            entry = Paused(by, datetime.now(UTC).isoformat(), reason)
            self._write({**_entries(state), target: entry}, before_commit)
            return entry

    def resume(self, target: Target, before_commit: Callable[[], None] | None = None
               ) -> Paused | None:
        """Resume; the entry that was in force (an unreadable file counts as one), or None if
        it was not paused (then `before_commit` is not run). Failures as for pause()."""
        with self._lock:
            state = self._read()
            entries = _entries(state)
            existing = entries[target]
            if existing is not None:
                self._write({**entries, target: None}, before_commit)
            return existing

    def _write(self, entries: dict[str, Paused | None],
               before_commit: Callable[[], None] | None = None) -> None:
        data = {t: asdict(e) if e else None for t, e in entries.items()}
        step = "write"
        try:
            with replacing_json(self.path, data):
                step = "put in place"  # the new file is complete; the old one still rules
                if before_commit is not None:
                    before_commit()
        except OSError as exc:
            raise StateWriteError(f"cannot {step} the pause file {self.path}: "
                                  f"{exc.strerror or exc}", full=is_full(exc)) from exc
        finally:
            self._key = ()


def _entries(state: PauseState) -> dict[str, Paused | None]:
    if state.problem is not None:
        # Rewriting a damaged file keeps everything paused but the target being resumed.
        kept = Paused("system", datetime.now(UTC).isoformat(),
                      "the pause file was unreadable; resume explicitly")
        return dict.fromkeys(TARGETS, kept)
    return {t: getattr(state, t) for t in TARGETS}
