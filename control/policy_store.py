"""Where the policy text is kept: the policy file (`casbin_policy`), or a row of the PostgreSQL
control plane. policies/enforcer.PolicyEngine reads and edits it through this document."""

from __future__ import annotations

from pathlib import Path

from control.backend import PgStateBackend, open_document
from control.state_file import StateDocument
from policies.policy_file import PolicyError


def _policy_text(raw: object) -> str:
    if raw is None:
        raise ValueError("there is none (a missing file, or no policy in the database: "
                         "`clearance db import` copies the policy file there)")
    if not isinstance(raw, str):
        raise ValueError("it is not text")
    return raw


def _unreadable(where: object, exc: Exception) -> PolicyError:
    return PolicyError(f"policy {where} cannot be read: {exc}")


def policy_document(where: Path | PgStateBackend) -> StateDocument[str]:
    """The policy text in a file (its lock `.NAME.lock` beside it) or in the database."""
    return open_document(where, "policy", parse=_policy_text, dump=str, unreadable=_unreadable,
                         what="policy", text=True)
