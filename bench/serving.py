"""The API in a child process for benchmarks: started on a free loopback port, ready once
/healthz answers, stopped with SIGTERM (then killed) on the way out."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def server_process(command: Callable[[int], Sequence[str]], log_path: Path, *,
                   start_timeout_s: float) -> Iterator[tuple[str, int]]:
    """Run `command(port)`; yields (base URL, pid) once /healthz answers 200."""
    port = free_port()
    with log_path.open("wb") as log:
        proc = subprocess.Popen(list(command(port)), cwd=REPO, stdout=log,
                                stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + start_timeout_s
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"server exited with {proc.returncode}: "
                                       f"{log_path.read_text(errors='replace')[-3000:]}")
                try:
                    if httpx.get(f"{url}/healthz", timeout=5).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"server did not start in {start_timeout_s:.0f} s; "
                                       f"see {log_path}")
                time.sleep(0.2)
            yield url, proc.pid
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def clearance_serve(config: Path) -> Callable[[int], list[str]]:
    """The command of the product's own `clearance serve` on a given port."""
    import sys

    return lambda port: [sys.executable, "-m", "api.cli", "--config", str(config), "serve",
                         "--host", "127.0.0.1", "--port", str(port)]
