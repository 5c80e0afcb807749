"""API keys for the principal `user:<name>`, stored as sha256 hashes in a JSON file.

The file is `{"keys": [{"id", "user", "hash", "created_at", "revoked_at"}]}`, mode 0600, changed
under its lock and replaced atomically (control/state_file.py). Plaintext keys are returned once
by `create` and never stored. A server's `KeyStore` reloads the file when it changes, so keys
created or revoked by the CLI (another process) take effect without a restart.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from control.backend import PgStateBackend, open_document
from control.errors import StateUnreadable

KEY_PREFIX = "clr_"
USER_PRINCIPAL_PREFIX = "user:"
# The API documents and checks user names with the same rule (api/routes/operations.py). Not only
# dots: "." and ".." cannot be a segment of a URL path (DELETE /v1/admin/keys/{user}).
USER_PATTERN = r"^[A-Za-z0-9._-]*[A-Za-z0-9_-][A-Za-z0-9._-]*$"
USER_MAX_CHARS = 64
_USER_RE = re.compile(USER_PATTERN)
_HASH_RE = re.compile(r"[0-9a-f]{64}")


class KeyStoreError(StateUnreadable):
    """The key file is corrupt or unreadable; nobody is authenticated from it."""


def principal(user: str) -> str:
    """The principal a user's key authenticates as: `user:<name>`."""
    return USER_PRINCIPAL_PREFIX + user


def validate_user(user: str) -> str:
    """Return `user` if it is a valid user name, else raise ValueError."""
    if not isinstance(user, str) or not _USER_RE.fullmatch(user) or len(user) > USER_MAX_CHARS:
        raise ValueError(f"invalid user name {user!r}: use 1-{USER_MAX_CHARS} characters of "
                         "letters, digits, '.', '_' or '-', not only dots")
    return user


def hash_key(key: str) -> str:
    """sha256 hex of a plaintext key, the only form that is stored."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _parse(raw: Any) -> list[dict[str, Any]]:
    if raw is None:
        return []
    keys = raw["keys"]
    if not isinstance(keys, list):
        raise ValueError("'keys' is not a list")
    for entry in keys:
        _check_entry(entry)
    return keys


def _unreadable(where: object, exc: Exception) -> KeyStoreError:
    if not isinstance(exc, ValueError | KeyError | TypeError):  # I/O, or the database
        return KeyStoreError(f"API key file {where} could not be read: {exc}")
    return KeyStoreError(f"API key file {where} is corrupt: {exc}")


class KeyStore:
    """Create, revoke and authenticate API keys kept in one JSON file (a JsonStateFile, 0600)."""

    def __init__(self, where: Path | PgStateBackend) -> None:
        self._file = open_document(where, "keys", parse=_parse, dump=lambda keys: {"keys": keys},
                                   unreadable=_unreadable, what="API key file", mode=0o600)
        self.where = self._file.where
        self.path = None if isinstance(where, PgStateBackend) else Path(where)  # the file

    def create(self, user: str, before_commit: Callable[[], None] | None = None) -> str:
        """Add a key for `user` and return the plaintext key, which is not stored anywhere."""
        validate_user(user)
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        entry = {
            "id": secrets.token_hex(8),
            "user": user,
            "hash": hash_key(key),
            "created_at": _now(),
            "revoked_at": None,
        }
        with self._file.change(before_commit) as change:
            change.value.append(entry)
        return key

    def revoke(self, user: str, before_commit: Callable[[], None] | None = None) -> int:
        """Revoke every active key of `user`; return how many were revoked."""
        validate_user(user)
        now = _now()
        count = 0
        with self._file.change(before_commit) as change:
            for entry in change.value:
                if entry["user"] == user and entry["revoked_at"] is None:
                    entry["revoked_at"] = now
                    count += 1
            change.commit = count > 0
            change.audit_unchanged = True  # revoking nothing is on record too
        return count

    def users(self) -> list[str]:
        """The users with at least one active key."""
        return sorted({e["user"] for e in self._file.current()[1] if e["revoked_at"] is None})

    def active_keys(self, user: str) -> int:
        """How many active keys `user` holds."""
        return sum(1 for e in self._file.current()[1]
                   if e["user"] == user and e["revoked_at"] is None)

    def authenticate(self, key: str) -> str | None:
        """The user name of an active key, or None. Raises KeyStoreError if the file is corrupt."""
        if not isinstance(key, str) or not key.startswith(KEY_PREFIX):
            return None
        digest = hash_key(key)
        keys = self._file.current()[1]
        user = None
        # No early exit: the time taken does not depend on where (or whether) the key matched.
        for entry in keys:
            if hmac.compare_digest(entry["hash"], digest) and entry["revoked_at"] is None:
                user = entry["user"]
        return user


def _check_entry(entry: Any) -> None:
    if not isinstance(entry, dict):
        raise ValueError("a key entry is not an object")
    for name in ("id", "user", "hash", "created_at"):
        if not isinstance(entry.get(name), str):
            raise ValueError(f"a key entry has no string {name!r}")
    # compare_digest rejects non-ASCII strings, so a bad hash must fail here, not at login.
    if not _HASH_RE.fullmatch(entry["hash"]):
        raise ValueError("a key entry's 'hash' is not a sha256 hex digest")
    if "revoked_at" not in entry:
        raise ValueError("a key entry has no 'revoked_at'")
    if entry["revoked_at"] is not None and not isinstance(entry["revoked_at"], str):
        raise ValueError("a key entry has a non-string 'revoked_at'")
