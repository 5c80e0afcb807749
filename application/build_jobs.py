"""Re-index jobs: each build runs in a process of its own, and reports through its job record.

The Edge optimizer holds the GIL for seconds, so a build never runs inside the server: the
server starts `python -m application.build_job` and reads the job record the child keeps
current (control/jobs.py: files, or the PostgreSQL control plane, so any replica can follow
it). One build at a time, across processes: the child holds ingest.jobs.build_lock.
"""

from __future__ import annotations

import secrets
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from control.jobs import FINAL_STATES, Job, JobRecords, now
from ingest.jobs import BuildRunning, build_is_running
from observability import metrics


class JobRunner:
    """Starts builds as child processes and marks a job failed if its child dies unreported."""

    def __init__(self, config_path: Path, data_dir: Path, store: JobRecords) -> None:
        self._config = config_path
        self._data_dir = data_dir
        self.store = store
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
            command = [sys.executable, "-m", "application.build_job", "--config", str(self._config),
                       "--job", job.id]
            if source:
                command += ["--source", source]
            process = subprocess.Popen(command, stdin=subprocess.DEVNULL,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self._active = (job, process)
        metrics.record_job_started(source)
        threading.Thread(target=self._watch, args=(job.id, process), daemon=True).start()
        return job

    def _watch(self, job_id: str, process: subprocess.Popen[bytes]) -> None:
        started = time.monotonic()
        code = process.wait()
        job = self.store.load(job_id)
        if job is not None and job.state not in FINAL_STATES:
            job.state, job.finished_at = "failed", now()
            job.error = f"the build process exited with status {code} before finishing"
            self.store.save(job)
        metrics.record_job_ended(job.state if job is not None else "unknown",
                                 time.monotonic() - started)
