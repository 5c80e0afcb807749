"""The real CLI and the real server, each in its own process, as an operator runs them."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.conftest import REPO


def clearance(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a separate process, as an operator would."""
    return subprocess.run(
        [sys.executable, "-m", "api.cli", "--config", str(config), *args],
        capture_output=True, text=True, timeout=300, check=False, cwd=REPO,
    )


def ingest(config: Path) -> str:
    """Run `clearance ingest`; returns the id of the version it switched to."""
    done = clearance(config, "ingest")
    assert done.returncode == 0, done.stderr
    last = done.stdout.strip().splitlines()[-1]
    assert " is now current: " in last, done.stdout
    return last.split()[2]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def served(config: Path, log: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """`clearance serve` in its own process; yields it and its base URL once /healthz answers.

    The process is always killed on the way out.
    """
    port = free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "api.cli", "--config", str(config), "serve",
             "--host", "127.0.0.1", "--port", str(port)],
            cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"server exited with {proc.returncode}:\n{log.read_text()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"server did not answer /healthz in 120 s:\n{log.read_text()}")
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
