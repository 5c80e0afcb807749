"""One JSON file of shared state: re-read when it changes, changed under a cross-process lock.

Every piece of the control plane's file state (keys, ACL overrides, quarantine, pause) is one
of these. Readers call `current()`: one stat per call, and a parse only when the file's stamp
changed (inode, mtime, ctime and size, so even a same-size edit within one mtime tick is seen).
Writers call `change()`: under a thread lock and an flock on `.<name>.lock` beside the file, the
file is read fresh (never from the cache, which another process may have outdated), the caller
edits the value, and the result replaces the file atomically (temp file fsynced, renamed, the
directory fsynced). Two processes changing the file at once therefore both keep their change.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from control.errors import StateWriteError, is_full

T = TypeVar("T")
Stamp = tuple[int, ...]


def file_stamp(path: Path) -> Stamp | None:
    """Changes with any write or replacement of the file, even a same-size edit within one mtime
    tick or one that restores the mtime (inode and ctime change too); None if it is missing."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size)


@contextlib.contextmanager
def replacing_file(path: Path, data: bytes, *, mode: int = 0o644) -> Iterator[None]:
    """Replace `path` with `data` so readers see the old or the new file, never half; the block
    runs once the new file is complete but before it is put in place, so a block that raises (an
    audit record that cannot be written) leaves `path` as it was. A leftover `.<name>.tmp` from
    a killed writer is overwritten next time (writers hold the file's lock)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with tmp.open("wb") as handle:
            os.fchmod(handle.fileno(), mode)  # not widened by the umask, nor left from before
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        yield
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)
    fsync_dir(path.parent)


def write_json_atomic(path: Path, data: Any, *, mode: int = 0o644) -> None:
    """Replace `path` with `data` as JSON, atomically and durably (see replacing_file)."""
    with replacing_file(path, json_bytes(data), mode=mode):
        pass


def json_bytes(data: Any) -> bytes:
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False).encode("utf-8") + b"\n"


def fsync_dir(directory: Path) -> None:
    """Make a rename in `directory` durable; a filesystem that refuses fsync on a directory is
    harmless here."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock shared by every process that changes `path`: flock on `.<name>.lock`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.with_name(f".{path.name}.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the flock


@dataclass
class Change(Generic[T]):
    """The value being changed: edit `value` in place or assign a new one; `commit = False`
    leaves the file as it is, and then `before_commit` runs only if `audit_unchanged` (an action
    that is on record even when it changes nothing: pausing what is paused)."""

    value: T
    commit: bool = True
    audit_unchanged: bool = False


class StateDocument(Protocol[T]):
    """One piece of the control plane's mutable state, wherever it is kept: a JSON file under
    data_dir (JsonStateFile) or a row in PostgreSQL (control/pg_state.PgStateDocument). Both
    pass tests/control/test_control_plane_contract.py."""

    where: str  # for messages: the file, or the row and database

    def current(self) -> tuple[object, T]:
        """(a stamp that changes with every change, from any process, the value)."""
        ...

    def change(self, before_commit: Callable[[], None] | None = None
               ) -> contextlib.AbstractContextManager[Change[T]]:
        """Edit the value as it is now, excluding every other change until done; the value is
        replaced if `commit` stays True, once `before_commit` has run (if it raises, nothing
        changes). StateWriteError if it cannot be written."""
        ...


class JsonStateFile(Generic[T]):
    """A value kept in one JSON file (see the module docstring).

    `parse` turns the file's JSON (None when the file is missing) into the value and raises
    ValueError (or KeyError, TypeError) when it cannot: `current()` and `change()` then raise
    what `unreadable(path, exc)` returns, and nothing is cached, so no stale value outlives a
    damaged file; with `fallback`, a damaged file reads as `fallback(path, exc)` instead (the
    pause switch: a damaged file counts as paused). `dump` turns the value back into JSON.
    With `text`, the file is UTF-8 text rather than JSON (the policy file): `parse` gets the
    text and `dump` returns it.
    """

    def __init__(
        self,
        path: Path,
        *,
        parse: Callable[[Any], T],
        dump: Callable[[T], Any],
        unreadable: Callable[[Path, Exception], Exception],
        what: str,
        mode: int = 0o644,
        fallback: Callable[[Path, Exception], T] | None = None,
        text: bool = False,
    ) -> None:
        self.path = Path(path)
        self.where = str(self.path)
        self._text = text
        self._parse = parse
        self._dump = dump
        self._unreadable = unreadable
        self._what = what
        self._mode = mode
        self._fallback = fallback
        self._lock = threading.Lock()
        self._stamp: Stamp | tuple[()] | None = ()  # () = nothing cached
        self._value: T | None = None

    def current(self) -> tuple[object, T]:
        """(a stamp that changes with the file, the value), re-read only when the file changed."""
        with self._lock:
            stamp = file_stamp(self.path)
            if stamp != self._stamp or self._value is None:
                self._stamp, self._value = (), None  # a failed read leaves nothing cached
                self._value = self._read()
                self._stamp = stamp
            return self._stamp, self._value

    def _read(self) -> T:
        try:
            try:
                data = self.path.read_bytes()
                raw = data.decode("utf-8") if self._text else json.loads(data)
            except FileNotFoundError:
                raw = None
            return self._parse(raw)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            if self._fallback is not None:
                return self._fallback(self.path, exc)
            raise self._unreadable(self.path, exc) from exc

    def _encode(self, value: T) -> bytes:
        dumped = self._dump(value)
        return dumped.encode("utf-8") if self._text else json_bytes(dumped)

    @contextlib.contextmanager
    def change(self, before_commit: Callable[[], None] | None = None) -> Iterator[Change[T]]:
        """Read the file fresh under the lock, let the block edit it, and write the result.
        The block sees the value as parsed now, never a cached one.

        `before_commit` (an audit record) runs once the new file is complete but before it is in
        place; if it raises, nothing changes. StateWriteError if the file cannot be written.
        """
        with self._lock, file_lock(self.path):
            change = Change(self._read())
            yield change
            if not change.commit:
                if change.audit_unchanged and before_commit is not None:
                    before_commit()
                return
            step = "write"
            try:
                with replacing_file(self.path, self._encode(change.value), mode=self._mode):
                    step = "put in place"  # the new file is complete; the old one still rules
                    if before_commit is not None:
                        before_commit()
            except OSError as exc:
                raise StateWriteError(f"cannot {step} the {self._what} {self.path}: "
                                      f"{exc.strerror or exc}", full=is_full(exc)) from exc
            finally:
                self._stamp, self._value = (), None  # the next read sees what was written
