"""GET /v1/admin/report and /v1/admin/record: the usage report and the integration record
(application/report.py, application/record.py), as JSON; the CLI prints the same."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from api.deps import ServicesDep, require
from api.openapi import ADMIN, errors
from application.errors import Invalid
from application.record import make_record
from application.report import make_report
from retrieval.scope import Scope

router = APIRouter(prefix="/v1/admin", responses=errors(*ADMIN))

CanReadAudit = Annotated[Scope, Depends(require("audit", "read"))]


@router.get("/report", responses=errors(422, 503))
def report(scope: CanReadAudit, services: ServicesDep,
           since: Annotated[str | None, Query(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$",
                                              description="From this UTC day on "
                                                          "(YYYY-MM-DD); default: all")] = None
           ) -> dict[str, Any]:
    try:
        day = date.fromisoformat(since) if since is not None else None
    except ValueError:
        raise Invalid(f"since: {since!r} is not a day of the calendar (YYYY-MM-DD)") from None
    return make_report(audit=services.audit, feedback=services.feedback.store,
                       catalog=services.catalog, sources=services.settings.sources,
                       settings=services.settings.report, since=day)


@router.get("/record", responses=errors(503))
def record(scope: CanReadAudit, services: ServicesDep) -> dict[str, Any]:
    return make_record(settings=services.settings, policy=services.policy,
                       catalog=services.catalog, audit=services.audit)
