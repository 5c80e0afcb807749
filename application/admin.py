"""Every admin action, written once: validate, change through the control plane, audit.

Each method of `AdminActions` is one action of ACTIONS. It writes exactly one audit record
naming the caller (`Actor`), from the HTTP API and from the CLI alike; a change to a state file
is audited before it takes effect (the record is written once the new file is complete, and if
the record cannot be written the change is not made). tests/test_admin_audit.py walks the admin
routes and the CLI commands, so an action added without its record fails there.
"""

from __future__ import annotations

import functools
import getpass
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from application.build_jobs import JobRunner
from application.errors import AdminError, Conflict, Invalid, NotFound
from control.acl_overrides import AclOverrides
from control.audit import AuditStore, admin_record
from control.directory import Deactivation, Directory
from control.jobs import Job
from control.keys import KeyInfo, KeyScope, KeyStore
from control.keys import Kind as KeyKind
from control.pause import PauseSwitch, Target
from control.quarantine import Kind, Quarantine, QuarantineEntry
from ingest.jobs import BuildRunning
from policies.acl_rules import AclSource
from policies.enforcer import PolicyEngine
from policies.policy_file import Membership, PolicyError, Rule, parse_policy
from retrieval.errors import StoreError
from retrieval.versions import VersionCatalog

F = TypeVar("F", bound=Callable[..., Any])
# The audit action of each admin action (filled in by @_action).
ACTIONS: dict[str, str] = {}  # method name → audit action


def _action(action: str) -> Callable[[F], F]:
    """Mark a method as the admin action `action`: a refusal (AdminError) is recorded too, with
    outcome "refused" and the reason, so every call leaves exactly one record."""

    def wrap(method: F) -> F:
        @functools.wraps(method)
        def run(self: AdminActions, actor: Actor, *args: Any, **kwargs: Any) -> Any:
            try:
                return method(self, actor, *args, **kwargs)
            except AdminError as exc:
                self._record(actor, action, outcome="refused", reason=str(exc))()
                raise

        ACTIONS[method.__name__] = action
        return run  # type: ignore[return-value]

    return wrap


@dataclass(frozen=True)
class Actor:
    """Who asks: `user:NAME` through the API, `cli:LOGIN` from the CLI; the request id, if any."""

    caller: str
    request_id: str | None = None

    @staticmethod
    def cli() -> Actor:
        return Actor(f"cli:{getpass.getuser()}")


