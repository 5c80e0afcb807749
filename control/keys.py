"""API keys for the principal `user:<name>`, stored as sha256 hashes in one state document.

The document is `{"keys": [{"id", "user", "hash", "created_at", "revoked_at", "name", "kind",
"scope", "expires_at"}]}` (a file of mode 0600, or a row of the PostgreSQL control plane),
changed under its lock (control/state_file.py). Plaintext keys are returned once by `create`
and `rotate` and never stored. A server's `KeyStore` re-reads the document when it changes, so
keys created or revoked by the CLI (another process) take effect without a restart.

Lifecycle: a key is `personal`, `service` (labels, listed), `frontend` (a trusted front-end
that names its end user in a header, api/frontends.py: never a user itself) or `provisioning`
(the identity provider's SCIM client, api/routes/scim.py: accepted on /scim/v2 only, never a
user elsewhere). It has a `scope`
(`admin`: what the caller's policy allows; `query`: search, chat and completions only, refused
on admin routes even if the policy would allow them; a front-end key is always `query`), and
may expire (`expires_at`; an expired key is refused
like a revoked one). `rotate` issues a new key with the same user, name, kind, scope and
lifetime, and cuts the old key's life to an overlap during which both work. When a key was
last used is kept apart (`key_usage`), written at most once a minute per key and process, so
authentication does not rewrite the key document. Keys written before these fields existed
read as personal, scope admin, no expiry.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from control.backend import PgStateBackend, open_document
from control.errors import StateUnreadable

log = logging.getLogger(__name__)

KEY_PREFIX = "clr_"
Kind = Literal["personal", "service", "frontend", "provisioning"]
KeyScope = Literal["admin", "query"]
KINDS: tuple[Kind, ...] = ("personal", "service", "frontend", "provisioning")
SCOPES: tuple[KeyScope, ...] = ("admin", "query")
USAGE_WRITE_EVERY_S = 60.0
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


def user_of_address(address: str, domain: str) -> str:
    """The user an e-mail address of the organisation's `domain` names: its local part
    (`carol@larkspur.example` → carol). ValueError for another domain or no valid user name."""
    local, _, at = address.rpartition("@")
    if not local or at.lower() != domain.lower():
        raise ValueError(f"not an address of {domain}")
    return validate_user(local)


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


@dataclass(frozen=True)
class KeyInfo:
    """What may be shown of a key: never the key, nor its hash."""

    id: str
    user: str
    name: str
    kind: Kind
    scope: KeyScope
    created_at: str
    expires_at: str | None
    revoked_at: str | None
    last_used_at: str | None

    def state(self, now: datetime | None = None) -> str:
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if _expired(self.expires_at, now) else "active"


@dataclass(frozen=True)
class Authenticated:
    """The key that authenticated a request."""

    user: str
    key_id: str
    scope: KeyScope
    kind: Kind = "personal"


def _expired(expires_at: str | None, now: datetime | None = None) -> bool:
    return expires_at is not None and datetime.fromisoformat(expires_at) <= (
        now or datetime.now(UTC))


def _info(entry: dict[str, Any], used: dict[str, str]) -> KeyInfo:
    return KeyInfo(entry["id"], entry["user"], entry.get("name") or "default",
                   entry.get("kind", "personal"), entry.get("scope", "admin"),
                   entry["created_at"], entry.get("expires_at"), entry["revoked_at"],
                   used.get(entry["id"]))


def _parse_usage(raw: Any) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
        raise ValueError("not an object of key id to time")
    return {str(k): v for k, v in raw.items()}


class KeyStore:
    """Create, rotate, revoke, list and authenticate API keys (see the module docstring)."""

    def __init__(self, where: Path | PgStateBackend) -> None:
        self._file = open_document(where, "keys", parse=_parse, dump=lambda keys: {"keys": keys},
                                   unreadable=_unreadable, what="API key file", mode=0o600)
        self.where = self._file.where
        self.path = None if isinstance(where, PgStateBackend) else Path(where)  # the file
        usage_where = where if self.path is None else self.path.with_name(
            self.path.stem + "_usage.json")
        self._usage = open_document(
            usage_where, "key_usage", parse=_parse_usage, dump=dict, mode=0o600,
            unreadable=lambda w, e: KeyStoreError(f"key usage {w} cannot be read: {e}"),
            what="key usage")
        self._usage_written: dict[str, float] = {}
        self._usage_lock = threading.Lock()

    def create(self, user: str, before_commit: Callable[[], None] | None = None, *,
               name: str = "default", kind: Kind = "personal", scope: KeyScope = "admin",
               expires_in: timedelta | None = None) -> str:
        """Add a key for `user` and return the plaintext key, which is not stored anywhere.
        ValueError for a bad user, name, kind, scope or lifetime (nothing written)."""
        return self.issue(user, before_commit, name=name, kind=kind, scope=scope,
                          expires_in=expires_in)[0]

    def issue(self, user: str, before_commit: Callable[[], None] | None = None, *,
              name: str = "default", kind: Kind = "personal", scope: KeyScope = "admin",
              expires_in: timedelta | None = None) -> tuple[str, KeyInfo]:
        """As `create`, with what may be shown of the new key."""
        key, entry = _new_key(user, name=name, kind=kind, scope=scope, expires_in=expires_in)
        with self._file.change(before_commit) as change:
            change.value.append(entry)
        return key, _info(entry, {})

    def rotate(self, key_id: str, overlap: timedelta,
               before_commit: Callable[[], None] | None = None) -> tuple[str, KeyInfo, KeyInfo]:
        """A new key in place of the active key `key_id`, with its user, name, kind, scope and
        lifetime; the old one keeps working for `overlap` (or until it expired anyway).
        (the new plaintext key, the new key's info, the old key's info). KeyError for a key
        that is not active, ValueError for a negative overlap."""
        if overlap < timedelta(0):
            raise ValueError("the overlap cannot be negative")
        with self._file.change(before_commit) as change:
            old = next((e for e in change.value if e["id"] == key_id), None)
            if old is None or old["revoked_at"] is not None or _expired(old.get("expires_at")):
                raise KeyError(key_id)
            lifetime = None
            if old.get("expires_at"):
                lifetime = (datetime.fromisoformat(old["expires_at"])
                            - datetime.fromisoformat(old["created_at"]))
            key, entry = _new_key(old["user"], name=old.get("name") or "default",
                                  kind=old.get("kind", "personal"),
                                  scope=old.get("scope", "admin"), expires_in=lifetime)
            cut = datetime.now(UTC) + overlap
            if not old.get("expires_at") or datetime.fromisoformat(old["expires_at"]) > cut:
                old["expires_at"] = cut.isoformat(timespec="seconds")
            change.value.append(entry)
        return key, _info(entry, {}), _info(old, {})

    def revoke_id(self, key_id: str, before_commit: Callable[[], None] | None = None
                  ) -> KeyInfo | None:
        """Revoke one key by its id; None if no such key is unrevoked (nothing written)."""
        with self._file.change(before_commit) as change:
            entry = next((e for e in change.value
                          if e["id"] == key_id and e["revoked_at"] is None), None)
            if entry is None:
                change.commit = False
            else:
                entry["revoked_at"] = _now()
        return None if entry is None else _info(entry, {})

    def list_keys(self, user: str | None = None) -> list[KeyInfo]:
        """Every key (of `user`), oldest first, as it may be shown."""
        used = self._usage.current()[1]
        return [_info(e, used) for e in self._file.current()[1]
                if user is None or e["user"] == user]

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
        found = self.identify(key)
        return None if found is None else found.user

    def identify(self, key: str) -> Authenticated | None:
        """The active (unrevoked, unexpired) key `key` is, or None; its use is noted."""
        if not isinstance(key, str) or not key.startswith(KEY_PREFIX):
            return None
        digest = hash_key(key)
        keys = self._file.current()[1]
        match = None
        # No early exit: the time taken does not depend on where (or whether) the key matched.
        for entry in keys:
            if hmac.compare_digest(entry["hash"], digest) and entry["revoked_at"] is None:
                match = entry
        if match is None or _expired(match.get("expires_at")):
            return None
        self._note_use(match["id"])
        return Authenticated(match["user"], match["id"], match.get("scope", "admin"),
                             match.get("kind", "personal"))

    def _note_use(self, key_id: str) -> None:
        """Record when a key was last used, at most once a minute per key in this process; a
        failure to write it is logged, never a refusal."""
        now = time.monotonic()
        with self._usage_lock:
            if now - self._usage_written.get(key_id, -USAGE_WRITE_EVERY_S) < USAGE_WRITE_EVERY_S:
                return
            self._usage_written[key_id] = now
        try:
            with self._usage.change() as change:
                change.value[key_id] = _now()
        except Exception as exc:  # usage is informational: never fail a request on it
            log.warning("cannot record the use of key %s: %s", key_id, exc)


def _new_key(user: str, *, name: str, kind: str, scope: str, expires_in: timedelta | None
             ) -> tuple[str, dict[str, Any]]:
    validate_user(user)
    if not name or len(name) > 64 or not name.isprintable():
        raise ValueError(f"invalid key name {name!r}: 1-64 printable characters")
    if kind not in KINDS:
        raise ValueError(f"kind {kind!r} must be one of {', '.join(KINDS)}")
    if kind == "frontend" and scope != "query":
        raise ValueError("a front-end key has scope query: it asks for its users, it does not "
                         "administer")
    if kind == "provisioning" and scope != "query":
        raise ValueError("a provisioning key has scope query: it may only use /scim/v2")
    if scope not in SCOPES:
        raise ValueError(f"scope {scope!r} must be one of {', '.join(SCOPES)}")
    if expires_in is not None and expires_in <= timedelta(0):
        raise ValueError("a key's lifetime must be positive")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    created = datetime.now(UTC)
    return key, {
        "id": secrets.token_hex(8),
        "user": user,
        "hash": hash_key(key),
        "created_at": created.isoformat(timespec="seconds"),
        "revoked_at": None,
        "name": name,
        "kind": kind,
        "scope": scope,
        "expires_at": (created + expires_in).isoformat(timespec="seconds")
        if expires_in is not None else None,
    }


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
    if entry.get("kind", "personal") not in KINDS or entry.get("scope", "admin") not in SCOPES:
        raise ValueError("a key entry has an unknown kind or scope")
    expires = entry.get("expires_at")
    if expires is not None:
        if not isinstance(expires, str):
            raise ValueError("a key entry has a non-string 'expires_at'")
        when = datetime.fromisoformat(expires)  # ValueError if it is not a time
        if when.tzinfo is None:
            raise ValueError("a key entry's 'expires_at' has no time zone")
