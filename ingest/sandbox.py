"""Parse files in a child process, so that no file can take the build down with it.

One long-lived worker (ingest/parse_worker.py) parses the files one at a time: importing
unstructured and spaCy takes seconds, too long to pay per file. Each file gets its limits:
memory and CPU time are set on the worker by the worker; wall time is kept here, and a worker
over it is killed. A worker that dies (a limit, a segfault, the OOM killer) is replaced, and
only the file it was parsing is reported, by name with the limit it hit.

The worker is a fresh interpreter (`python -m ingest.parse_worker`), never a fork: the build
process runs torch and threads, which a forked child would inherit in whatever state they were
in. Nor is it multiprocessing's "spawn", which imports the parent's __main__ again in the child
(every script that builds an index would need a main guard). Requests and replies are pickles
over a socket pair; the worker's death closes its end, so a wait for a reply ends at once.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from types import TracebackType
from typing import Any

from ingest.errors import LimitExceeded, ParseError, ParserUnavailable
from ingest.limits import describe_bytes
from ingest.parse_worker import EXIT_OVER_MEMORY
from ingest.parser import ParsedDocument
from ingest.settings import FileLimits

log = logging.getLogger(__name__)

# A hang guard for starting a worker and warming it up (imports, the spaCy model, the PDF
# stack): not a limit on any file.
START_TIMEOUT_S = 300.0
_STOP_TIMEOUT_S = 10.0
# The tagger's matrices are small: one thread is enough, and the build process's torch
# threads keep the cores without a second pool in the worker competing for them.
_ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
# Where the ingest package lives, for the worker to import it from whatever directory.
_IMPORT_ROOT = str(Path(__file__).resolve().parent.parent)


@dataclass
class _Worker:
    process: subprocess.Popen[bytes]
    conn: Connection
    busy: bool = False  # a request is out: if interrupted, the worker is killed, not asked


class ParserSandbox:
    """Parses files in a child process, each within its FileLimits; use it as a context manager.

    Not thread-safe: one build calls it from one thread.
    """

    def __init__(self) -> None:
        self._worker: _Worker | None = None

    def __enter__(self) -> ParserSandbox:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

    def parse(self, path: Path, limits: FileLimits) -> ParsedDocument:
        """The text of `path`; ParseError (LimitExceeded for a limit) naming the file if not.

        ParserUnavailable if the worker cannot start or load the parser.
        """
        for attempt in (1, 2):
            worker = self._running_worker()
            try:
                _send(worker, (str(path), limits))
                self._await_begin(worker, path)
            except _WorkerLost as lost:
                # It died before it read the file: the file is not to blame. Try once more.
                self._discard(worker)
                if attempt == 2:
                    raise ParserUnavailable(f"the parser process keeps dying before it "
                                            f"parses anything ({lost})") from None
                continue
            return self._await_result(worker, path, limits)
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Stop the worker, if one runs; call it whatever happened."""
        worker = self._worker
        if worker is None:
            return
        if not worker.busy:
            with contextlib.suppress(OSError):
                worker.conn.send(None)
            with contextlib.suppress(subprocess.TimeoutExpired):
                worker.process.wait(_STOP_TIMEOUT_S)
        self._discard(worker)

    @property
    def worker_pid(self) -> int | None:
        """The running worker's process id, or None."""
        return self._worker.process.pid if self._worker is not None else None

    def _running_worker(self) -> _Worker:
        if self._worker is not None and self._worker.process.poll() is not None:
            self._discard(self._worker)  # it died between files
        if self._worker is None:
            ours, theirs = socket.socketpair()
            env = {**os.environ, **_ONE_THREAD}
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [_IMPORT_ROOT,
                                                               env.get("PYTHONPATH")]))
            try:
                process = subprocess.Popen(
                    [sys.executable, "-m", "ingest.parse_worker", str(theirs.fileno())],
                    pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL, env=env,  # stdout is the CLI's report
                )
            except OSError as exc:
                raise ParserUnavailable(f"cannot start the parser process: {exc}") from exc
            finally:
                theirs.close()  # only the child holds it now: its death is our EOF
            self._worker = _Worker(process, Connection(ours.detach()))
            log.debug("parser process %d started", process.pid)
        return self._worker

    def _await_begin(self, worker: _Worker, path: Path) -> None:
        reply = _receive(worker, START_TIMEOUT_S)
        if reply is None:
            raise _WorkerLost(f"no answer in {START_TIMEOUT_S:.0f} s")
        if reply[0] == "fatal":
            self._discard(worker)
            raise ParserUnavailable(f"the parser cannot run: {reply[1]}")
        if reply[0] != "begin":
            raise _WorkerLost(f"unexpected reply {reply[0]!r} before {path.name}")

    def _await_result(self, worker: _Worker, path: Path, limits: FileLimits) -> ParsedDocument:
        try:
            reply = _receive(worker, float(limits.wall_seconds))
        except _WorkerLost:
            raise _death(path, self._discard(worker), limits) from None
        if reply is None:
            self._discard(worker)
            log.warning("%s: over the wall time limit; the parser process was killed", path.name)
            raise LimitExceeded(f"{path.name}: over the wall time limit "
                                f"({limits.wall_seconds} s) while parsing")
        worker.busy = False
        if reply[-1]:  # the worker retires after this reply
            self._discard(worker)
        if reply[0] == "ok":
            document: ParsedDocument = reply[1]
            return document
        if reply[0] == "problem":
            error = LimitExceeded if reply[1] == "limit" else ParseError
            raise error(str(reply[2]))
        raise ParseError(f"{path.name}: the parser answered {reply[0]!r}")

    def _discard(self, worker: _Worker) -> int | None:
        """Kill `worker` if it still runs and forget it; its exit code."""
        if worker.process.poll() is None:
            worker.process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            worker.process.wait(_STOP_TIMEOUT_S)
        worker.conn.close()
        if self._worker is worker:
            self._worker = None
        return worker.process.returncode


