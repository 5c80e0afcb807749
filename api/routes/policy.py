"""Admin routes for the policy: read it, change it line by line, explain a decision."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import Field

from api.deps import RequestIdDep, ServicesDep, actor, require
from api.openapi import ADMIN, BODY, errors
from api.schemas import RequestBody
from policies.principals import normalize
from retrieval.explain import explain_read
from retrieval.scope import Scope

router = APIRouter(prefix="/v1/admin/policy", responses=errors(*ADMIN))

CanReadPolicy = Annotated[Scope, Depends(require("policy", "read"))]
CanWritePolicy = Annotated[Scope, Depends(require("policy", "write"))]
# A user name as it follows "user:" in a principal; a document id as "<source>:<path>".
ExplainUser = Annotated[str, Query(min_length=1, max_length=200, pattern=r"^[^\s,]+$",
                                   description="A user name, without the user: prefix")]
ExplainDoc = Annotated[str, Query(min_length=1, max_length=2000,
                                  description="A document id, <source>:<path>")]


class PolicyChange(RequestBody):
    """Lines in the policy file's own format, e.g. "g, user:dave, group:staff"."""

    add: list[str] = Field(default_factory=list, max_length=10_000)
    remove: list[str] = Field(default_factory=list, max_length=10_000)


@router.get("")
def read_policy(scope: CanReadPolicy, services: ServicesDep) -> dict[str, Any]:
    policy = services.policy.policy
    return {
        "version": services.policy.version,
        "problem": services.policy.last_error,
        "memberships": [m.line() for m in policy.memberships],
        "rules": [r.line() for r in policy.rules],
    }


@router.post("/changes", responses=errors(*BODY, 409, when={
    409: "The change cannot be applied to the policy as it is"}))
def change_policy(body: PolicyChange, scope: CanWritePolicy, services: ServicesDep,
                  request_id: RequestIdDep) -> dict[str, Any]:
    added, removed = services.admin.change_policy(actor(scope, request_id), body.add,
                                                   body.remove)
    return {"added": added, "removed": removed, "version": services.policy.version}


@router.get("/explain", responses=errors(422, 503))
def explain(user: ExplainUser, doc: ExplainDoc, scope: CanReadPolicy,
            services: ServicesDep) -> dict[str, Any]:
    return asdict(explain_read(services.policy, services.access, services.catalog,
                               normalize(user), normalize(doc)))
