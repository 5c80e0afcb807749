"""Rate limits in one process's memory: token buckets per key and per address, and a lockout
for addresses that keep presenting wrong keys.

Nothing here is shared between processes: N worker processes allow N times each limit.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from api.refusals import RefusalTally
from application.settings import RateLimitSettings

# Past this many tracked keys or addresses, entries that would be full again are dropped, so a
# caller cycling through addresses costs memory only for as long as its buckets are not full.
_MAX_TRACKED = 10_000

Clock = Callable[[], float]


def retry_after(wait_s: float) -> int:
    """Whole seconds for a Retry-After header: never 0, which would invite an instant retry."""
    return max(1, math.ceil(wait_s))


@dataclass
class _Bucket:
    tokens: float
    at: float


class TokenBuckets:
    """One token bucket per name: `per_minute` sustained, `burst` at once."""

    def __init__(self, per_minute: int, burst: int, *, clock: Clock = time.monotonic) -> None:
        self._rate = per_minute / 60.0
        self._burst = float(burst)
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def take(self, name: str) -> float:
        """Take a token for `name`: 0 when allowed, else the seconds until one is available."""
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(name)
            if bucket is None:
                if len(self._buckets) >= _MAX_TRACKED:
                    self._prune(now)
                bucket = self._buckets[name] = _Bucket(self._burst, now)
            bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.at) * self._rate)
            bucket.at = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return 0.0
            return (1.0 - bucket.tokens) / self._rate

    def _prune(self, now: float) -> None:
        full = [name for name, b in self._buckets.items()
                if b.tokens + (now - b.at) * self._rate >= self._burst]
        for name in full:
            del self._buckets[name]
        # Still too many: every one is busy right now; forget the oldest half rather than grow.
        if len(self._buckets) >= _MAX_TRACKED:
            for name in list(self._buckets)[: _MAX_TRACKED // 2]:
                del self._buckets[name]


class FailedKeyLockout:
    """After `threshold` wrong keys from an address in a window, it is refused until the window
    closes, without its keys being checked."""

    def __init__(self, threshold: int, window_s: float, *, clock: Clock = time.monotonic) -> None:
        self._threshold = threshold
        self._window_s = window_s
        self._clock = clock
        self._windows: dict[str, tuple[float, int]] = {}  # address -> (closes at, failures)
        self._lock = threading.Lock()

    def locked_for(self, address: str) -> float:
        """Seconds until `address` may try a key again; 0 when it may now."""
        if not self._threshold:
            return 0.0
        now = self._clock()
        with self._lock:
            closes, failures = self._windows.get(address, (0.0, 0))
        if now < closes and failures >= self._threshold:
            return closes - now
        return 0.0

    def failed(self, address: str) -> None:
        """Count a wrong key from `address`; the first of a window opens it."""
        if not self._threshold:
            return
        now = self._clock()
        with self._lock:
            closes, failures = self._windows.get(address, (0.0, 0))
            if now >= closes:
                if len(self._windows) >= _MAX_TRACKED:
                    self._windows = {a: w for a, w in self._windows.items() if w[0] > now}
                closes, failures = now + self._window_s, 0
            self._windows[address] = (closes, failures + 1)


class Limits:
    """What the API enforces per key and per address, and the tally their refusals go to."""

    def __init__(self, settings: RateLimitSettings, tally: RefusalTally, *,
                 clock: Clock = time.monotonic) -> None:
        self.settings = settings
        self.tally = tally
        self._per_key = (TokenBuckets(settings.per_key_per_minute, settings.per_key_burst,
                                      clock=clock) if settings.per_key_per_minute else None)
        self._per_address = (TokenBuckets(settings.per_address_per_minute,
                                          settings.per_address_burst, clock=clock)
                             if settings.per_address_per_minute else None)
        self.lockout = FailedKeyLockout(settings.failed_keys, settings.window_s, clock=clock)

    def key_wait(self, user: str) -> float:
        """0 if `user` may make a request now, else the seconds until they may."""
        return self._per_key.take(user) if self._per_key else 0.0

    def address_wait(self, address: str) -> float:
        """0 if `address` may make a request now, else the seconds until it may."""
        return self._per_address.take(address) if self._per_address else 0.0
