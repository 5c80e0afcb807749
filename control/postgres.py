"""The one module that talks to PostgreSQL: connection pools and versioned schema migrations.

The PostgreSQL control plane (`database_url` in the config) keeps every piece of mutable state
in one database, so several `clearance serve` replicas over one index share it:

- `control_state`: one row per state document (keys, policy, ACL overrides, quarantine, pause),
  its JSON value and a version that every change increments (control/pg_state.py);
- `audit_records` and `audit_head`: the audit chain, one row per record, appended under the
  head row's lock so that replicas never fork it (control/pg_audit.py);
- `jobs`: re-index job records (control/jobs.py);
- `feedback`: ratings of answers (control/feedback.py), and an index of the audit records by
  request id, which a rating is checked against (migration 2).

The schema is versioned: MIGRATIONS below, applied in order by `clearance db migrate` (each in
its own transaction, under an advisory lock so two migrators cannot interleave) and recorded in
`schema_migrations`. A service refuses to start on a schema older than it needs, naming the
command to run.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
from psycopg_pool import ConnectionPool

from control.errors import ControlError


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "control plane: state documents, audit chain, job records", """
        CREATE TABLE control_state (
            name text PRIMARY KEY,
            value jsonb NOT NULL,
            version bigint NOT NULL DEFAULT 0,
            changed_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE TABLE audit_records (
            seq bigint PRIMARY KEY CHECK (seq > 0),
            line text NOT NULL
        );
        CREATE TABLE audit_head (
            id int PRIMARY KEY CHECK (id = 1),
            seq bigint NOT NULL,
            hash text NOT NULL,
            mac text NOT NULL
        );
        CREATE TABLE jobs (
            id text PRIMARY KEY,
            record jsonb NOT NULL,
            updated_at timestamptz NOT NULL DEFAULT now()
        );
    """),
    Migration(2, "ratings of answers; audit records by request id", """
        CREATE TABLE feedback (
            request_id text PRIMARY KEY,
            caller text NOT NULL,
            rating text NOT NULL CHECK (rating IN ('up', 'down')),
            comment text,
            rated_at timestamptz NOT NULL,
            ratings int NOT NULL DEFAULT 1 CHECK (ratings > 0)
        );
        CREATE INDEX feedback_rated_at ON feedback (rated_at);
        CREATE INDEX audit_records_request_id ON audit_records (((line::jsonb) ->> 'request_id'));
    """),
)
LATEST = MIGRATIONS[-1].version
_MIGRATION_LOCK = 0x636C6561  # pg_advisory_xact_lock key: "clea"


class DatabaseError(ControlError):
    """The control-plane database cannot be reached or used; the message says what to do."""


def redacted(url: str) -> str:
    """The URL without its password, for messages and logs."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "(an unparseable database_url)"
    shown = {k: v for k, v in info.items() if k != "password" and v is not None}
    return " ".join(f"{k}={v}" for k, v in sorted(shown.items()))


class Database:
    """Connection pools over one PostgreSQL database.

    Two pools, so that an audit append made while a state change holds its connection (the
    change is audited before it commits) never waits for a connection the change holds.
    Connections are in autocommit mode; a transaction is always explicit (`transaction()`).
    """

    def __init__(self, url: str, *, max_size: int = 8, timeout_s: float = 10.0) -> None:
        self.url = url
        self.where = redacted(url)
        self._timeout = timeout_s
        self._pools: dict[str, ConnectionPool] = {}
        self._max_size = max_size
        self._lock = threading.Lock()

    def _pool(self, role: str) -> ConnectionPool:
        with self._lock:
            pool = self._pools.get(role)
            if pool is None:
                pool = ConnectionPool(
                    self.url, min_size=1, max_size=self._max_size, timeout=self._timeout,
                    kwargs={"autocommit": True, "connect_timeout": max(1, int(self._timeout))},
                    name=f"clearance-{role}", open=True, check=ConnectionPool.check_connection)
                self._pools[role] = pool
            return pool

    @contextmanager
    def connection(self, role: str = "state") -> Iterator[psycopg.Connection]:
        """A pooled connection (autocommit) for the block."""
        with self._pool(role).connection() as conn:
            yield conn

    @contextmanager
    def transaction(self, role: str = "state") -> Iterator[psycopg.Connection]:
        """A connection inside one transaction: committed when the block ends, rolled back if
        it raises."""
        with self.connection(role) as conn, conn.transaction():
            yield conn

    def schema_version(self) -> int:
        """The last migration applied (0 on an empty database)."""
        with self.connection() as conn:
            exists = conn.execute("SELECT to_regclass('schema_migrations')").fetchone()
            if exists is None or exists[0] is None:
                return 0
            row = conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations"
                               ).fetchone()
            return int(row[0]) if row else 0

    def check_schema(self) -> None:
        """DatabaseError unless the schema is the one this release needs."""
        try:
            version = self.schema_version()
        except psycopg.Error as exc:
            raise DatabaseError(f"control-plane database ({self.where}) cannot be reached: "
                                f"{exc}; check database_url and that PostgreSQL is running"
                                ) from exc
        if version < LATEST:
            raise DatabaseError(f"control-plane database ({self.where}) is at schema version "
                                f"{version}, this release needs {LATEST}: run `clearance db "
                                "migrate`")
        if version > LATEST:
            raise DatabaseError(f"control-plane database ({self.where}) is at schema version "
                                f"{version}, newer than this release knows ({LATEST}): "
                                "upgrade Clearance")

    def migrate(self) -> list[Migration]:
        """Apply the migrations not yet applied, in order; the ones applied now."""
        applied: list[Migration] = []
        with self.transaction() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            conn.execute("""CREATE TABLE IF NOT EXISTS schema_migrations (
                                version int PRIMARY KEY,
                                name text NOT NULL,
                                applied_at timestamptz NOT NULL DEFAULT now())""")
            done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
            for migration in MIGRATIONS:
                if migration.version in done:
                    continue
                with conn.transaction():  # a savepoint: one migration is whole or absent
                    conn.execute(migration.sql.encode())
                    conn.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                                 (migration.version, migration.name))
                applied.append(migration)
        return applied

    def problem(self) -> str | None:
        """Why the database cannot be used now (one round trip), or None; names no address,
        since /healthz shows it to anyone."""
        try:
            with self.connection("audit") as conn:
                conn.execute("SELECT 1")
        except psycopg.Error as exc:
            return f"the control-plane database cannot be reached ({type(exc).__name__})"
        return None

    def close(self) -> None:
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.close()
