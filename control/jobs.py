"""Re-index job records: what was asked, and what became of it.

Two stores with one interface (`save`, `load`): JSON files under data_dir/jobs (each replaced
atomically, so readers never see half a record), and rows of the PostgreSQL control plane's
`jobs` table, so that a job started through one replica can be followed through another.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import psycopg
from psycopg.types.json import Jsonb

from control.errors import StateUnreadable, StateWriteError
from control.postgres import Database
from control.state_file import write_json_atomic

FINAL_STATES = frozenset({"succeeded", "failed"})


def now() -> str:
    return datetime.now(UTC).isoformat()


@dataclass
class Job:
    """One re-index request and what became of it."""

    id: str
    source: str | None  # None: every source
    state: str = "queued"  # queued, running, succeeded, failed
    created_at: str = field(default_factory=now)
    started_at: str | None = None
    finished_at: str | None = None
    documents_done: int = 0
    documents_total: int = 0
    chunks: int = 0
    version_id: str | None = None
    errors: list[dict[str, str]] = field(default_factory=list)
    error: str | None = None
    timings: dict[str, float] = field(default_factory=dict)


def _is_job_id(job_id: str) -> bool:
    return job_id.startswith("job-") and "/" not in job_id and "\0" not in job_id


class JobRecords(Protocol):
    def save(self, job: Job) -> None: ...

    def load(self, job_id: str) -> Job | None: ...


class JobStore:
    """Job records as JSON files, one per job."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def save(self, job: Job) -> None:
        write_json_atomic(self.directory / f"{job.id}.json", asdict(job))

    def load(self, job_id: str) -> Job | None:
        if not _is_job_id(job_id):
            return None
        try:
            raw = json.loads((self.directory / f"{job_id}.json").read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        return Job(**raw)


class PgJobStore:
    """Job records as rows of the control-plane database's `jobs` table."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def save(self, job: Job) -> None:
        try:
            with self.db.connection() as conn:
                conn.execute("INSERT INTO jobs (id, record) VALUES (%s, %s) ON CONFLICT (id) DO "
                             "UPDATE SET record = excluded.record, updated_at = now()",
                             (job.id, Jsonb(asdict(job))))
        except psycopg.Error as exc:
            raise StateWriteError(f"cannot write job {job.id} to {self.db.where}: {exc}",
                                  full=False) from exc

    def load(self, job_id: str) -> Job | None:
        if not _is_job_id(job_id):
            return None
        try:
            with self.db.connection() as conn:
                row = conn.execute("SELECT record FROM jobs WHERE id = %s", (job_id,)).fetchone()
        except psycopg.Error as exc:
            raise StateUnreadable(f"cannot read job {job_id} from {self.db.where}: {exc}"
                                  ) from exc
        return None if row is None else Job(**row[0])
