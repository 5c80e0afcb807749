"""GET /healthz: the process is up, which index version it serves, and what is paused."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import Public, ServicesDep

router = APIRouter()


@router.get("/healthz", dependencies=[Public])
def healthz(services: ServicesDep) -> dict[str, Any]:
    pause = services.pause.current()
    return {
        "status": "paused" if pause.service_paused else "ok",
        "index_version": services.catalog.current(),
        "generation_paused": pause.generation_paused,
    }
