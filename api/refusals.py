"""Repeated refusals audited as counts: the first from a subject in a window gets its own record,
the rest of that window are counted into one aggregated record.

A subject is who is refused: `address:<ip>` before authentication (wrong keys, throttling,
oversized bodies), `user:<name>` after it (the per-key rate limit). A window opens with a
subject's first refusal and lasts `window_s`; its aggregated record is written when it closes
(`flush`, called every second by the HTTP limits), when the subject's next refusal finds it
closed, and for every open window at shutdown. Records that cannot be written are kept and tried
again; what is still unwritten at the last flush is logged, never dropped silently.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from control.audit import note_request_recorded
from retrieval.errors import AuditWriteError

log = logging.getLogger(__name__)


class RefusalWriter(Protocol):
    """RetrievalService.record_refusal: writes one audit record or raises AuditWriteError."""

    def __call__(self, action: str, request_id: str | None, reason: str,
                 caller: str | None = None, **details: Any) -> None: ...


@dataclass
class _Window:
    closes: float  # monotonic
    started_at: datetime
    caller: str | None
    address: str | None
    counts: Counter[tuple[str, str]] = field(default_factory=Counter)  # (action, reason)
    last_at: datetime | None = None

    def record(self, window_s: float) -> dict[str, Any]:
        total = sum(self.counts.values())
        return {
            "action": "refusals",
            "request_id": None,
            "reason": f"{total} further refusals in this window, counted rather than recorded "
                      "one by one",
            "caller": self.caller,
            "address": self.address,
            "count": total,
            "window_start": self.started_at.isoformat(),
            "window_end": (self.started_at + timedelta(seconds=window_s)).isoformat(),
            "last_at": self.last_at.isoformat() if self.last_at else None,
            "by": [{"action": action, "reason": reason, "count": n}
                   for (action, reason), n in sorted(self.counts.items())],
        }


class RefusalTally:
    """Audits refusals per subject and window; thread-safe."""

    def __init__(self, write: RefusalWriter, window_s: float, *,
                 clock: Any = time.monotonic) -> None:
        self._write = write
        self._window_s = window_s
        self._clock = clock
        self._windows: dict[str, _Window] = {}
        self._unwritten: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def refuse(self, subject: str, *, action: str, reason: str, request_id: str,
               caller: str | None = None, address: str | None = None) -> None:
        """Audit one refusal: written now if it opens a window (AuditWriteError if that fails),
        else counted."""
        now = self._clock()
        with self._lock:
            window = self._windows.get(subject)
            closed = window if window is not None and now >= window.closes else None
            if closed is not None:
                del self._windows[subject]
                window = None
            if window is not None:
                window.counts[(action, reason)] += 1
                window.last_at = datetime.now(UTC)
                note_request_recorded()  # in the window's aggregated record
            else:
                self._windows[subject] = _Window(now + self._window_s, datetime.now(UTC),
                                                 caller, address)
        if closed is not None and closed.counts:
            self._write_aggregate(closed.record(self._window_s))
        if window is None:
            try:
                self._write(action, request_id, reason, caller=caller, address=address)
            except AuditWriteError:
                # Not recorded, so it must not open the window: the next refusal tries again.
                with self._lock:
                    opened = self._windows.get(subject)
                    if opened is not None and not opened.counts:
                        del self._windows[subject]
                raise

    def flush(self, *, everything: bool = False) -> int:
        """Write the aggregated records of closed windows (or of all, at shutdown); returns how
        many were written."""
        now = self._clock()
        with self._lock:
            due = [s for s, w in self._windows.items() if everything or now >= w.closes]
            closed = [self._windows.pop(s) for s in due]
            records = self._unwritten + [w.record(self._window_s) for w in closed if w.counts]
            self._unwritten = []
        written = 0
        for record in records:
            written += self._write_aggregate(record)
        if everything and self._unwritten:
            for record in self._unwritten:
                log.error("aggregated audit record could not be written: %s",
                          json.dumps(record, sort_keys=True))
        return written

    def _write_aggregate(self, record: dict[str, Any]) -> int:
        details = dict(record)
        action, request_id, reason = (details.pop("action"), details.pop("request_id"),
                                      details.pop("reason"))
        caller = details.pop("caller")
        try:
            self._write(action, request_id, reason, caller=caller, **details)
        except AuditWriteError as exc:
            log.error("%s; the aggregated record of %s refusals is kept for the next try",
                      exc, record["count"])
            with self._lock:
                self._unwritten.append(record)
            return 0
        return 1
