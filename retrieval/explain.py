"""Why a user may or may not read a document: the decision and the rules that made it.

The same inputs as a search (the policy's view of the caller, the document's ACL now, read
denials, quarantine), evaluated for one document of the current index version, with each
deciding rule written out: the ACL rule or override, the membership lines that give the caller
a matching principal, the deny rule, the quarantine entry.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from policies.acl_rules import matching_rule
from policies.enforcer import PolicyEngine
from policies.policy_file import document_pattern_matches
from policies.principals import DEFAULT_TENANT, split_token
from retrieval.access import DocumentAccess
from retrieval.versions import VersionCatalog


@dataclass
class Explanation:
    user: str
    doc_id: str
    allowed: bool = False
    reasons: list[str] = field(default_factory=list)


def explain_read(
    policy: PolicyEngine, access: DocumentAccess, catalog: VersionCatalog, user: str, doc_id: str
) -> Explanation:
    out = Explanation(user=f"user:{user}", doc_id=doc_id)
    version = catalog.current()
    entry = catalog.documents(version).get(doc_id) if version else None
    if entry is None:
        out.reasons.append(f"denied: {doc_id} is not in the current index version {version}")
        return out
    sources = {s.name: s for s in access.sources()}
    source = sources.get(entry.source)
    tenant = source.tenant if source else DEFAULT_TENANT
    acl = access.acl_now(entry, doc_id)
    _, overrides = access.overrides.current()
    if doc_id in overrides:
        origin = f"override (clearance acl set): allow {', '.join(overrides[doc_id])}"
    elif source is None:
        origin = f"source {entry.source!r} is no longer declared"
    else:
        rule = matching_rule(source.acl, entry.uri)
        origin = ("no acl rule matches" if rule is None else
                  f"source {source.name!r} acl rule {rule + 1}: glob {source.acl[rule].glob!r} "
                  f"allow {', '.join(source.acl[rule].allow)}")
    if entry.target is not None:
        origin += (f"; a symbolic link to {entry.source}:{entry.target}, so only what that "
                   "document's ACL also allows")
    out.reasons.append(f"document ACL (tenant {tenant}): {' '.join(acl) or '(nobody)'} "
                       f"from {origin}")

    subject = policy.subject(user)
    matched = sorted(set(acl) & subject.tokens)
    if not matched:
        out.reasons.append(f"denied: user:{user} holds none of these "
                           f"(tenants {', '.join(subject.by_tenant)})")
        return out
    for tok in matched:
        t, principal = split_token(tok)
        path = policy.membership_path(user, principal, t)
        chain = "; ".join(m.line() for m in path) or "the user's own principal"
        out.reasons.append(f"allowed by ACL: holds {tok} via {chain}")
    for denial in subject.denials:
        if document_pattern_matches(denial.pattern, doc_id, entry.source):
            out.reasons.append(f"denied by policy rule: {denial.rule.line()}")
            return out
    for q in access.quarantine.entries():
        if (q.kind, q.target) in (("document", doc_id), ("source", entry.source)):
            out.reasons.append(f"denied: {q.kind} {q.target} quarantined by {q.by} at {q.at} "
                               f"({q.reason})")
            return out
    out.allowed = True
    return out
