"""API keys for the principal `user:<name>`, stored as sha256 hashes in a JSON file.

The file is `{"keys": [{"id", "user", "hash", "created_at", "revoked_at"}]}`, mode 0600, always
replaced atomically. Plaintext keys are returned once by `create` and never stored. A server's
`KeyStore` reloads the file when it changes, so keys created or revoked by the CLI (another
process) take effect without a restart.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

KEY_PREFIX = "clr_"
USER_PRINCIPAL_PREFIX = "user:"
# The API documents and checks user names with the same rule (api/routes/operations.py). Not only
# dots: "." and ".." cannot be a segment of a URL path (DELETE /v1/admin/keys/{user}).
USER_PATTERN = r"^[A-Za-z0-9._-]*[A-Za-z0-9_-][A-Za-z0-9._-]*$"
USER_MAX_CHARS = 64
_USER_RE = re.compile(USER_PATTERN)
_HASH_RE = re.compile(r"[0-9a-f]{64}")


class KeyStoreError(Exception):
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


class KeyStore:
    """Create, revoke and authenticate API keys kept in one JSON file."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        # (st_ino, st_mtime_ns, st_size) of the file the cache was read from; the inode changes
        # on every os.replace, which catches two writes within one mtime tick with equal size.
        self._signature: tuple[int, int, int] | None = None
        self._keys: list[dict[str, Any]] = []

    def create(self, user: str) -> str:
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
        with self._modify() as keys:
            keys.append(entry)
        return key

    def revoke(self, user: str) -> int:
        """Revoke every active key of `user`; return how many were revoked."""
        validate_user(user)
        now = _now()
        count = 0
        with self._modify() as keys:
            for entry in keys:
                if entry["user"] == user and entry["revoked_at"] is None:
                    entry["revoked_at"] = now
                    count += 1
        return count

    def authenticate(self, key: str) -> str | None:
        """The user name of an active key, or None. Raises KeyStoreError if the file is corrupt."""
        if not isinstance(key, str) or not key.startswith(KEY_PREFIX):
            return None
        digest = hash_key(key)
        with self._lock:
            keys = self._current()
        user = None
        # No early exit: the time taken does not depend on where (or whether) the key matched.
        for entry in keys:
            if hmac.compare_digest(entry["hash"], digest) and entry["revoked_at"] is None:
                user = entry["user"]
        return user

    def _current(self) -> list[dict[str, Any]]:
        """The cached keys, reread when the file changed since the last read. Needs `_lock`."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self._signature, self._keys = None, []
            return self._keys
        except OSError as exc:
            raise KeyStoreError(f"API key file {self.path} could not be read: {exc}") from exc
        signature = (st.st_ino, st.st_mtime_ns, st.st_size)
        if signature != self._signature:
            # Drop the old cache first: if the new file is corrupt, nothing stays authenticated.
            self._signature, self._keys = None, []
            self._keys = self._read()
            self._signature = signature
        return self._keys

    def _read(self) -> list[dict[str, Any]]:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise KeyStoreError(f"API key file {self.path} could not be read: {exc}") from exc
        try:
            data = json.loads(raw)
            keys = data["keys"]
            if not isinstance(keys, list):
                raise ValueError("'keys' is not a list")
            for entry in keys:
                _check_entry(entry)
        except (ValueError, KeyError, TypeError) as exc:
            raise KeyStoreError(f"API key file {self.path} is corrupt: {exc}") from exc
        return keys

    @contextmanager
    def _modify(self) -> Iterator[list[dict[str, Any]]]:
        """Read-modify-write the file under a cross-process lock, so no concurrent write is lost."""
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            lock_path = self.path.with_name(self.path.name + ".lock")
            lock_fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(lock_fd, fcntl.LOCK_EX)
                # Always reread under the lock: the cache may be older than another writer's file.
                keys = self._read()
                yield keys
                self._write(keys)
                # Drop the cache; the next authenticate rereads what was just written.
                self._signature, self._keys = None, []
            finally:
                os.close(lock_fd)

    def _write(self, keys: list[dict[str, Any]]) -> None:
        data = json.dumps({"keys": keys}, indent=2, sort_keys=True).encode("utf-8") + b"\n"
        fd, tmp = tempfile.mkstemp(
            dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp"
        )
        try:
            # mkstemp already uses 0600; set it explicitly so the umask or platform cannot widen it.
            os.fchmod(fd, 0o600)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
            os.close(fd)
            fd = -1
            os.replace(tmp, self.path)
        except BaseException:
            if fd != -1:
                os.close(fd)
            with suppress(OSError):
                os.unlink(tmp)
            raise
        _fsync_dir(self.path.parent)


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


def _fsync_dir(directory: Path) -> None:
    # Makes the rename durable; some filesystems refuse fsync on directories, which is harmless.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
