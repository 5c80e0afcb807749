"""Users the organisation has deactivated: refused at their next request, whatever they hold.

One state document (`directory`: data_dir/directory.json, or a row of the PostgreSQL control
plane), changed under its lock and re-read when it changes, so a deactivation made through the
CLI, the admin API or any replica applies to the user's next request, with an API key of
theirs, an access token from the identity provider, or a front-end naming them. A document that
cannot be read fails every request (StateUnreadable): it may hold a deactivation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from control.backend import PgStateBackend, open_document
from control.errors import StateUnreadable
from control.keys import validate_user


@dataclass(frozen=True)
class Deactivation:
    """Who deactivated the user, when and why."""

    by: str
    at: str
    reason: str


def _parse(raw: Any) -> dict[str, Deactivation]:
    if raw is None:
        return {}
    return {validate_user(str(user)): Deactivation(**entry)
            for user, entry in raw["deactivated"].items()}


def _unreadable(where: object, exc: Exception) -> StateUnreadable:
    return StateUnreadable(f"the user directory {where} cannot be read ({exc}); fix it or "
                           "restore it from backup")


class Directory:
    def __init__(self, where: Path | PgStateBackend) -> None:
        self._file = open_document(
            where, "directory", parse=_parse, unreadable=_unreadable, what="user directory",
            dump=lambda d: {"deactivated": {u: asdict(e) for u, e in sorted(d.items())}})
        self.where = self._file.where

    def deactivated(self, user: str) -> Deactivation | None:
        """The user's deactivation in force, or None."""
        return self._file.current()[1].get(user)

    def all_deactivated(self) -> dict[str, Deactivation]:
        return dict(self._file.current()[1])

    def deactivate(self, user: str, *, by: str, reason: str,
                   before_commit: Callable[[], None] | None = None) -> Deactivation:
        """Deactivate `user` (ValueError for a bad name); deactivating again keeps the first
        entry, and is on record too."""
        validate_user(user)
        with self._file.change(before_commit) as change:
            entry = change.value.get(user)
            if entry is not None:
                change.commit, change.audit_unchanged = False, True
            else:
                entry = Deactivation(by, datetime.now(UTC).isoformat(timespec="seconds"),
                                     reason)
                change.value[user] = entry
        return entry

    def activate(self, user: str, before_commit: Callable[[], None] | None = None
                 ) -> Deactivation | None:
        """Lift the deactivation; None if the user was not deactivated (nothing written)."""
        with self._file.change(before_commit) as change:
            entry = change.value.pop(user, None)
            change.commit = entry is not None
        return entry
