"""The child process of ingest/sandbox.py (`python -m ingest.parse_worker FD`): parses the
files it is sent, one at a time, each under its own memory and CPU limits.

Limits are set after the imports and after a warm-up parse of each format family (the first PDF
alone imports about 1,400 modules), so a file pays only for itself:

- memory: its address space may grow by `memory_bytes` over what the worker held before it.
  A watch thread ends the worker (exit status EXIT_OVER_MEMORY) the moment it does; RLIMIT_AS,
  a quarter higher, catches an allocation too quick for the watch. The watch is what counts:
  unstructured catches the MemoryError of a PDF's text extraction (`except Exception`) and
  returns no text, and a dynamic loader that cannot allocate exits with status 127.
- CPU: RLIMIT_CPU's soft limit is set to the time used so far plus `cpu_seconds`; the kernel
  then ends the worker with SIGXCPU.

Both are lifted once the file is done. A worker that grew by more than half its memory limit
over a file exits after replying, so that what one file left behind cannot count against the
next; the parent starts a new one.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import math
import os
import resource
import signal
import sys
import tempfile
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path

from ingest.errors import LimitExceeded, ParseError
from ingest.settings import FileLimits

EXIT_OVER_MEMORY = 86
_WATCH_INTERVAL_S = 0.005
_FAMILIES = {".txt": "text", ".md": "text", ".markdown": "text", ".html": "html",
             ".htm": "html", ".eml": "eml", ".docx": "docx", ".pdf": "pdf"}
_PR_SET_PDEATHSIG = 1
_PAGE = os.sysconf("SC_PAGE_SIZE")


def serve(conn: Connection) -> None:
    """Answer the parent's (path, limits) requests until it sends None or goes away.

    Replies: ("fatal", reason) if the parser cannot load; per file ("begin",) once its limits
    are set, then ("ok", document, retire) or ("problem", kind, message, retire).
    """
    _detach()
    # Its warnings (pypdf's, unstructured's) reach the build's stderr, marked as the parser's.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s parser %(name)s: %(message)s")
    # spaCy's thinc imports torch if it can, for nothing the tagger uses: half the start-up.
    sys.modules.setdefault("torch", None)  # type: ignore[arg-type]
    from ingest.parser import _load_partition

    try:
        _load_partition()
    except Exception as exc:  # a missing library or model: every file would fail alike
        conn.send(("fatal", f"{type(exc).__name__}: {exc}"))
        return
    watch = _MemoryWatch()
    warm: set[str] = set()
    while True:
        try:
            request = conn.recv()
        except EOFError:
            return
        if request is None:
            return
        path, limits = Path(request[0]), request[1]
        assert isinstance(limits, FileLimits)
        family = _FAMILIES.get(path.suffix.lower())
        if family is not None and family not in warm:
            try:
                _warm_up(family)
            except Exception as exc:
                conn.send(("fatal", f"cannot parse {family} files: {type(exc).__name__}: {exc}"))
                return
            warm.add(family)
        before = _address_space()
        reply = _parse(conn, path, limits, watch, before)
        retire = _address_space() > before + limits.memory_bytes // 2
        conn.send((*reply, retire))
        if retire:
            return


def _parse(conn: Connection, path: Path, limits: FileLimits, watch: _MemoryWatch,
           before: int) -> tuple[object, ...]:
    """Parse `path` within `limits`; the reply to send, less its retire flag."""
    from ingest.parser import parse_document

    ceiling = before + limits.memory_bytes
    _set_soft(resource.RLIMIT_AS, ceiling + max(64 << 20, limits.memory_bytes // 4))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    _set_soft(resource.RLIMIT_CPU, math.ceil(usage.ru_utime + usage.ru_stime) + limits.cpu_seconds)
    watch.watch(ceiling)
    conn.send(("begin",))
    try:
        return ("ok", parse_document(path, limits))
    except MemoryError:
        os._exit(EXIT_OVER_MEMORY)  # what it was in the middle of cannot be trusted
    except LimitExceeded as exc:
        return ("problem", "limit", str(exc))
    except ParseError as exc:
        return ("problem", "parse", str(exc))
    except Exception as exc:  # unstructured's own checks raise all kinds; the file is at fault
        return ("problem", "parse", f"{path.name}: {type(exc).__name__}: {exc}"[:300])
    finally:
        watch.watch(None)
        for which in (resource.RLIMIT_AS, resource.RLIMIT_CPU):
            resource.setrlimit(which, (resource.getrlimit(which)[1],) * 2)


class _MemoryWatch:
    """Ends the process as soon as its address space passes the ceiling it is given."""

    def __init__(self) -> None:
        self._ceiling: int | None = None
        self._armed = threading.Event()
        threading.Thread(target=self._run, name="memory-watch", daemon=True).start()

    def watch(self, ceiling: int | None) -> None:
        """Watch for `ceiling` bytes of address space; None: stop watching."""
        self._ceiling = ceiling
        if ceiling is None:
            self._armed.clear()
        else:
            self._armed.set()

    def _run(self) -> None:
        while self._armed.wait():
            ceiling = self._ceiling
            if ceiling is not None and _address_space() > ceiling:
                os._exit(EXIT_OVER_MEMORY)
            time.sleep(_WATCH_INTERVAL_S)


def _detach() -> None:
    """No Ctrl-C tracebacks (the parent stops the worker), no core dumps, and gone with the
    parent: a SIGKILLed build must not leave a parser running."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() == 1:  # the parent died before prctl
        os._exit(0)


def _address_space() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[0]) * _PAGE


def _set_soft(which: int, soft: int) -> None:
    _, hard = resource.getrlimit(which)
    resource.setrlimit(which, (soft if hard == resource.RLIM_INFINITY else min(soft, hard), hard))


def _warm_up(family: str) -> None:
    """Parse a small sample of the family, so its imports and caches count against no file."""
    from ingest.parser import parse_document
    from ingest.warm_up import write_sample

    with tempfile.TemporaryDirectory(prefix="clearance-warm-up-") as tmp:
        parse_document(write_sample(family, Path(tmp)))


if __name__ == "__main__":
    serve(Connection(int(sys.argv[1])))
