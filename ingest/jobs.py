"""One build at a time, across processes: an exclusive flock on data_dir/build.lock.

Held by `clearance ingest` and by the child process of a re-index job (application/build_job.py).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ingest.errors import IngestError


class BuildRunning(IngestError):
    """Another build holds the build lock; `job_id` names it when known."""

    def __init__(self, job_id: str | None) -> None:
        super().__init__(f"a build is already running (job {job_id or 'started from the CLI'})")
        self.job_id = job_id


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
