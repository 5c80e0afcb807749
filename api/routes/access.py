"""Admin routes that change who reads a document now: ACL overrides and quarantine."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from pydantic import AfterValidator, Field

from api.deps import RequestIdDep, ServicesDep, actor, require
from api.openapi import ADMIN, BODY, errors
from api.schemas import RequestBody
from policies.principals import normalize
from retrieval.scope import Scope

router = APIRouter(prefix="/v1/admin", responses=errors(*ADMIN))

CanWriteAcl = Annotated[Scope, Depends(require("acl", "write"))]
CanReadQuarantine = Annotated[Scope, Depends(require("quarantine", "read"))]
CanWriteQuarantine = Annotated[Scope, Depends(require("quarantine", "write"))]


class AclBody(RequestBody):
    allow: list[str] = Field(min_length=1, max_length=1000)


class QuarantineBody(RequestBody):
    kind: Literal["document", "source"]
    target: Annotated[str, AfterValidator(normalize)] = Field(min_length=1, max_length=2000)
    reason: str = Field(default="", max_length=2000)


@router.put("/documents/{doc_id:path}/acl", responses=errors(*BODY, 404, 503, when={
    404: "The document is in no index version"}))
def set_acl(doc_id: str, body: AclBody, scope: CanWriteAcl, services: ServicesDep,
            request_id: RequestIdDep) -> dict[str, Any]:
    doc_id = normalize(doc_id)
    services.admin.set_acl(actor(scope, request_id), doc_id, body.allow)
    return {"doc_id": doc_id, "allow": body.allow}


@router.delete("/documents/{doc_id:path}/acl", responses=errors(404, when={
    404: "The document has no ACL override"}))
def clear_acl(doc_id: str, scope: CanWriteAcl, services: ServicesDep,
              request_id: RequestIdDep) -> dict[str, Any]:
    doc_id = normalize(doc_id)
    services.admin.clear_acl(actor(scope, request_id), doc_id)
    return {"doc_id": doc_id, "allow": None}


@router.get("/quarantine")
def list_quarantine(scope: CanReadQuarantine, services: ServicesDep) -> dict[str, Any]:
    return {"entries": [asdict(e) for e in services.access.quarantine.entries()]}


@router.post("/quarantine", responses=errors(*BODY, 404, 503, when={
    404: "No such source, or the document is in no index version"}))
def quarantine(body: QuarantineBody, scope: CanWriteQuarantine, services: ServicesDep,
               request_id: RequestIdDep) -> dict[str, Any]:
    entry = services.admin.add_quarantine(actor(scope, request_id), body.kind, body.target,
                                          body.reason)
    return asdict(entry)


@router.post("/quarantine/release", responses=errors(*BODY, 404, when={
    404: "The document or source is not quarantined"}))
def release(body: QuarantineBody, scope: CanWriteQuarantine, services: ServicesDep,
            request_id: RequestIdDep) -> dict[str, Any]:
    entry = services.admin.release_quarantine(actor(scope, request_id), body.kind, body.target)
    return {"released": asdict(entry)}
