"""Per-document ACLs set by an operator (`clearance acl set`), which win over the config rules.

One JSON file ({doc_id: [principal, ...]}, a JsonStateFile), changed under its lock and re-read
when it changes, so a change made by the CLI in another process applies to the server's next
query. A file that cannot be read fails the queries (StateUnreadable) instead of falling back
to the rules: an override may be a revocation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from control.backend import PgStateBackend, open_document
from control.errors import StateUnreadable
from policies.principals import check_principals

Acl = tuple[str, ...]


def _parse(raw: Any) -> dict[str, Acl]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ValueError("not a JSON object")
    return {str(doc): tuple(_check_acl(acl)) for doc, acl in raw.items()}


def _unreadable(where: object, exc: Exception) -> StateUnreadable:
    return StateUnreadable(f"document ACL overrides {where} cannot be read ({exc}); fix or remove "
                           "the file (`clearance acl` rewrites it)")


def _check_acl(acl: object) -> list[str]:
    if not isinstance(acl, list) or not all(isinstance(p, str) for p in acl):
        raise ValueError(f"an ACL must be a list of principals, got {acl!r}")
    return check_principals(acl)


class AclOverrides:
    def __init__(self, where: Path | PgStateBackend) -> None:
        self._file = open_document(
            where, "acl_overrides", parse=_parse, unreadable=_unreadable,
            what="document ACL overrides",
            dump=lambda acls: {doc: list(acl) for doc, acl in sorted(acls.items())})
        self.where = self._file.where
        self.path = None if isinstance(where, PgStateBackend) else Path(where)  # the file

    def current(self) -> tuple[object, dict[str, Acl]]:
        """(a key that changes with the file, doc id → ACL)."""
        return self._file.current()

    def set(self, doc_id: str, acl: Sequence[str],
            before_commit: Callable[[], None] | None = None) -> Acl:
        """Make `doc_id` readable by exactly `acl`; ValueError (nothing written) for a bad one."""
        checked = tuple(_check_acl(list(acl)))
        with self._file.change(before_commit) as change:
            change.value[doc_id] = checked
        return checked

    def clear(self, doc_id: str, before_commit: Callable[[], None] | None = None) -> bool:
        """Remove a document's override (its config rule applies again); False if it had none
        (nothing is written and `before_commit` is not run)."""
        with self._file.change(before_commit) as change:
            change.commit = change.value.pop(doc_id, None) is not None
        return change.commit
