"""GET /healthz: the process is up and which index version it serves."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import Public, ServicesDep

router = APIRouter()


@router.get("/healthz", dependencies=[Public])
def healthz(services: ServicesDep) -> dict[str, Any]:
    return {"status": "ok", "index_version": services.catalog.current()}
