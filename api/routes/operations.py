"""Admin routes for API keys, user deactivation and the audit log."""

from __future__ import annotations

from dataclasses import asdict
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from pydantic import Field

from api.deps import RequestIdDep, ServicesDep, actor, require
from api.openapi import ADMIN, BODY, errors
from api.schemas import RequestBody
from control.keys import USER_MAX_CHARS, USER_PATTERN, KeyInfo, KeyScope, Kind
from retrieval.scope import Scope

router = APIRouter(prefix="/v1/admin", responses=errors(*ADMIN))

CanWriteKeys = Annotated[Scope, Depends(require("keys", "write"))]
CanReadKeys = Annotated[Scope, Depends(require("keys", "read"))]
CanReadAudit = Annotated[Scope, Depends(require("audit", "read"))]
CanReadUsers = Annotated[Scope, Depends(require("users", "read"))]
CanWriteUsers = Annotated[Scope, Depends(require("users", "write"))]
_USER = "1-64 letters, digits, '.', '_' or '-', not only dots"
UserName = Annotated[str, Path(pattern=USER_PATTERN, max_length=USER_MAX_CHARS, description=_USER)]


KeyId = Annotated[str, Path(pattern=r"^[0-9a-f]{16}$", description="A key's id (`GET /keys`)")]


class KeyBody(RequestBody):
    user: str = Field(pattern=USER_PATTERN, max_length=USER_MAX_CHARS, description=_USER)
    name: str = Field(default="default", min_length=1, max_length=64,
                      description="A name for the key, listed")
    kind: Kind = "personal"
    scope: KeyScope = Field(default="admin", description="admin: what the caller's policy "
                            "allows; query: search, chat and completions only")
    expires_in_days: int | None = Field(default=None, ge=1, le=3650,
                                        description="The key stops working after this many "
                                                    "days (default: never)")


class RotateBody(RequestBody):
    overlap_hours: float = Field(default=24.0, ge=0, le=720, description="How long the old "
                                 "key keeps working beside the new one")


def _shown(info: KeyInfo) -> dict[str, Any]:
    return {**asdict(info), "state": info.state()}


@router.post("/keys", status_code=201, responses=errors(*BODY))
def create_key(body: KeyBody, scope: CanWriteKeys, services: ServicesDep,
               request_id: RequestIdDep) -> dict[str, Any]:
    expires = timedelta(days=body.expires_in_days) if body.expires_in_days else None
    key, info = services.admin.create_key(actor(scope, request_id), body.user, name=body.name,
                                          kind=body.kind, scope=body.scope, expires_in=expires)
    return {"user": body.user, "key": key, **_shown(info)}


@router.get("/keys")
def list_keys(scope: CanReadKeys, services: ServicesDep) -> dict[str, Any]:
    """Every key: id, user, name, kind, scope, state, created, expires, last used; never the
    key or its hash."""
    return {"keys": [_shown(k) for k in services.keys.list_keys()]}


@router.post("/keys/{key_id}/rotate", status_code=201,
             responses=errors(*BODY, 404, when={404: "No active key of that id"}))
def rotate_key(key_id: KeyId, scope: CanWriteKeys, services: ServicesDep,
               request_id: RequestIdDep, body: RotateBody | None = None) -> dict[str, Any]:
    overlap = timedelta(hours=body.overlap_hours if body else 24.0)
    key, info = services.admin.rotate_key(actor(scope, request_id), key_id, overlap)
    return {"replaces": key_id, "key": key, **_shown(info)}


@router.post("/keys/{key_id}/revoke", responses=errors(404, when={404: "No unrevoked key of "
                                                                          "that id"}))
def revoke_key(key_id: KeyId, scope: CanWriteKeys, services: ServicesDep,
               request_id: RequestIdDep) -> dict[str, Any]:
    return _shown(services.admin.revoke_key(actor(scope, request_id), key_id))


@router.delete("/keys/{user}", responses=errors(422))
def revoke_keys(user: UserName, scope: CanWriteKeys, services: ServicesDep,
                request_id: RequestIdDep) -> dict[str, Any]:
    count = services.admin.revoke_keys(actor(scope, request_id), user)
    return {"user": user, "revoked": count}


class DeactivateBody(RequestBody):
    reason: str = Field(default="", max_length=2000)


@router.get("/users/deactivated")
def deactivated_users(scope: CanReadUsers, services: ServicesDep) -> dict[str, Any]:
    return {"deactivated": {u: asdict(e) for u, e in
                            services.directory.all_deactivated().items()}}


@router.post("/users/{user}/deactivate", responses=errors(*BODY))
def deactivate_user(user: UserName, scope: CanWriteUsers, services: ServicesDep,
                    request_id: RequestIdDep, body: DeactivateBody | None = None
                    ) -> dict[str, Any]:
    """The user is refused from their next request on, whatever key or token they hold."""
    entry = services.admin.deactivate_user(actor(scope, request_id), user,
                                           body.reason if body else "")
    return {"user": user, "deactivated": asdict(entry)}


@router.post("/users/{user}/activate", responses=errors(404, when={
    404: "The user is not deactivated"}))
def activate_user(user: UserName, scope: CanWriteUsers, services: ServicesDep,
                  request_id: RequestIdDep) -> dict[str, Any]:
    services.admin.activate_user(actor(scope, request_id), user)
    return {"user": user, "deactivated": None}


@router.get("/audit/verify")
def verify_audit(scope: CanReadAudit, services: ServicesDep) -> dict[str, Any]:
    result = services.audit.verify()
    return {"records": result.records, "ok": result.ok, "problems": result.problems}
