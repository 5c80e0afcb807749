"""The caller's permission scope: who asks, which principals they hold, under which policy."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from policies.enforcer import PolicyEngine


@dataclass(frozen=True)
class Scope:
    """Every search takes one; there is no code path that searches without it."""

    user: str
    principals: frozenset[str]  # ACL tokens (policies/principals.py)
    policy_version: str
    # Read denials from the policy: "source:NAME" or "doc:ID" patterns, `*` for any characters.
    denied: tuple[str, ...] = ()
    # How the caller was named when not by a key of their own: "frontend:NAME" (a trusted
    # front-end's header) or "oidc:ISSUER" (an access token); on the audit record.
    via: str | None = None
    # ACL tokens of the groups the caller's access token claimed (identity/groups.py), held
    # for this request only; in `principals` with all they imply. On the audit record, so an
    # auditor can tell access that came from the token from access the policy gives.
    claimed: tuple[str, ...] = ()

    def can_read(self, acl: object) -> bool:
        """True only if the ACL is a non-empty list sharing a principal with the caller.

        A missing, empty or malformed ACL reads as nobody's (fail closed).
        """
        if not isinstance(acl, list | tuple) or not acl:
            return False
        return any(isinstance(p, str) and p in self.principals for p in acl)


def scope_for(policy: PolicyEngine, user: str, *, claimed: tuple[str, ...] = ()) -> Scope:
    """The scope of `user` under the policy in force now: principals, version and denials;
    with the groups their access token `claimed`, for this request, as if the policy held
    those memberships."""
    subject = policy.subject(user, claimed=claimed)
    return Scope(user=user, principals=subject.tokens, policy_version=policy.version,
                 denied=tuple(d.pattern for d in subject.denials), claimed=claimed)
