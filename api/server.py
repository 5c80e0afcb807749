"""How the API is served: uvicorn with the connection limits of api/connections.py, open-file
limits to match, and a log a flood cannot fill.

`clearance serve` and the tests' LiveServer both build their Config with `uvicorn_config` and
run it with `Server`.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import resource
import socket
from typing import Any

import uvicorn

from api.connections import AcceptGate, Connections, GuardedH11Protocol
from api.logs import quiet_floods
from application.settings import ServerSettings

log = logging.getLogger(__name__)

# Descriptors kept for what is not a connection: index files, the audit log, models, threads.
_RESERVED_FDS = 512


def raise_fd_limit() -> int:
    """Raise the soft limit on open files to the hard limit; returns the soft limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:
            log.warning("could not raise the open-file limit from %d to %d: %s",
                        soft, target, exc)
    return soft


def connection_cap(settings: ServerSettings, fd_limit: int) -> int:
    """`max_connections`, lowered to what the open-file limit can hold."""
    room = max(fd_limit - _RESERVED_FDS, 16)
    if settings.max_connections > room:
        log.warning("max_connections %d lowered to %d: the open-file limit is %d",
                    settings.max_connections, room, fd_limit)
        return room
    return settings.max_connections


def protocol_class(settings: ServerSettings, cap: int) -> type[GuardedH11Protocol]:
    """A protocol class of its own per server, holding that server's connection state."""
    shared = Connections(cap, settings.header_timeout_s,
                         max_per_address=settings.max_connections_per_address,
                         exempt=settings.forwarded_allow_ips)
    return type("GuardedH11Protocol", (GuardedH11Protocol,), {"shared": shared})


def uvicorn_config(app: Any, settings: ServerSettings, *, host: str, port: int,
                   log_level: str = "info") -> uvicorn.Config:
    """The uvicorn Config the API is served with, limits included."""
    cap = connection_cap(settings, raise_fd_limit())
    config = uvicorn.Config(
        app, host=host, port=port, log_level=log_level, lifespan="on",
        # The accept gate works on asyncio's own event loop (add_reader on the listener).
        loop="asyncio",
        http=protocol_class(settings, cap),
        timeout_keep_alive=settings.keep_alive_timeout_s,
        proxy_headers=bool(settings.forwarded_allow_ips),
        forwarded_allow_ips=settings.forwarded_allow_ips or None,
        # Past the cap, waiting connections queue in the kernel: a short queue keeps a new
        # caller behind fewer idle ones (at 2048, callers during a flood waited twice as long).
        backlog=max(64, min(2048, cap // 4)),
    )
    # After Config, which configures logging (and would reset what came before).
    quiet_floods()
    return config


class Server(uvicorn.Server):
    """uvicorn's server, accepting through an AcceptGate; `freeze_heap` for a long-lived
    process (`clearance serve`), not for tests."""

    def __init__(self, config: uvicorn.Config, *, freeze_heap: bool = False) -> None:
        super().__init__(config)
        self._freeze_heap = freeze_heap
        self._gate: AcceptGate | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.should_exit or not getattr(self, "servers", None):
            return
        loop = asyncio.get_running_loop()
        listeners = []
        for server in self.servers:
            for listening in server.sockets:
                # asyncio's accept loop out, the gate's in, on a duplicate of the same socket.
                loop.remove_reader(listening.fileno())
                listeners.append(socket.socket(fileno=os.dup(listening.fileno())))
        config = self.config
        protocol: type[GuardedH11Protocol] = config.http_protocol_class  # type: ignore[assignment]
        self._gate = AcceptGate(
            loop, listeners,
            lambda: protocol(config=config, server_state=self.server_state,
                             app_state=self.lifespan.state),
            protocol.shared)
        self._gate.open()
        if self._freeze_heap:
            # The models leave ~500k objects that live as long as the process, and a full
            # collection walks them all (0.6 s here, the event loop stalled meanwhile).
            # Frozen, collections see only what came after start-up.
            gc.collect()
            gc.freeze()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self._gate is not None:
            self._gate.close()
            self._gate = None
        await super().shutdown(sockets=sockets)


def serve(app: Any, settings: ServerSettings, *, host: str, port: int) -> None:
    """Run the API until interrupted (what `clearance serve` does)."""
    Server(uvicorn_config(app, settings, host=host, port=port), freeze_heap=True).run()
