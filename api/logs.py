"""Log filters that keep a flood of connections from filling the server's log.

A flood repeats the same few lines (asyncio's "socket.accept() out of system resource" with its
traceback, uvicorn's "Invalid HTTP request received."): each is let through once per interval,
with a count of the ones held back since, and nothing else is lost.
"""

from __future__ import annotations

import logging
import threading
import time

_INTERVAL_S = 10.0
# (logger, the most severe level held back): uvicorn's errors about the app always pass.
_FLOODED = (("asyncio", logging.CRITICAL), ("uvicorn.error", logging.WARNING))


class RepeatFilter(logging.Filter):
    """Lets a message through once per `interval_s`, per logger and message template."""

    def __init__(self, max_level: int, interval_s: float = _INTERVAL_S) -> None:
        super().__init__()
        self._max_level = max_level
        self._interval_s = interval_s
        self._seen: dict[tuple[str, str], tuple[float, int]] = {}
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > self._max_level:
            return True
        # The first line names the event; asyncio appends details that differ per socket.
        key = (record.name, str(record.msg).split("\n", 1)[0])
        now = time.monotonic()
        with self._lock:
            last, held = self._seen.get(key, (float("-inf"), 0))
            if now - last < self._interval_s:
                self._seen[key] = (last, held + 1)
                return False
            if len(self._seen) > 1000:
                self._seen.clear()
            self._seen[key] = (now, 0)
        if held:
            # No "%" in what is added, so the record's own arguments still format.
            record.msg = f"{record.msg} [{held} more like this held back since the last one]"
        return True


def quiet_floods() -> None:
    """Put a RepeatFilter on the loggers a connection flood writes to (once per logger)."""
    for name, level in _FLOODED:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RepeatFilter) for f in logger.filters):
            logger.addFilter(RepeatFilter(level))
