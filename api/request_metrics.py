"""Every HTTP request timed into the metrics, by route template, method, status and outcome.

The route is the template the request matched (`/v1/admin/keys/{key_id}`), never the raw path,
so a label cannot carry a user name or a key id; a request refused before routing (by the HTTP
limits) is matched against the routes here, and one that matches none is "unmatched".
"""

from __future__ import annotations

import time

from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from observability import metrics

UNMATCHED = "unmatched"


class RequestMetrics:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app raises before it answers

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            metrics.record_request(route_of(scope), scope.get("method", ""), status,
                                   time.perf_counter() - started)


def route_of(scope: Scope) -> str:
    """The template of the route `scope` matched, or would have matched."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    app = scope.get("app")
    for candidate in getattr(getattr(app, "router", None), "routes", ()):
        match, _ = candidate.matches(scope)
        if match is Match.FULL:
            return str(getattr(candidate, "path", UNMATCHED))
    return UNMATCHED
