"""The metrics directory of a deployment: processes that record into it add up, files of
processes no longer running are removed when one starts, and a second directory in one process
is refused. Each recorder is a real process of its own (metrics are process-wide state)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from application.settings import MetricsSettings
from observability import metrics
from tests.conftest import REPO

RECORD = """
import sys
from pathlib import Path
from observability import metrics
metrics.start(Path(sys.argv[1]))
for _ in range(int(sys.argv[2])):
    metrics.record_request("/v1/search", "POST", 200, 0.01)
metrics.record_request("/v1/search", "POST", 429, 0.001)
try:
    metrics.start(Path(sys.argv[1]) / "other")
except metrics.MetricsError as exc:
    print("refused:", exc)
"""


def _record(directory: Path, times: int) -> str:
    done = subprocess.run([sys.executable, "-c", RECORD, str(directory), str(times)], cwd=REPO,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _count(directory: Path, name: str, **labels: str) -> float:
    body, _ = metrics.exposition(directory)
    return sum(v for got, v in metrics.parse(body.decode()).get(name, [])
               if all(got.get(k) == want for k, want in labels.items()))


def test_processes_add_up_and_dead_ones_are_cleared_at_start(tmp_path: Path):
    out = _record(tmp_path, 3)
    assert "refused: this process already records metrics into" in out
    # The first process has exited by now: the second, starting, removes its files.
    _record(tmp_path, 4)
    assert _count(tmp_path, "clearance_http_request_duration_seconds_count",
                  route="/v1/search", status="200") == 4
    assert _count(tmp_path, "clearance_http_refusals_total", reason="rate_limited") == 1


def test_files_of_running_processes_are_kept(tmp_path: Path):
    # A file named for this (running) process is another replica's: a start keeps it.
    _record(tmp_path, 2)
    [file] = list(tmp_path.glob("histogram_*.db"))
    kept = file.with_name(f"histogram_{os.getpid()}.db")
    file.rename(kept)
    _record(tmp_path, 5)
    assert kept.exists()
    assert _count(tmp_path, "clearance_http_request_duration_seconds_count",
                  route="/v1/search", status="200") == 7


def test_a_short_token_is_refused():
    with pytest.raises(ValueError, match="at least 32 characters"):
        MetricsSettings(token="short")  # type: ignore[arg-type]
    assert not MetricsSettings().enabled
