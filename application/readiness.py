"""Whether this process should be sent traffic (GET /readyz): each check, and why one fails.

Ready means: an index version is loaded and opens, a policy is in force, the audit log can be
appended to, the control-plane database answers (with `database_url`), and the LLM endpoint
answers (with `[llm]`). Messages name no path, address or key: /readyz shows them to anyone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from retrieval.errors import StoreError

if TYPE_CHECKING:
    from application.services import Services


@dataclass(frozen=True)
class Check:
    ok: bool
    detail: str


def readiness(services: Services) -> dict[str, Check]:
    """Every check by name: index, policy, audit_log, and control_plane and llm when used."""
    checks = {"index": _index(services), "policy": _policy(services),
              "audit_log": _audit(services)}
    if services.settings.database_url:
        from application.services import open_database

        problem = open_database(services.settings).problem()
        checks["control_plane"] = Check(problem is None, problem or "PostgreSQL answers")
    if services.llm is not None:
        problem = services.llm.problem()
        checks["llm"] = Check(problem is None, problem or "the endpoint answers")
    return checks


def _index(services: Services) -> Check:
    try:
        version = services.catalog.current()
    except StoreError as exc:
        return Check(False, f"the current index version cannot be read: {exc}")
    if version is None:
        return Check(False, "no index version has been built yet: run `clearance ingest`")
    problem = services.retriever.check_current()
    if problem is not None:
        return Check(False, problem)
    return Check(True, f"version {version} is loaded")


def _policy(services: Services) -> Check:
    # Loaded at start-up or the service would not have started; a bad edit since keeps the
    # last good policy in force (PolicyEngine), which is still a policy: ready, with the note.
    version = services.policy.version
    note = services.policy.last_error
    return Check(True, f"policy {version} is in force" + (f" ({note})" if note else ""))


def _audit(services: Services) -> Check:
    problem = services.audit_problem()
    return Check(problem is None, str(problem) if problem else "the audit log can be appended to")
