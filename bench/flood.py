"""A slow-connection flood: hold N connections that each send a partial request line and
nothing more, and reconnect whenever the server closes one.

    .venv/bin/python bench/flood.py --port P --connections 5000 --out stats.json

Runs until SIGTERM or SIGINT (or `--seconds`), then writes its counts as JSON to `--out`. One
process holds as many sockets as its open-file limit allows (raised to the hard limit here);
bench/load.py starts several to reach 20,000. `--source 127.0.0.2` connects from another
address than the clients (any 127.x.y.z is loopback).
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import resource
import selectors
import signal
import socket
import statistics
import time
from pathlib import Path
from typing import Any

# Linux: a bound socket takes its port at connect(), so ports are unique per destination and
# 20,000 of them from one address fit.
IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)
PARTIAL = b"GET /v1/sea"  # a request line cut short: no CRLF, no headers, ever
RAMP_PER_TICK = 200  # new connections opened per loop turn while ramping up


class Flood:
    """The sockets, their states, and counts of what happened to them."""

    def __init__(self, host: str, port: int, connections: int, source: str | None) -> None:
        self.address = (host, port)
        self.source = source
        self.target = connections
        self.selector = selectors.DefaultSelector()
        self.connected_at: dict[socket.socket, float] = {}
        self.connecting = 0
        self.stats: dict[str, Any] = {"connects": 0, "connect_errors": 0, "closed_by_server": 0,
                                      "answered_then_closed": 0, "max_idle_open": 0}
        self.lifetimes: list[float] = []
        self.errors: dict[str, int] = {}

    @property
    def open_sockets(self) -> int:
        return self.connecting + len(self.connected_at)

    def open_one(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        if self.source:
            sock.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
            sock.bind((self.source, 0))
        code = sock.connect_ex(self.address)
        if code not in (0, errno.EINPROGRESS):
            self._error(errno.errorcode.get(code, str(code)))
            sock.close()
            return
        self.connecting += 1
        self.selector.register(sock, selectors.EVENT_WRITE, "connecting")

    def turn(self) -> None:
        for key, _ in self.selector.select(timeout=0.05):
            sock: socket.socket = key.fileobj  # type: ignore[assignment]
            if key.data == "connecting":
                self.connecting -= 1
                code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if code:
                    self._error(errno.errorcode.get(code, str(code)))
                    self._close(sock)
                    continue
                try:
                    sock.send(PARTIAL)
                except OSError as exc:
                    self._error(type(exc).__name__)
                    self._close(sock)
                    continue
                self.stats["connects"] += 1
                self.connected_at[sock] = time.monotonic()
                self.selector.modify(sock, selectors.EVENT_READ, "idle")
            else:
                try:
                    data = sock.recv(4096)
                except OSError:
                    data = b""
                began = self.connected_at.pop(sock)
                self.lifetimes.append(time.monotonic() - began)
                self.stats["answered_then_closed" if data else "closed_by_server"] += 1
                self._close(sock)
        self.stats["max_idle_open"] = max(self.stats["max_idle_open"], len(self.connected_at))
        # Reconnect what was closed, and ramp up to the target.
        for _ in range(min(RAMP_PER_TICK, self.target - self.open_sockets)):
            self.open_one()

    def _close(self, sock: socket.socket) -> None:
        self.selector.unregister(sock)
        sock.close()

    def _error(self, name: str) -> None:
        self.stats["connect_errors"] += 1
        self.errors[name] = self.errors.get(name, 0) + 1

    def report(self) -> dict[str, Any]:
        lifetimes = sorted(self.lifetimes)
        return {**self.stats, "target": self.target, "idle_open_at_end": len(self.connected_at),
                "errors": self.errors,
                "closed_lifetime_s_p50": round(statistics.median(lifetimes), 3)
                if lifetimes else None}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--connections", type=int, default=5000)
    parser.add_argument("--source", default=None,
                        help="the address to connect from (any 127.x.y.z is loopback)")
    parser.add_argument("--seconds", type=float, default=300)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    flood = Flood(args.host, args.port, args.connections, args.source)
    stop = False

    def on_signal(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    deadline = time.monotonic() + args.seconds
    parent = os.getppid()
    # Bounded in time, and it stops with the bench that started it: a flood left running by a
    # killed bench would go on loading the machine.
    while not stop and time.monotonic() < deadline and os.getppid() == parent:
        flood.turn()
    args.out.write_text(json.dumps(flood.report(), indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
