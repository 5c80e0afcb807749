"""Build the FastAPI application: nothing happens at import time."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response

from api.deps import get_request_id
from api.errors import install_error_handlers
from api.routes import (
    access,
    admin,
    chat,
    completions,
    health,
    operations,
    pause,
    policy,
    search,
)
from api.services import Services, build_services
from api.settings import Settings

log = logging.getLogger(__name__)


def create_app(settings: Settings, services: Services | None = None) -> FastAPI:
    """The API over the given settings; tests may pass prebuilt services."""
    services = services or build_services(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        removed = services.catalog.backend.remove_abandoned()
        if removed:
            log.warning("removed what killed builds left behind: %s", ", ".join(removed))
        services.embedder.warm_up()
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

    @app.middleware("http")
    async def request_id_header(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        response.headers["X-Request-ID"] = get_request_id(request)
        return response

    for module in (search, chat, completions, health, admin, policy, access, operations,
                   pause):
        app.include_router(module.router)
    return app
