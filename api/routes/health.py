"""GET /healthz and GET /readyz.

GET /healthz: whether the service can answer now, which index version it serves, what is paused.

Ready means a search could be answered and audited: the audit log can be appended to (its
filesystem is neither full nor read-only, its files are writable) and the current index version
opens (once open, that costs nothing). Otherwise 503, with each failing check and why. A pause is
an operator's choice, not a fault: a paused service is ready (200, status "paused").

GET /readyz: whether to send this process traffic (application/readiness.py): each check by
name, 200 when all pass, else 503 with `not_ready` naming the failing ones.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from api.deps import Public, ServicesDep
from api.openapi import LIMITS, errors
from application.readiness import readiness
from retrieval.errors import StoreError

router = APIRouter()


class Health(BaseModel):
    status: Literal["ok", "paused", "not ready"]
    index_version: str | None
    generation_paused: bool
    problems: dict[str, str] | None = Field(
        default=None, description="Only when not ready: each failing check (audit_log, index) "
                                  "and why")


@router.get("/healthz", dependencies=[Public], response_model=Health,
            response_model_exclude_unset=True,
            responses={**errors(*LIMITS, 500),
                       503: {"model": Health, "description": "Not ready: the audit log cannot "
                             "be written or the index cannot be read (`problems` says which)"}})
def healthz(services: ServicesDep) -> dict[str, Any] | JSONResponse:
    problems: dict[str, str] = {}
    audit = services.audit_problem()
    if audit is not None:
        problems["audit_log"] = str(audit)
    index = services.retriever.check_current()
    if index is not None:
        problems["index"] = index
    try:
        version = services.catalog.current()
    except StoreError:
        version = None  # reported under "index"
    pause = services.pause.current()
    body: dict[str, Any] = {
        "status": "not ready" if problems else "paused" if pause.service_paused else "ok",
        "index_version": version,
        "generation_paused": pause.generation_paused,
    }
    if problems:
        return JSONResponse(status_code=503, content={**body, "problems": problems})
    return body


class ReadinessCheck(BaseModel):
    ok: bool
    detail: str


class Readiness(BaseModel):
    status: Literal["ready", "not ready"]
    checks: dict[str, ReadinessCheck] = Field(
        description="index, policy, audit_log; control_plane with `database_url`; llm with "
                    "`[llm]`")
    not_ready: list[str] = Field(description="The checks that failed (empty when ready)")


@router.get("/readyz", dependencies=[Public], response_model=Readiness,
            responses={**errors(*LIMITS, 500),
                       503: {"model": Readiness, "description": "Not ready: `not_ready` names "
                             "the failing checks, `checks` says why"}})
def readyz(services: ServicesDep) -> dict[str, Any] | JSONResponse:
    checks = readiness(services)
    failing = [name for name, check in checks.items() if not check.ok]
    body = {"status": "not ready" if failing else "ready",
            "checks": {name: {"ok": c.ok, "detail": c.detail} for name, c in checks.items()},
            "not_ready": failing}
    return JSONResponse(status_code=503, content=body) if failing else body
