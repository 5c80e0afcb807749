"""Users and groups provisioned by the organisation's directory over SCIM (api/routes/scim.py).

One state document (`provisioning`: data_dir/provisioning.json, or a row of the PostgreSQL
control plane), changed under its lock, so a change made by the identity provider through any
replica is in force at the next query everywhere. It holds the SCIM resources as the protocol
shows them (JSON, with their ids and meta), and for each the name Clearance knows it by:

    {"users":  {ID: {"user": NAME, "resource": {...}}},
     "groups": {ID: {"principal": "group:NAME", "resource": {...}}}}

The memberships the groups' `members` make (a user or a group in a group) are what the policy
engine adds to the policy file's own (policies/enforcer.py, `provisioned`); a member id that no
longer names a user or group makes no membership. Deactivation is not kept here: it is the user
directory's (control/directory.py), so one document decides who is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from control.backend import PgStateBackend, open_document
from control.errors import StateUnreadable
from policies.policy_file import Membership


@dataclass(frozen=True)
class Provisioned:
    """The document's value: users and groups by SCIM id."""

    users: dict[str, dict[str, Any]]
    groups: dict[str, dict[str, Any]]


def _parse(raw: Any) -> Provisioned:
    if raw is None:
        return Provisioned({}, {})
    users, groups = raw["users"], raw["groups"]
    for entry in users.values():
        if not isinstance(entry["user"], str) or not isinstance(entry["resource"], dict):
            raise ValueError("a user entry needs a user name and a resource")
    for entry in groups.values():
        if not str(entry["principal"]).startswith("group:") or not isinstance(
                entry["resource"], dict):
            raise ValueError("a group entry needs a group principal and a resource")
    return Provisioned(dict(users), dict(groups))


def _dump(value: Provisioned) -> dict[str, Any]:
    return {"users": dict(sorted(value.users.items())),
            "groups": dict(sorted(value.groups.items()))}


def _unreadable(where: object, exc: Exception) -> StateUnreadable:
    return StateUnreadable(f"the provisioned users and groups {where} cannot be read ({exc}); "
                           "fix it or restore it from backup (memberships may be missing)")


@dataclass
class ProvisioningChange:
    """What a block of `ProvisionedDirectory.change` edits; `commit = False` writes nothing."""

    value: Provisioned
    commit: bool = True


class ProvisionedDirectory:
    """The provisioned users and groups, and the memberships they make in `tenant`."""

    def __init__(self, where: Path | PgStateBackend, tenant: str) -> None:
        self._document = open_document(where, "provisioning", parse=_parse, dump=_dump,
                                       unreadable=_unreadable,
                                       what="provisioned users and groups")
        self.where = self._document.where
        self.tenant = tenant

    def current(self) -> Provisioned:
        return self._document.current()[1]

    def stamp(self) -> object:
        """Changes with every change of the document, from any process or replica."""
        return self._document.current()[0]

    def memberships(self) -> tuple[object, tuple[Membership, ...], frozenset[str]]:
        """(a stamp that changes with every change, the memberships the groups make, the
        provisioned user names): what the policy engine merges into the policy."""
        stamp, value = self._document.current()
        return stamp, group_memberships(value, self.tenant), frozenset(
            entry["user"] for entry in value.users.values())

    @contextmanager
    def change(self, before_commit: Callable[[], None] | None = None
               ) -> Iterator[ProvisioningChange]:
        """Edit the document as it is now, under its lock (every process and replica); written
        if `commit` stays True, once `before_commit` (the audit record) has run."""
        with self._document.change(before_commit) as change:
            edit = ProvisioningChange(change.value)
            yield edit
            change.value, change.commit = edit.value, edit.commit


def group_memberships(value: Provisioned, tenant: str) -> tuple[Membership, ...]:
    """One membership per member of each group that names a provisioned user or group."""
    found: list[Membership] = []
    for entry in value.groups.values():
        for member in entry["resource"].get("members") or []:
            ref = str(member.get("value", ""))
            if ref in value.users:
                found.append(Membership(f"user:{value.users[ref]['user']}",
                                        entry["principal"], tenant))
            elif ref in value.groups:
                found.append(Membership(value.groups[ref]["principal"], entry["principal"],
                                        tenant))
    return tuple(dict.fromkeys(found))
