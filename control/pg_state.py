"""A state document kept in PostgreSQL: the `JsonStateFile` contract over a `control_state` row.

`current()` costs one query: the row's version, and its value only when the version differs
from the one cached, so a change made by another replica is seen at this replica's next call.
`change()` locks the row (`SELECT ... FOR UPDATE`, creating it first if missing) in a
transaction, lets the block edit the value, writes it with the version incremented, runs
`before_commit` (the audit record) and commits; if anything raises, the transaction rolls back
and nothing changes. Concurrent changes from any number of processes are serialized by the row
lock, so none is lost. A database that cannot be reached fails like an unreadable file: what
the state guards fails closed.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

import psycopg
from psycopg.types.json import Jsonb

from control.errors import StateWriteError
from control.postgres import Database
from control.state_file import Change

T = TypeVar("T")


def seed_document(db: Database, name: str, raw: Any) -> bool:
    """Store `raw` as the document `name` if the database holds none yet; whether it did."""
    with db.transaction() as conn:
        row = conn.execute(
            "INSERT INTO control_state (name, value, version) VALUES (%s, %s, 1) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value, "
            "version = control_state.version + 1, changed_at = now() "
            "WHERE control_state.value = 'null'::jsonb RETURNING name",
            (name, Jsonb(raw))).fetchone()
    return row is not None


class PgStateDocument(Generic[T]):
    """One named state document in the `control_state` table (see the module docstring); the
    arguments mean what they mean for JsonStateFile."""

    def __init__(
        self,
        db: Database,
        name: str,
        *,
        parse: Callable[[Any], T],
        dump: Callable[[T], Any],
        unreadable: Callable[[Any, Exception], Exception],
        what: str,
        fallback: Callable[[Any, Exception], T] | None = None,
    ) -> None:
        self.db = db
        self.name = name
        self.where = f"(control_state {name!r} in {db.where})"
        self._what = what
        self._parse = parse
        self._dump = dump
        self._unreadable = unreadable
        self._fallback = fallback
        self._lock = threading.Lock()
        self._version: int | None = None
        self._value: T | None = None

    def current(self) -> tuple[object, T]:
        """(the row's version, the value), the value re-read only when the version changed.
        The query runs outside the lock, so the threads of one process read in parallel."""
        with self._lock:
            cached, value = self._version, self._value
        try:
            with self.db.connection() as conn:
                row = conn.execute(
                    "SELECT version, CASE WHEN version = %s THEN NULL ELSE value END "
                    "FROM control_state WHERE name = %s",
                    (cached if value is not None else None, self.name)).fetchone()
        except psycopg.Error as exc:
            with self._lock:
                self._version, self._value = None, None
            return (None, self._failed(exc))
        version = -1 if row is None else int(row[0])
        if value is not None and version == cached:
            return version, value
        fresh = self._read(None if row is None else row[1])  # raises: nothing is cached
        with self._lock:
            self._version, self._value = version, fresh
        return version, fresh

    def _read(self, raw: Any) -> T:
        try:
            return self._parse(raw)
        except (ValueError, KeyError, TypeError) as exc:
            return self._failed(exc)

    def _failed(self, exc: Exception) -> T:
        if self._fallback is not None:
            return self._fallback(self.where, exc)
        raise self._unreadable(self.where, exc) from exc

    @contextlib.contextmanager
    def change(self, before_commit: Callable[[], None] | None = None) -> Iterator[Change[T]]:
        """Lock the row, let the block edit the value, write it, audit, commit (see the module
        docstring). StateWriteError if the database cannot be reached or written."""
        step = "read"
        try:
            with self.db.transaction() as conn:
                conn.execute("INSERT INTO control_state (name, value) VALUES (%s, 'null') "
                             "ON CONFLICT (name) DO NOTHING", (self.name,))
                row = conn.execute("SELECT value FROM control_state WHERE name = %s FOR UPDATE",
                                   (self.name,)).fetchone()
                change = Change(self._read(row[0] if row else None))
                yield change
                if not change.commit:
                    if change.audit_unchanged and before_commit is not None:
                        before_commit()
                    return
                step = "write"
                conn.execute("UPDATE control_state SET value = %s, version = version + 1, "
                             "changed_at = now() WHERE name = %s",
                             (Jsonb(self._dump(change.value)), self.name))
                step = "commit"
                if before_commit is not None:
                    before_commit()
        except psycopg.Error as exc:
            raise StateWriteError(f"cannot {step} the {self._what} {self.where}: {exc}",
                                  full=False) from exc
        finally:
            with self._lock:
                self._version, self._value = None, None