class _WorkerLost(Exception):
    """The worker died, or its pipe broke."""


def _send(worker: _Worker, message: object) -> None:
    worker.busy = True
    try:
        worker.conn.send(message)
    except OSError as exc:
        raise _WorkerLost(f"{type(exc).__name__}: {exc}") from exc


def _receive(worker: _Worker, timeout: float) -> tuple[Any, ...] | None:
    """The worker's next reply; None if none came within `timeout` seconds."""
    try:
        # poll() returns at once when the worker dies: its end of the pipe closes.
        if not worker.conn.poll(timeout):
            return None
        reply: tuple[Any, ...] = worker.conn.recv()
    except (EOFError, OSError) as exc:
        raise _WorkerLost(f"{type(exc).__name__}: {exc}") from exc
    return reply


def _death(path: Path, code: int | None, limits: FileLimits) -> ParseError:
    """The error for a file whose worker died while parsing it, from the worker's exit code."""
    log.info("%s: the parser process ended (exit code %s) and will be replaced", path.name, code)
    if code == EXIT_OVER_MEMORY:
        return LimitExceeded(f"{path.name}: over the memory limit "
                             f"({describe_bytes(limits.memory_bytes)}) while parsing")
    if code == -signal.SIGXCPU:
        return LimitExceeded(f"{path.name}: over the CPU time limit ({limits.cpu_seconds} s) "
                             "while parsing")
    log.warning("%s: the parser process crashed (exit code %s)", path.name, code)
    if code is not None and code < 0:
        name = signal.Signals(-code).name
        hint = "; out of memory?" if code == -signal.SIGKILL else ""
        return ParseError(f"{path.name}: the parser crashed while parsing it ({name}{hint})")
    return ParseError(f"{path.name}: the parser process exited with status {code} while "
                      "parsing it")
