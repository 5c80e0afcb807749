"""Admin routes that change who reads a document now: ACL overrides and quarantine."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException
from pydantic import AfterValidator, Field

from api.deps import RequestIdDep, ServicesDep, require
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


def _known_document(services: ServicesDep, doc_id: str) -> None:
    if not services.catalog.has_document(doc_id):
        raise HTTPException(status_code=404, detail=f"{doc_id} is in no index version")


@router.put("/documents/{doc_id:path}/acl", responses=errors(*BODY, 404, 503, when={
    404: "The document is in no index version"}))
def set_acl(doc_id: str, body: AclBody, scope: CanWriteAcl, services: ServicesDep,
            request_id: RequestIdDep) -> dict[str, Any]:
    doc_id = normalize(doc_id)
    _known_document(services, doc_id)
    try:
        services.access.overrides.set(doc_id, body.allow)
    except ValueError as exc:
        raise HTTPException(status_code=422, detail=f"invalid request: allow: {exc}") from None
    services.audit_admin("acl.set", caller=f"user:{scope.user}", request_id=request_id,
                         doc_id=doc_id, allow=body.allow)
    return {"doc_id": doc_id, "allow": body.allow}


@router.delete("/documents/{doc_id:path}/acl", responses=errors(404, when={
    404: "The document has no ACL override"}))
def clear_acl(doc_id: str, scope: CanWriteAcl, services: ServicesDep,
              request_id: RequestIdDep) -> dict[str, Any]:
    doc_id = normalize(doc_id)
    if not services.access.overrides.clear(doc_id):
        raise HTTPException(status_code=404, detail=f"{doc_id} has no ACL override")
    services.audit_admin("acl.clear", caller=f"user:{scope.user}", request_id=request_id,
                         doc_id=doc_id)
    return {"doc_id": doc_id, "allow": None}


@router.get("/quarantine")
def list_quarantine(scope: CanReadQuarantine, services: ServicesDep) -> dict[str, Any]:
    return {"entries": [asdict(e) for e in services.access.quarantine.entries()]}


@router.post("/quarantine", responses=errors(*BODY, 404, 503, when={
    404: "No such source, or the document is in no index version"}))
def quarantine(body: QuarantineBody, scope: CanWriteQuarantine, services: ServicesDep,
               request_id: RequestIdDep) -> dict[str, Any]:
    if body.kind == "source" and body.target not in {s.name for s in services.access.sources()}:
        raise HTTPException(status_code=404, detail=f"no source named {body.target!r}")
    if body.kind == "document":
        _known_document(services, body.target)
    entry = services.access.quarantine.add(body.kind, body.target, by=f"user:{scope.user}",
                                           reason=body.reason)
    services.audit_admin("quarantine.add", caller=f"user:{scope.user}", request_id=request_id,
                         kind=body.kind, target=body.target, reason=body.reason)
    return asdict(entry)


@router.post("/quarantine/release", responses=errors(*BODY, 404, when={
    404: "The document or source is not quarantined"}))
def release(body: QuarantineBody, scope: CanWriteQuarantine, services: ServicesDep,
            request_id: RequestIdDep) -> dict[str, Any]:
    entry = services.access.quarantine.release(body.kind, body.target)
    if entry is None:
        raise HTTPException(status_code=404, detail=f"{body.kind} {body.target} is not "
                            "quarantined")
    services.audit_admin("quarantine.release", caller=f"user:{scope.user}",
                         request_id=request_id, kind=body.kind, target=body.target)
    return {"released": asdict(entry)}