class AdminActions:
    """The admin use cases over one deployment's control plane and index catalog."""

    def __init__(
        self,
        *,
        audit: AuditStore,
        keys: KeyStore,
        policy: PolicyEngine,
        overrides: AclOverrides,
        quarantine: Quarantine,
        pause: PauseSwitch,
        catalog: Callable[[], VersionCatalog],
        sources: Callable[[], Sequence[AclSource]],
        jobs: Callable[[], JobRunner],
        directory: Directory,
    ) -> None:
        self.audit = audit
        self.keys = keys
        self.policy = policy
        self.overrides = overrides
        self.quarantine = quarantine
        self.pause_switch = pause
        self._catalog = catalog
        self._sources = sources
        self._jobs = jobs
        self.directory = directory

    def _record(self, actor: Actor, action: str, **details: Any) -> Callable[[], None]:
        def write() -> None:
            self.audit.append(admin_record(action, caller=actor.caller,
                                           request_id=actor.request_id,
                                           policy_version=self.policy.version, **details))
        return write

    def _known_source(self, name: str) -> None:
        if name not in {s.name for s in self._sources()}:
            raise NotFound(f"no source named {name!r}; the config declares "
                           f"{', '.join(sorted(s.name for s in self._sources())) or 'none'}")

    def _known_document(self, doc_id: str) -> None:
        if not self._catalog().has_document(doc_id):
            raise NotFound(f"{doc_id} is in no index version; document ids are SOURCE:PATH, "
                           "as `clearance acl show` and search results print them")

    # Index

    @_action("index.reindex")
    def reindex(self, actor: Actor, source: str | None = None) -> Job:
        """Start a re-index job (of one source, or all); Conflict if a build is running."""
        if source is not None:
            self._known_source(source)
        try:
            job = self._jobs().start(source)
        except BuildRunning as exc:
            raise Conflict(str(exc)) from exc
        self._record(actor, "index.reindex", source=source, job_id=job.id)()
        return job

    def record_build(self, actor: Actor, source: str | None, version_id: str | None,
                     **report: Any) -> None:
        """The record of a build run in this process (`clearance ingest`), once it is done or
        has failed (`outcome="failed"` and the reason in `report`)."""
        self._record(actor, "index.reindex", source=source, job_id=None, version=version_id,
                     **report)()

    @_action("index.rollback")
    def rollback(self, actor: Actor, to: str | None = None) -> tuple[str | None, str]:
        """Switch the served version; (before, now). NotFound for an unknown `to`, Conflict
        when there is no earlier version."""
        catalog = self._catalog()
        before = catalog.current()
        try:
            now = catalog.rollback(to)
        except StoreError as exc:
            raise (NotFound if to else Conflict)(str(exc)) from None
        self._record(actor, "index.rollback", before=before, to=now)()
        return before, now

    # API keys

    @_action("keys.create")
    def create_key(self, actor: Actor, user: str, *, name: str = "default",
                   kind: KeyKind = "personal", scope: KeyScope = "admin",
                   expires_in: timedelta | None = None) -> tuple[str, KeyInfo]:
        """A new key: (the plaintext, shown once; what may be shown of it). Invalid for a bad
        user, name or lifetime."""
        expires = None if expires_in is None else (datetime.now(UTC) + expires_in).isoformat(
            timespec="seconds")
        try:
            return self.keys.issue(user, before_commit=self._record(
                actor, "keys.create", user=user, name=name, kind=kind, scope=scope,
                expires_at=expires), name=name, kind=kind, scope=scope, expires_in=expires_in)
        except ValueError as exc:
            raise Invalid(str(exc)) from None

    @_action("keys.rotate")
    def rotate_key(self, actor: Actor, key_id: str, overlap: timedelta) -> tuple[str, KeyInfo]:
        """A new key in place of `key_id`, the old one working for `overlap` more; (the new
        plaintext key, its info). NotFound for a key that is not active."""
        old = next((k for k in self.keys.list_keys() if k.id == key_id), None)
        if old is None or old.state() != "active":
            raise NotFound(f"no active key {key_id!r}; `clearance keys list` shows the ids")
        details = {"key_id": key_id, "user": old.user, "overlap_s": overlap.total_seconds()}
        try:
            key, new, _ = self.keys.rotate(key_id, overlap, before_commit=self._record(
                actor, "keys.rotate", **details))
        except KeyError:
            raise NotFound(f"no active key {key_id!r}") from None
        except ValueError as exc:
            raise Invalid(str(exc)) from None
        return key, new

    @_action("keys.revoke")
    def revoke_key(self, actor: Actor, key_id: str) -> KeyInfo:
        """Revoke one key by id; NotFound if no such key is unrevoked."""
        revoked = self.keys.revoke_id(key_id, before_commit=self._record(
            actor, "keys.revoke", key_id=key_id))
        if revoked is None:
            raise NotFound(f"no unrevoked key {key_id!r}; `clearance keys list` shows the ids")
        return revoked

    @_action("keys.revoke")
    def revoke_keys(self, actor: Actor, user: str) -> int:
        """Revoke every active key of `user`; how many were (0 is recorded too)."""
        try:
            count = self.keys.revoke(user)
        except ValueError as exc:
            raise Invalid(str(exc)) from None
        self._record(actor, "keys.revoke", user=user, revoked=count)()
        return count

    # Document ACL overrides

    @_action("acl.set")
    def set_acl(self, actor: Actor, doc_id: str, allow: Sequence[str]) -> list[str]:
        self._known_document(doc_id)
        try:
            acl = self.overrides.set(doc_id, allow, before_commit=self._record(
                actor, "acl.set", doc_id=doc_id, allow=list(allow)))
        except ValueError as exc:
            raise Invalid(f"allow: {exc}") from None
        return list(acl)

    @_action("acl.clear")
    def clear_acl(self, actor: Actor, doc_id: str) -> None:
        """NotFound if the document has no override (nothing changes, nothing is recorded)."""
        if not self.overrides.clear(doc_id, before_commit=self._record(actor, "acl.clear",
                                                                       doc_id=doc_id)):
            raise NotFound(f"{doc_id} has no ACL override")

    # Quarantine

    @_action("quarantine.add")
    def add_quarantine(self, actor: Actor, kind: Kind, target: str, reason: str
                       ) -> QuarantineEntry:
        if kind == "source":
            self._known_source(target)
        else:
            self._known_document(target)
        return self.quarantine.add(kind, target, by=actor.caller, reason=reason,
                                   before_commit=self._record(actor, "quarantine.add", kind=kind,
                                                              target=target, reason=reason))

    @_action("quarantine.release")
    def release_quarantine(self, actor: Actor, kind: Kind, target: str) -> QuarantineEntry:
        entry = self.quarantine.release(kind, target, before_commit=self._record(
            actor, "quarantine.release", kind=kind, target=target))
        if entry is None:
            raise NotFound(f"{kind} {target} is not quarantined")
        return entry

    # Pause

    @_action("pause")
    def pause(self, actor: Actor, target: Target, reason: str) -> None:
        self.pause_switch.pause(target, by=actor.caller, reason=reason,
                                before_commit=self._record(actor, "pause", target=target,
                                                           reason=reason))

    @_action("resume")
    def resume(self, actor: Actor, target: Target) -> None:
        """Conflict if it is not paused (nothing changes, nothing is recorded)."""
        if self.pause_switch.resume(target, before_commit=self._record(actor, "resume",
                                                                       target=target)) is None:
            raise Conflict(f"{target} is not paused")

    # Users

    @_action("users.deactivate")
    def deactivate_user(self, actor: Actor, user: str, reason: str) -> Deactivation:
        """Refuse `user` from their next request on, whatever key or token they hold."""
        try:
            return self.directory.deactivate(user, by=actor.caller, reason=reason,
                                             before_commit=self._record(
                                                 actor, "users.deactivate", user=user,
                                                 reason=reason))
        except ValueError as exc:
            raise Invalid(str(exc)) from None

    @_action("users.activate")
    def activate_user(self, actor: Actor, user: str) -> Deactivation:
        """Lift a deactivation; NotFound if the user is not deactivated."""
        entry = self.directory.activate(user, before_commit=self._record(
            actor, "users.activate", user=user))
        if entry is None:
            raise NotFound(f"user:{user} is not deactivated")
        return entry

    # Policy

    @_action("policy.change")
    def change_policy(self, actor: Actor, add: Sequence[str] = (), remove: Sequence[str] = ()
                      ) -> tuple[int, int]:
        """Add and remove policy lines (the policy file's format); (added, removed). Invalid for
        a line that does not parse, Conflict for a change the policy cannot take."""
        add_items, remove_items = policy_lines(add, "add"), policy_lines(remove, "remove")
        before = self.policy.version
        try:
            added, removed = self.policy.change(add=add_items, remove=remove_items)
        except PolicyError as exc:
            raise Conflict(str(exc)) from None
        self._record(actor, "policy.change", add=[i.line() for i in add_items],
                     remove=[i.line() for i in remove_items], policy_before=before)()
        return added, removed


def record_database_change(audit: AuditStore, actor: Actor, action: str, **details: Any
                           ) -> None:
    """The record of `clearance db migrate` or `db import` (actions on the database itself,
    made before a policy may be in it, so without a policy version)."""
    audit.append(admin_record(action, caller=actor.caller, request_id=actor.request_id,
                              **details))


def policy_lines(lines: Sequence[str], field: str) -> list[Membership | Rule]:
    """One membership or rule per line; Invalid names the first line that is not one."""
    items: list[Membership | Rule] = []
    for i, line in enumerate(lines):
        try:
            policy = parse_policy(line, f"{field}[{i}]")
        except PolicyError as exc:
            raise Invalid(str(exc)) from None
        parsed: list[Membership | Rule] = [*policy.memberships, *policy.rules]
        if len(parsed) != 1:
            raise Invalid(f"{field}[{i}]: one g or p line expected")
        items += parsed
    return items
