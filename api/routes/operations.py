"""Admin routes for API keys and the audit log."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from api.deps import RequestIdDep, ServicesDep, require
from api.keys import KeyStoreError
from retrieval.audit import verify_audit_log
from retrieval.scope import Scope

router = APIRouter(prefix="/v1/admin")

CanWriteKeys = Annotated[Scope, Depends(require("keys", "write"))]
CanReadAudit = Annotated[Scope, Depends(require("audit", "read"))]


class KeyBody(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    user: str = Field(pattern=r"^[^\s,:/]{1,128}$")


@router.post("/keys", status_code=201)
def create_key(body: KeyBody, scope: CanWriteKeys, services: ServicesDep,
               request_id: RequestIdDep) -> dict[str, Any]:
    key = services.keys.create(body.user)
    services.audit_admin("keys.create", caller=f"user:{scope.user}", request_id=request_id,
                         user=body.user)
    return {"user": body.user, "key": key}


@router.delete("/keys/{user}")
def revoke_keys(user: str, scope: CanWriteKeys, services: ServicesDep,
                request_id: RequestIdDep) -> dict[str, Any]:
    try:
        count = services.keys.revoke(user)
    except KeyStoreError as exc:
        raise HTTPException(status_code=422, detail=f"invalid request: user: {exc}") from None
    services.audit_admin("keys.revoke", caller=f"user:{scope.user}", request_id=request_id,
                         user=user, revoked=count)
    return {"user": user, "revoked": count}


@router.get("/audit/verify")
def verify_audit(scope: CanReadAudit, services: ServicesDep) -> dict[str, Any]:
    result = verify_audit_log(services.settings.audit_log)
    return {"records": result.records, "ok": result.ok, "problems": result.problems}
