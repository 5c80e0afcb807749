"""Admin routes: re-index jobs, index versions and rollback; each needs a Casbin permission."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from api.deps import ServicesDep, require
from ingest.jobs import BuildRunning
from retrieval.errors import StoreError
from retrieval.scope import Scope

router = APIRouter(prefix="/v1/admin")

CanReindex = Annotated[Scope, Depends(require("index", "reindex"))]
CanReadIndex = Annotated[Scope, Depends(require("index", "read"))]
CanRollback = Annotated[Scope, Depends(require("index", "rollback"))]


class RollbackRequest(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    to: str | None = None


def _start(services: ServicesDep, source: str | None) -> JSONResponse:
    try:
        job = services.jobs.start(source)
    except BuildRunning as exc:
        return JSONResponse(status_code=409, content={"error": str(exc), "job_id": exc.job_id})
    return JSONResponse(status_code=202, content={"job_id": job.id, "state": job.state})


@router.post("/reindex", status_code=202)
def reindex_all(scope: CanReindex, services: ServicesDep) -> JSONResponse:
    return _start(services, None)


@router.post("/sources/{name}/reindex", status_code=202)
def reindex_source(name: str, scope: CanReindex, services: ServicesDep) -> JSONResponse:
    if name not in {s.name for s in services.settings.sources}:
        raise HTTPException(status_code=404, detail=f"no source named {name!r}")
    return _start(services, name)


@router.get("/jobs/{job_id}")
def get_job(job_id: str, scope: CanReindex, services: ServicesDep) -> dict[str, Any]:
    job = services.jobs.store.load(job_id)
    if job is None:
        raise HTTPException(status_code=404, detail=f"no job {job_id!r}")
    return asdict(job)


@router.get("/index/versions")
def list_versions(scope: CanReadIndex, services: ServicesDep) -> dict[str, Any]:
    current = services.catalog.current()
    return {
        "current": current,
        "versions": [{**asdict(v), "current": v.id == current} for v in services.catalog.sealed()],
    }


@router.post("/index/rollback")
def rollback(
    scope: CanRollback, services: ServicesDep, body: RollbackRequest | None = None
) -> dict[str, Any]:
    to = body.to if body else None
    try:
        return {"index_version": services.catalog.rollback(to)}
    except StoreError as exc:
        raise HTTPException(status_code=404 if to else 409, detail=str(exc)) from None
