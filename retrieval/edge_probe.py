"""Load an index version in a child process before the server does.

`python -m retrieval.edge_probe ROOT VERSION_ID` loads the version with the embedded engine,
counts its points and reads one page of them, then exits 0. The engine memory-maps every file of
a version; on a filesystem that cannot back those maps (a full tmpfs, a network filesystem
without shared mmap) the first access raises SIGBUS, which kills a process without a line of
Python output. Probing in a child turns that into an error the server can report: the child
dies, the server fails that version's requests with 503 and logs why.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from retrieval.errors import StoreError

PROBE_TIMEOUT_S = 120.0
# The directory holding the `retrieval` package, so the child imports this same code.
_PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent)


def probe(root: Path, version_id: str, *, timeout_s: float = PROBE_TIMEOUT_S) -> None:
    """StoreError unless a child process can load the version at root/version_id and read it."""
    path = Path(root) / version_id
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_PACKAGE_ROOT, env.get("PYTHONPATH")) if p)
    command = [sys.executable, "-m", "retrieval.edge_probe", str(root), version_id]
    try:
        done = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, errors="replace", env=env, timeout=timeout_s,
                              check=False)
    except subprocess.TimeoutExpired:
        raise StoreError(f"index version {version_id!r} did not load within {timeout_s:g} s "
                         f"(in a probe process, from {path})") from None
    except OSError as exc:
        raise StoreError(f"cannot start a process to probe index version {version_id!r}: "
                         f"{exc}") from exc
    if done.returncode == 0:
        return
    if done.returncode < 0:
        name = signal.Signals(-done.returncode).name
        cause = ("the filesystem cannot back its memory maps (is it full, or without shared "
                 "mmap support?)" if name == "SIGBUS" else "")
        raise StoreError(f"index version {version_id!r} cannot be read: loading it killed a "
                         f"probe process with {name}; {cause or 'see the log'} ({path})")
    lines = done.stderr.strip().splitlines()
    reason = lines[-1] if lines else f"the probe exited with status {done.returncode}"
    raise StoreError(f"index version {version_id!r} cannot be read: {reason}")


def main(argv: Sequence[str]) -> int:
    from retrieval.edge_store import EdgeBackend

    root, version_id = argv
    try:
        reader = EdgeBackend(Path(root)).open(version_id)
        try:
            reader.count()
            next(iter(reader.iter_chunks()), None)
        finally:
            reader.close()
    except StoreError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
