"""Admin routes for the policy: read it, change it line by line, explain a decision."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import Field

from api.deps import RequestIdDep, ServicesDep, require
from api.openapi import ADMIN, BODY, errors
from api.schemas import RequestBody
from policies.policy_file import Membership, PolicyError, Rule, parse_policy
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


def _parse_lines(lines: list[str], field: str) -> list[Membership | Rule]:
    items: list[Membership | Rule] = []
    for i, line in enumerate(lines):
        try:
            policy = parse_policy(line, f"{field}[{i}]")
        except PolicyError as exc:
            raise HTTPException(status_code=422, detail=f"invalid request: {exc}") from None
        parsed: list[Membership | Rule] = [*policy.memberships, *policy.rules]
        if len(parsed) != 1:
            raise HTTPException(status_code=422,
                                detail=f"invalid request: {field}[{i}]: one g or p line expected")
        items += parsed
    return items


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
    add, remove = _parse_lines(body.add, "add"), _parse_lines(body.remove, "remove")
    before = services.policy.version
    try:
        added, removed = services.policy.change(add=add, remove=remove)
    except PolicyError as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from None
    services.audit_admin("policy.change", caller=f"user:{scope.user}", request_id=request_id,
                         add=[i.line() for i in add], remove=[i.line() for i in remove],
                         policy_before=before)
    return {"added": added, "removed": removed, "version": services.policy.version}


@router.get("/explain", responses=errors(422, 503))
def explain(user: ExplainUser, doc: ExplainDoc, scope: CanReadPolicy,
            services: ServicesDep) -> dict[str, Any]:
    return asdict(explain_read(services.policy, services.access, services.catalog,
                               normalize(user), normalize(doc)))
