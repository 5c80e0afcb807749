"""`clearance record` and `GET /v1/admin/record`: the integration record of this deployment.

Made from the live config, the policy in force and the current index version, for whoever must
sign the integration off: each source (where it is read from, its owner and tenant, how many
documents the index holds of it and when it was last ingested), who holds each admin action
(decided by Casbin over every user the policy names), what leaves the boundary (the LLM and
what is redacted before anything is sent to it, identity providers, a Qdrant server, the
database), where the audit log is, and who may pause answering.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from application.settings import Settings
from application.source_facts import source_facts
from control.audit import AuditLog, AuditStore
from control.postgres import redacted
from policies.enforcer import PolicyEngine
from retrieval.versions import VersionCatalog

# Every admin permission a route requires (tests/test_record.py checks against the routes).
ADMIN_PERMISSIONS: dict[tuple[str, str], str] = {
    ("index", "reindex"): "start a re-index; see re-index jobs",
    ("index", "read"): "list index versions",
    ("index", "rollback"): "roll the index back",
    ("keys", "read"): "list API keys",
    ("keys", "write"): "issue, rotate and revoke API keys",
    ("acl", "write"): "set and clear per-document ACLs",
    ("quarantine", "read"): "list quarantined documents and sources",
    ("quarantine", "write"): "quarantine and release",
    ("answering", "pause"): "pause and resume generation or the service",
    ("users", "read"): "list deactivated users",
    ("users", "write"): "deactivate and activate users",
    ("policy", "read"): "read the policy; explain access",
    ("policy", "write"): "change the policy",
    ("audit", "read"): "verify the audit log; read the report and this record",
}
PAUSE = ("answering", "pause")


def policy_users(policy: PolicyEngine) -> list[str]:
    """Every user the policy names, in a membership or a rule of their own (without `user:`)."""
    names = {m.member for m in policy.policy.memberships} | {
        r.subject for r in policy.policy.rules}
    return sorted(n.removeprefix("user:") for n in names if n.startswith("user:"))


def _holders(policy: PolicyEngine, users: list[str], permission: tuple[str, str]) -> list[str]:
    return [f"user:{u}" for u in users if policy.allows(u, *permission)]


def _outbound(settings: Settings) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    llm, redaction = settings.llm, settings.redaction
    kinds = [*redaction.kinds, *(c.name for c in redaction.custom)] if redaction.enabled else []
    if llm.provider == "openai":
        out.append({"what": "LLM (OpenAI-compatible chat completions)",
                    "endpoint": llm.base_url, "model": llm.model,
                    "sends": "the question, earlier user turns, and the permitted chunks "
                             "quoted as sources; personal data redacted first: "
                             f"{', '.join(kinds) or 'nothing (redaction is off)'}"})
    for issuer in settings.oidc.issuers:
        out.append({"what": "identity provider (OIDC)", "endpoint": issuer.issuer,
                    "model": None, "sends": "requests for its discovery document and keys "
                                            "(no user data)"})
    if settings.qdrant_url:
        out.append({"what": "Qdrant server", "endpoint": settings.qdrant_url, "model": None,
                    "sends": "every chunk: text, vectors and payload (ACLs included)"})
    if settings.database_url:
        out.append({"what": "PostgreSQL control plane",
                    "endpoint": redacted(settings.database_url.get_secret_value()),
                    "model": None, "sends": "key hashes, the policy, ACL overrides, "
                                            "quarantine, pause, jobs, ratings, the audit log"})
    return out


def _shown(path: Path, settings: Settings) -> str:
    """A path relative to the config file's directory when it is under it."""
    try:
        return str(path.relative_to(settings.config_path.parent))
    except ValueError:
        return str(path)


def make_record(*, settings: Settings, policy: PolicyEngine, catalog: VersionCatalog,
                audit: AuditStore) -> dict[str, Any]:
    """The integration record as JSON-able data (see the module docstring)."""
    version, facts = source_facts(catalog)
    users = policy_users(policy)
    sources = []
    for s in settings.sources:
        fact = facts.get(s.name)
        sources.append({
            "name": s.name, "path": _shown(s.path, settings), "owner": s.owner, "tenant": s.tenant,
            "acl": [{"glob": r.glob, "allow": list(r.allow)} for r in s.acl],
            "documents": fact.documents if fact else 0,
            "last_ingested": fact.last_ingested if fact else None,
            "newest_modified": fact.newest_modified if fact else None,
        })
    redaction = settings.redaction
    return {
        "config": str(settings.config_path),
        "index_version": version,
        "policy_version": policy.version,
        "sources": sources,
        "admin": [{"resource": r, "action": a, "what": what,
                   "holders": _holders(policy, users, (r, a))}
                  for (r, a), what in ADMIN_PERMISSIONS.items()],
        "roles": [rule.line() for rule in policy.policy.rules],
        "may_pause": _holders(policy, users, PAUSE),
        "outbound": _outbound(settings),
        "answers": "generated by the LLM above" if settings.llm.provider == "openai"
                   else "extractive: no LLM is configured, nothing is sent out to answer",
        "redaction": {"enabled": redaction.enabled, "kinds": list(redaction.kinds),
                      "custom": [c.name for c in redaction.custom],
                      "applies_to": "everything sent to the LLM, queries and comments "
                                    "written to the audit log"},
        "audit": {"log": _shown(Path(audit.describe()), settings) if isinstance(
                      audit, AuditLog) else audit.describe(),
                  "key": _shown(settings.audit_key, settings)},
    }
