"""Admin routes for API keys and the audit log."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from pydantic import Field

from api.deps import RequestIdDep, ServicesDep, actor, require
from api.openapi import ADMIN, BODY, errors
from api.schemas import RequestBody
from control.keys import USER_MAX_CHARS, USER_PATTERN
from retrieval.scope import Scope

router = APIRouter(prefix="/v1/admin", responses=errors(*ADMIN))

CanWriteKeys = Annotated[Scope, Depends(require("keys", "write"))]
CanReadAudit = Annotated[Scope, Depends(require("audit", "read"))]
_USER = "1-64 letters, digits, '.', '_' or '-', not only dots"
UserName = Annotated[str, Path(pattern=USER_PATTERN, max_length=USER_MAX_CHARS, description=_USER)]


class KeyBody(RequestBody):
    user: str = Field(pattern=USER_PATTERN, max_length=USER_MAX_CHARS, description=_USER)


@router.post("/keys", status_code=201, responses=errors(*BODY))
def create_key(body: KeyBody, scope: CanWriteKeys, services: ServicesDep,
               request_id: RequestIdDep) -> dict[str, Any]:
    key = services.admin.create_key(actor(scope, request_id), body.user)
    return {"user": body.user, "key": key}


@router.delete("/keys/{user}", responses=errors(422))
def revoke_keys(user: UserName, scope: CanWriteKeys, services: ServicesDep,
                request_id: RequestIdDep) -> dict[str, Any]:
    count = services.admin.revoke_keys(actor(scope, request_id), user)
    return {"user": user, "revoked": count}


@router.get("/audit/verify")
def verify_audit(scope: CanReadAudit, services: ServicesDep) -> dict[str, Any]:
    result = services.audit.verify()
    return {"records": result.records, "ok": result.ok, "problems": result.problems}
