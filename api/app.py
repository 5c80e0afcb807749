"""Build the FastAPI application: nothing happens at import time."""

from __future__ import annotations

import faulthandler
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response

from api.deps import get_request_id
from api.errors import install_error_handlers
from api.http_limits import install_limits
from api.mcp_server import install_mcp
from api.openapi import document
from api.request_metrics import RequestMetrics
from api.request_records import RequestRecords
from api.routes import (
    access,
    admin,
    chat,
    completions,
    documents,
    feedback,
    health,
    metrics,
    operations,
    pause,
    policy,
    reports,
    scim,
    search,
    signin,
    web,
)
from application.services import Services, build_services
from application.settings import Settings
from observability import metrics as recorded

log = logging.getLogger(__name__)
# Every route of the API, by module.
ROUTERS = (search, chat, completions, documents, feedback, health, metrics, admin, policy,
           access, operations, pause, reports, scim, signin, web)


def create_app(settings: Settings, services: Services | None = None) -> FastAPI:
    """The API over the given settings; tests may pass prebuilt services."""
    if settings.metrics.enabled:
        recorded.start(settings.metrics_dir)
    services = services or build_services(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        removed = services.catalog.backend.remove_abandoned()
        if removed:
            log.warning("removed what killed builds left behind: %s", ", ".join(removed))
        # A fatal signal (SIGBUS from a memory-mapped index file, SIGSEGV) kills the process
        # without a Python line; this writes the traceback of every thread to stderr first.
        if not faulthandler.is_enabled():
            try:
                faulthandler.enable()
            except (OSError, ValueError) as exc:  # stderr without a file descriptor
                log.warning("cannot report fatal signals (faulthandler): %s", exc)
        services.embedder.warm_up()
        # Built and warmed now, so the first question after a restart gets a full timeout.
        services.composer.warm_up()
        # Opened (and probed) now rather than by the first search; a failure is not fatal:
        # that version's requests get 503 and /healthz says why.
        problem = services.retriever.check_current()
        if problem:
            log.warning("the index cannot be served yet: %s", problem)
        async with mcp_sessions():
            yield
        services.close()

    app = FastAPI(
        title="Clearance",
        version="0.1.0",
        description="Answers drawn only from documents the caller may read, with citations.",
        lifespan=lifespan,
    )
    app.state.services = services
    install_error_handlers(app)
    document(app)

    @app.middleware("http")
    async def request_id_header(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        response.headers["X-Request-ID"] = get_request_id(request)
        return response

    # Added late, so it runs early: oversized or throttled requests never reach the routes.
    install_limits(app, settings.server, services)
    # Added last, so it runs first: a request refused by the limits is recorded too.
    app.add_middleware(RequestRecords, audit=services.audit)
    if settings.metrics.enabled:
        # Outermost: every request is timed, those the limits refuse included.
        app.add_middleware(RequestMetrics)

    for module in ROUTERS:
        app.include_router(module.router)
    mcp_sessions = install_mcp(app, services)
    return app
