"""Web page sessions signed out before they expire.

A session cookie is sealed, not stored (identity/web_session.py): it is valid until its expiry
wherever a copy of it is. Signing out records the session's id here (a keyed hash of its nonce,
never the cookie), so a copy is refused as well, by every process of the deployment. One state
document (`web_signouts`: data_dir/web_signouts.json, or a row of the PostgreSQL control plane);
an entry is kept until the session would have expired, and dropped at the next sign-out after
that. A document that cannot be read refuses every session (StateUnreadable): it may hold the
one presented.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from control.backend import PgStateBackend, open_document
from control.errors import StateUnreadable


def _parse(raw: Any) -> dict[str, float]:
    if raw is None:
        return {}
    entries = raw["signed_out"]
    if not isinstance(entries, dict):
        raise ValueError("signed_out is not an object of session ids")
    return {str(session): float(until) for session, until in entries.items()}


def _unreadable(where: object, exc: Exception) -> StateUnreadable:
    return StateUnreadable(f"the signed-out web sessions {where} cannot be read ({exc}); fix "
                           "the file or delete it (that lets signed-out sessions in again until "
                           "they expire)")


class SignedOutSessions:
    def __init__(self, where: Path | PgStateBackend) -> None:
        self._file = open_document(where, "web_signouts", parse=_parse, unreadable=_unreadable,
                                   what="signed-out web sessions",
                                   dump=lambda d: {"signed_out": dict(sorted(d.items()))})
        self.where = self._file.where

    def sign_out(self, session_id: str, expires_at: float, now: float | None = None) -> None:
        """Refuse the session from now until it would have expired anyway."""
        now = time.time() if now is None else now
        with self._file.change() as change:
            change.value = {s: until for s, until in change.value.items() if until > now}
            change.value[session_id] = expires_at

    def signed_out(self, session_id: str) -> bool:
        return session_id in self._file.current()[1]
