"""Limits checked before a request reaches a route: the per-address rate limit, the body size cap
and the body deadline (413, 429 and 408 in the one error shape).

The body cap is checked on Content-Length before anything is read, and on the bytes actually
received (a chunked body has no length): the request is refused as soon as the count passes the
cap, so no more than the cap plus one read is ever buffered. Refusals that close the connection
say `Connection: close`, so the server stops reading the rest of an oversized body.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from fastapi import FastAPI
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.deps import get_request_id
from api.errors import _error
from api.ratelimit import Limits, retry_after
from api.refusals import RefusalTally
from application.services import Services
from application.settings import ServerSettings
from retrieval.errors import AuditWriteError

log = logging.getLogger(__name__)

# Refusals on these paths are audited (every /v1 call takes a key and its refusals are audited).
_AUDITED_PREFIX = "/v1/"
_FLUSH_EVERY_S = 1.0


def client_address(scope: Scope) -> str:
    """The client's address as the server sees it (X-Forwarded-For only from trusted proxies)."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def install_limits(app: FastAPI, settings: ServerSettings, services: Services) -> None:
    """Put the rate limits on app.state.limits and the HTTP limits in front of every route."""
    tally = RefusalTally(services.retrieval.record_refusal, settings.rate_limits.window_s)
    app.state.limits = Limits(settings.rate_limits, tally)
    app.add_middleware(HttpLimits, settings=settings, limits=app.state.limits)


class HttpLimits:
    """ASGI middleware for the limits above; it also flushes the refusal tally while the app
    runs (every second, and everything at shutdown)."""

    def __init__(self, app: ASGIApp, *, settings: ServerSettings, limits: Limits) -> None:
        self.app = app
        self.settings = settings
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, self._lifespan_receive(receive), send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        address = client_address(scope)
        wait = self.limits.address_wait(address)
        if wait:
            await self.refuse(request, receive, send, 429,
                               f"too many requests from {address}: the limit is "
                               f"{self.limits.settings.per_address_per_minute} a minute",
                               {"Retry-After": str(retry_after(wait))})
            return
        length = _content_length(scope)
        if length is not None and length > self.settings.max_body_bytes:
            await self.refuse(request, receive, send, 413, self.too_large(),
                               {"Connection": "close"})
            return
        await _Body(self, request, receive, send).run()

    def too_large(self) -> str:
        return f"request body too large: the limit is {self.settings.max_body_bytes} bytes"

    async def refuse(self, request: Request, receive: Receive, send: Send, status: int,
                      message: str, headers: dict[str, str]) -> None:
        """Answer `status` and audit it (counted per address) if the path is audited."""
        if request.url.path.startswith(_AUDITED_PREFIX):
            address = client_address(request.scope)
            try:
                await asyncio.to_thread(
                    self.limits.tally.refuse, f"address:{address}", action=request.url.path,
                    reason=message, request_id=get_request_id(request), address=address)
            except AuditWriteError as exc:
                log.error("%s", exc)
                status, message, headers = (500, "the audit log could not be written; the "
                                            "request was not answered", {"Connection": "close"})
        response = _error(request, status, message)
        response.headers.update(headers)
        await response(request.scope, receive, send)

    def _lifespan_receive(self, receive: Receive) -> Receive:
        flusher: asyncio.Task[None] | None = None

        async def wrapped() -> Message:
            nonlocal flusher
            message = await receive()
            if message["type"] == "lifespan.startup":
                flusher = asyncio.create_task(_flush_periodically(self.limits.tally))
            elif message["type"] == "lifespan.shutdown":
                # uvicorn has closed every connection and waited for their requests by now.
                if flusher is not None:
                    flusher.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await flusher
                await asyncio.to_thread(self.limits.tally.flush, everything=True)
            return message

        return wrapped


class _Body:
    """One request passed on with its body counted and timed as the route reads it."""

    def __init__(self, limits: HttpLimits, request: Request, receive: Receive,
                 send: Send) -> None:
        self.limits = limits
        self.request = request
        self.receive = receive
        self.send = send
        self.received = 0
        self.complete = False
        self.refused = False
        self.deadline = asyncio.get_running_loop().time() + limits.settings.body_timeout_s

    async def run(self) -> None:
        await self.limits.app(self.request.scope, self.limited_receive, self.guarded_send)

    async def limited_receive(self) -> Message:
        if self.complete or self.refused:
            return await self.receive() if not self.refused else {"type": "http.disconnect"}
        remaining = self.deadline - asyncio.get_running_loop().time()
        try:
            message = await asyncio.wait_for(self.receive(), timeout=max(remaining, 0.0))
        except TimeoutError:
            seconds = self.limits.settings.body_timeout_s
            return await self._refuse(408, f"request body not received within {seconds:g} s")
        if message["type"] != "http.request":
            self.complete = True
            return message
        self.received += len(message.get("body", b""))
        if self.received > self.limits.settings.max_body_bytes:
            return await self._refuse(413, self.limits.too_large())
        self.complete = not message.get("more_body", False)
        return message

    async def guarded_send(self, message: Message) -> None:
        # Once this layer has answered, whatever the route says after its body vanished is moot.
        if not self.refused:
            await self.send(message)

    async def _refuse(self, status: int, message: str) -> Message:
        self.refused = True
        await self.limits.refuse(self.request, self.receive, self.send, status, message,
                                  {"Connection": "close"})
        # The route sees a client that went away, and stops.
        return {"type": "http.disconnect"}


async def _flush_periodically(tally: RefusalTally) -> None:
    while True:
        await asyncio.sleep(_FLUSH_EVERY_S)
        await asyncio.to_thread(tally.flush)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
