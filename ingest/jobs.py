"""Re-index jobs: their records on disk, and running each build in a process of its own.

The Edge optimizer holds the GIL for seconds, so a build never runs inside the server: the
server starts `python -m ingest.build_job` and reads the job record the child keeps current.
One build at a time, across processes: the child holds an exclusive flock on `build.lock`.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from control.state_file import write_json_atomic
from ingest.errors import IngestError

FINAL_STATES = frozenset({"succeeded", "failed"})


class BuildRunning(IngestError):
    """Another build holds the build lock; `job_id` names it when known."""

    def __init__(self, job_id: str | None) -> None:
        super().__init__(f"a build is already running (job {job_id or 'started from the CLI'})")
        self.job_id = job_id


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


class JobStore:
    """Job records as JSON files, each replaced atomically, so readers never see half a record."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def save(self, job: Job) -> None:
        write_json_atomic(self.directory / f"{job.id}.json", asdict(job))

    def load(self, job_id: str) -> Job | None:
        if not job_id.startswith("job-") or "/" in job_id:
            return None
        try:
            raw = json.loads((self.directory / f"{job_id}.json").read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        return Job(**raw)


@contextmanager
def build_lock(data_dir: Path) -> Iterator[None]:
    """Hold the one-build-at-a-time lock, or raise BuildRunning at once."""
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(data_dir / "build.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BuildRunning(None) from None
        yield
    finally:
        os.close(fd)  # closing drops the lock; so does the kernel if the process dies


def build_is_running(data_dir: Path) -> bool:
    try:
        with build_lock(data_dir):
            return False
    except BuildRunning:
        return True


class JobRunner:
    """Starts builds as child processes and marks a job failed if its child dies unreported."""

    def __init__(self, config_path: Path, data_dir: Path) -> None:
        self._config = config_path
        self._data_dir = data_dir
        self.store = JobStore(data_dir / "jobs")
        self._lock = threading.Lock()
        self._active: tuple[Job, subprocess.Popen[bytes]] | None = None

    def start(self, source: str | None = None) -> Job:
        """Queue a build and start its process; BuildRunning if one is already under way."""
        with self._lock:
            if self._active is not None and self._active[1].poll() is None:
                raise BuildRunning(self._active[0].id)
            if build_is_running(self._data_dir):
                raise BuildRunning(None)
            job = Job(id=f"job-{datetime.now(UTC):%Y%m%dT%H%M%S}-{secrets.token_hex(3)}",
                      source=source)
            self.store.save(job)
            command = [sys.executable, "-m", "ingest.build_job", "--config", str(self._config),
                       "--job", job.id]
            if source:
                command += ["--source", source]
            process = subprocess.Popen(command, stdin=subprocess.DEVNULL,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self._active = (job, process)
        threading.Thread(target=self._watch, args=(job.id, process), daemon=True).start()
        return job

    def _watch(self, job_id: str, process: subprocess.Popen[bytes]) -> None:
        code = process.wait()
        job = self.store.load(job_id)
        if job is not None and job.state not in FINAL_STATES:
            job.state, job.finished_at = "failed", now()
            job.error = f"the build process exited with status {code} before finishing"
            self.store.save(job)
