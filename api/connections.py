"""Connections the server holds: a deadline for each request's headers, and a cap on how many.

uvicorn's h11 protocol has a keep-alive timeout but no deadline for a request's headers, and
no cap on connections (`limit_concurrency` answers 503 only once a request has arrived, after
its connection has been accepted and held). Here:

- a connection must send a complete request line and headers within `header_timeout_s` of
  opening, or of the previous response on a kept-alive connection; else it is dropped (reset);
- at `max_connections`, the server stops accepting, as nginx and HAProxy do: new connections
  wait in the kernel's listen backlog instead of being accepted and closed (a flood reconnecting
  at once after each close kept the event loop busy accepting and left nothing for requests).
  To let a new caller in past idle ones, the oldest connection still without a complete first
  request is dropped to make room once it has been waiting half the header timeout;
- at `max_connections_per_address` from one client address, a new connection from it is reset
  as soon as it is accepted (nginx's `limit_conn`): a flood from a few addresses then holds a
  few slots and the backlog drains at accept speed, so callers from other addresses get in at
  once. Proxies in `forwarded_allow_ips` are exempt: every caller behind them shares their
  address.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import struct
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger(__name__)

_ACCEPT_BATCH = 64  # accepted per wake-up, so one busy listener cannot starve requests
# SO_LINGER on, zero seconds: close() resets the connection instead of a FIN handshake, and
# leaves no socket in TIME_WAIT.
_RESET_ON_CLOSE = struct.pack("ii", 1, 0)


class Connections:
    """What one server's connections share: the caps, the openers, and the accept gate."""

    def __init__(self, max_connections: int, header_timeout_s: float, *,
                 max_per_address: int = 0, exempt: Iterable[str] = ()) -> None:
        self.max_connections = max_connections
        self.header_timeout_s = header_timeout_s
        self.make_room_after_s = header_timeout_s / 2
        self.max_per_address = max_per_address  # 0: no cap
        self._exempt = _Addresses(exempt)
        self.live: set[GuardedH11Protocol] = set()
        # Connections yet to send their first complete request, oldest first.
        self.opening: dict[GuardedH11Protocol, float] = {}
        self.accepted = 0  # accepted, their protocol not made yet
        self.per_address: Counter[str] = Counter()  # accepted and live, by client address
        self.dropped = 0
        self.refused_per_address = 0
        self.gate: AcceptGate | None = None

    def full(self) -> bool:
        return len(self.live) + self.accepted >= self.max_connections

    def admit_address(self, address: str) -> bool:
        """Count a connection just accepted from `address`; False if it is over that address's
        cap (and then not counted)."""
        if (self.max_per_address and self.per_address[address] >= self.max_per_address
                and not self._exempt.contains(address)):
            self.refused_per_address += 1
            return False
        self.per_address[address] += 1
        return True

    def release_address(self, address: str) -> None:
        left = self.per_address[address] - 1
        if left > 0:
            self.per_address[address] = left
        else:
            del self.per_address[address]

    def can_make_room(self) -> bool:
        """Whether the oldest opener has waited long enough to be dropped for a new one."""
        opened = next(iter(self.opening.values()), None)
        return opened is not None and time.monotonic() - opened >= self.make_room_after_s

    def make_room(self) -> None:
        """Drop the oldest opener, for a connection just accepted."""
        victim = next(iter(self.opening), None)
        if victim is not None:
            victim.drop()

    def room_at(self) -> float | None:
        """When the oldest opener may be dropped for room (monotonic), if there is one."""
        opened = next(iter(self.opening.values()), None)
        return None if opened is None else opened + self.make_room_after_s

    def released(self) -> None:
        if self.gate is not None and not self.full():
            self.gate.open()

    def opened(self) -> None:
        # A paused gate may have had no opener to wait for when it paused.
        if self.gate is not None:
            self.gate.wake_for_room()


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a header deadline, counted against the cap."""

    shared: Connections  # set on the subclass made for each server

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None
        self._armed_for: object = None
        self._address = ""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._address = peer_address(transport.get_extra_info("peername"))
        self.shared.accepted = max(self.shared.accepted - 1, 0)
        self.shared.live.add(self)
        self.shared.opening[self] = time.monotonic()
        self.shared.opened()
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self._forget()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._check_headers()

    def on_response_complete(self) -> None:
        # Armed before the parent looks at pipelined data, which may hold the next request.
        if not self.transport.is_closing():
            self._arm()
        super().on_response_complete()
        self._check_headers()

    def drop(self) -> None:
        """Reset the connection: no goodbye owed to one that never finished asking, and no
        socket left in TIME_WAIT for each."""
        self._disarm()
        self._forget()
        self.shared.dropped += 1
        self.transport.abort()

    def _forget(self) -> None:
        # At once, not a loop turn later with connection_lost: the slot is free now.
        self.shared.opening.pop(self, None)
        if self in self.shared.live:
            self.shared.live.discard(self)
            self.shared.release_address(self._address)
            self.shared.released()

    def _arm(self) -> None:
        self._disarm()
        self._armed_for = self.cycle
        self._header_timer = self.loop.call_later(self.shared.header_timeout_s,
                                                  self._headers_late)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _check_headers(self) -> None:
        # uvicorn makes a new cycle for each request whose headers are complete.
        if self._header_timer is not None and self.cycle is not self._armed_for:
            self._disarm()
            self.shared.opening.pop(self, None)

    def _headers_late(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.drop()


class AcceptGate:
    """Accepts on the server's listening sockets while there is room, and stops while there is
    none (asyncio's own accept loop takes whatever is queued, up to the whole backlog)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, listeners: list[socket.socket],
                 factory: Callable[[], asyncio.Protocol], shared: Connections) -> None:
        self._loop = loop
        self._listeners = listeners
        self._factory = factory
        self._shared = shared
        self._accepting = False
        self._retry: asyncio.TimerHandle | None = None
        shared.gate = self

    def open(self) -> None:
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        if not self._accepting:
            self._accepting = True
            for sock in self._listeners:
                self._loop.add_reader(sock.fileno(), self._accept, sock)

    def pause(self) -> None:
        if self._accepting:
            self._accepting = False
            for sock in self._listeners:
                self._loop.remove_reader(sock.fileno())
        self.wake_for_room()

    def wake_for_room(self) -> None:
        """While paused, open again when the oldest opener may make room for a new one."""
        until = self._shared.room_at()
        if not self._accepting and until is not None and self._retry is None:
            self._retry = self._loop.call_later(max(until - time.monotonic(), 0.01), self.open)

    def close(self) -> None:
        self.pause()
        self._shared.gate = None
        if self._retry is not None:
            self._retry.cancel()
        for sock in self._listeners:
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        for _ in range(_ACCEPT_BATCH):
            if self._shared.full() and not self._shared.can_make_room():
                self.pause()
                return
            try:
                conn, peer = listener.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return
            except OSError as exc:
                # Out of descriptors or memory: wait a second rather than spin (as asyncio does).
                log.error("accepting a connection failed: %s; retrying in 1 s", exc)
                self.pause()
                if self._retry is None:
                    self._retry = self._loop.call_later(1.0, self.open)
                return
            address = peer_address(peer)
            if not self._shared.admit_address(address):
                _reset(conn)  # before any protocol is made: a refusal costs an accept
                continue
            if self._shared.full():
                # Only now that someone is waiting for the room.
                self._shared.make_room()
            conn.setblocking(False)
            self._shared.accepted += 1
            self._loop.create_task(self._connect(conn, address))

    async def _connect(self, conn: socket.socket, address: str) -> None:
        try:
            await self._loop.connect_accepted_socket(self._factory, conn)
        except OSError:
            self._shared.accepted = max(self._shared.accepted - 1, 0)
            self._shared.release_address(address)
            conn.close()


def peer_address(peer: Any) -> str:
    """The client's address from a socket's peer name ("" for a Unix socket)."""
    return str(peer[0]) if isinstance(peer, tuple) and peer else ""


def _reset(conn: socket.socket) -> None:
    with contextlib.suppress(OSError):
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET_ON_CLOSE)
    conn.close()


class _Addresses:
    """Client addresses matched against a list of addresses and networks ("*": all)."""

    def __init__(self, entries: Iterable[str]) -> None:
        entries = list(entries)
        self._all = "*" in entries
        self._networks = []
        for entry in entries:
            try:
                self._networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                continue  # a host name or a Unix socket path: nothing an address can match

    def contains(self, address: str) -> bool:
        if self._all:
            return True
        if not self._networks:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self._networks)
