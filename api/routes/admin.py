"""Admin routes: re-index jobs, index versions and rollback; each needs a Casbin permission."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path
from fastapi.responses import JSONResponse

from api.deps import RequestIdDep, ServicesDep, actor, require
from api.openapi import ADMIN, BODY, errors
from api.schemas import BuildRunningResponse, RequestBody
from application.errors import Conflict
from ingest.jobs import BuildRunning
from retrieval.scope import Scope

router = APIRouter(prefix="/v1/admin", responses=errors(*ADMIN))

CanReindex = Annotated[Scope, Depends(require("index", "reindex"))]
CanReadIndex = Annotated[Scope, Depends(require("index", "read"))]
CanRollback = Annotated[Scope, Depends(require("index", "rollback"))]
# Job ids are "job-<time>-<hex>"; anything else is refused before it nears a file name.
JobId = Annotated[str, Path(pattern=r"^job-[A-Za-z0-9_-]{1,100}$")]
_BUSY: dict[int | str, dict[str, Any]] = {
    409: {"model": BuildRunningResponse, "description": "A build is already running"}}


class RollbackRequest(RequestBody):
    to: str | None = None


def _start(services: ServicesDep, source: str | None, scope: Scope, request_id: str
           ) -> JSONResponse:
    try:
        job = services.admin.reindex(actor(scope, request_id), source)
    except Conflict as exc:
        if not isinstance(exc.__cause__, BuildRunning):
            raise
        return JSONResponse(status_code=409, content={
            "error": str(exc), "job_id": exc.__cause__.job_id, "request_id": request_id})
    return JSONResponse(status_code=202, content={"job_id": job.id, "state": job.state})


@router.post("/reindex", status_code=202, responses=_BUSY)
def reindex_all(scope: CanReindex, services: ServicesDep,
                request_id: RequestIdDep) -> JSONResponse:
    return _start(services, None, scope, request_id)


@router.post("/sources/{name}/reindex", status_code=202,
             responses={**_BUSY, **errors(404, when={404: "No source of that name"})})
def reindex_source(name: str, scope: CanReindex, services: ServicesDep,
                   request_id: RequestIdDep) -> JSONResponse:
    return _start(services, name, scope, request_id)  # NotFound (404) for an unknown source


@router.get("/jobs/{job_id}", responses=errors(404, 422, when={404: "No job of that id"}))
def get_job(job_id: JobId, scope: CanReindex, services: ServicesDep) -> dict[str, Any]:
    job = services.jobs.store.load(job_id)
    if job is None:
        raise HTTPException(status_code=404, detail=f"no job {job_id!r}")
    return asdict(job)


@router.get("/index/versions", responses=errors(503))
def list_versions(scope: CanReadIndex, services: ServicesDep) -> dict[str, Any]:
    current = services.catalog.current()
    return {
        "current": current,
        "versions": [{**asdict(v), "current": v.id == current} for v in services.catalog.sealed()],
    }


@router.post("/index/rollback", responses=errors(*BODY, 404, 409, when={
    404: "No index version of that id", 409: "No earlier version to roll back to"}))
def rollback(
    scope: CanRollback, services: ServicesDep, request_id: RequestIdDep,
    body: RollbackRequest | None = None
) -> dict[str, Any]:
    _, now = services.admin.rollback(actor(scope, request_id), body.to if body else None)
    return {"index_version": now}
