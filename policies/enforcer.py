"""Who a caller is, in principals per tenant, what they are denied, and which admin actions they
may take: the only module that runs Casbin.

The policy text (the policy file, or its row in the PostgreSQL control plane: one state document,
control/backend.py) is parsed by policies/policy_file.py (our format, checked line by line) and
handed to a Casbin enforcer built from the model file. Both are re-read when either changes; a
policy that stops loading leaves the last good one in force and logs why.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import casbin

from policies.policy_file import (
    READ,
    Membership,
    Policy,
    PolicyError,
    Rule,
    edit_policy_text,
    is_document_object,
    parse_policy,
)
from policies.principals import (
    DEFAULT_TENANT,
    is_principal,
    is_tenant,
    normalize,
    split_token,
    token,
)

__all__ = ["Denial", "PolicyEngine", "PolicyError", "Subject", "is_principal"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Denial:
    """A read deny that applies to a caller: `pattern` is "source:NAME" or "doc:ID" (may hold
    `*`), in `tenant` ("*": every tenant), decided by `rule`."""

    tenant: str
    pattern: str
    rule: Rule


@dataclass(frozen=True)
class Subject:
    """A caller as the policy sees them: principals per tenant, tokens, and read denials."""

    user: str
    by_tenant: dict[str, frozenset[str]]
    tokens: frozenset[str]
    denials: tuple[Denial, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class _Loaded:
    enforcer: casbin.Enforcer
    policy: Policy
    version: str
    stamp: tuple[object, ...]
    users: frozenset[str] = frozenset()


class PolicyText(Protocol):
    """Where the policy text is kept: control/policy_store.policy_document (the policy file,
    or its row in the PostgreSQL control plane). `current()` is (a stamp that changes with
    every change, the text); `change()` edits the text under a lock shared by every process."""

    where: str

    def current(self) -> tuple[object, str]: ...

    def change(self, before_commit: Callable[[], None] | None = None
               ) -> AbstractContextManager[_TextChange]: ...


class _TextChange(Protocol):
    value: str
    commit: bool


class ProvisionedMemberships(Protocol):
    """Memberships kept outside the policy text: the groups the organisation's directory
    provisions over SCIM (control/provisioning.py). `memberships()` is (a stamp that changes
    with every change, the memberships, the user names provisioned); `stamp()` the stamp alone,
    read on every call."""

    def stamp(self) -> object: ...

    def memberships(self) -> tuple[object, tuple[Membership, ...], frozenset[str]]: ...


class _NothingProvisioned:
    def stamp(self) -> object:
        return None

    def memberships(self) -> tuple[object, tuple[Membership, ...], frozenset[str]]:
        return None, (), frozenset()


def _claimed_groups(claimed: Iterable[str]) -> list[tuple[str, str]]:
    """(tenant, principal) of each claimed token that names a group or a role; a user
    principal is never taken from a claim (identity/groups.py makes none)."""
    out = []
    for value in claimed:
        tenant, principal = split_token(normalize(value))
        if principal.startswith(("group:", "role:")) and is_principal(principal) \
                and is_tenant(tenant):
            out.append((tenant, principal))
        else:
            log.warning("a claimed group %r is not a group or role token: left out", value)
    return out


def _file_stamp(path: Path) -> tuple[int, ...]:
    st = path.stat()
    return (st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size)


class PolicyEngine:
    """Casbin over a model file and the policy text, reloaded when either changes.

    A policy file that stops parsing leaves the last good policy in force and logs why
    (`last_error` says so too); a policy that never loaded raises PolicyError, so nothing is
    served without one.
    """

    def __init__(self, model_path: Path, policy: PolicyText,
                 provisioned: ProvisionedMemberships | None = None) -> None:
        self._model = model_path
        self._document = policy
        self._provisioned = provisioned or _NothingProvisioned()
        self.where = self._document.where
        self._lock = threading.Lock()
        self.last_error: str | None = None
        self._loaded = self._load()

    def _stamp(self) -> tuple[object, ...]:
        """Changes with any change of the model file, the policy (control/backend.py) or the
        provisioned memberships."""
        stamp, _ = self._document.current()
        return (_file_stamp(self._model), stamp, self._provisioned.stamp())

    def _load(self) -> _Loaded:
        try:
            stamp, text = self._document.current()
            provisioned_stamp, provisioned, users = self._provisioned.memberships()
            stamp = (_file_stamp(self._model), stamp, provisioned_stamp)
            policy = parse_policy(text, self.where)
            if provisioned:
                policy = Policy(tuple(dict.fromkeys((*policy.memberships, *provisioned))),
                                policy.rules)
            enforcer = casbin.Enforcer(str(self._model))
            if policy.rules:
                enforcer.add_named_policies(
                    "p", [[r.subject, r.tenant, r.obj, r.action, r.effect] for r in policy.rules]
                )
            if policy.memberships:
                enforcer.add_named_grouping_policies(
                    "g", [[m.member, m.group, m.tenant] for m in policy.memberships]
                )
            digest = hashlib.sha256(self._model.read_bytes() + b"\0" + text.encode("utf-8"))
            for m in provisioned:
                digest.update(b"\0" + m.line().encode("utf-8"))
        except PolicyError:
            raise
        except Exception as exc:  # casbin raises bare Exceptions on bad files
            raise PolicyError(
                f"cannot load Casbin model {self._model} / policy {self.where}: {exc}"
            ) from exc
        return _Loaded(enforcer, policy, digest.hexdigest()[:16], stamp, users)

    def _current(self) -> _Loaded:
        """The loaded policy, reloaded first if the model or the policy changed since."""
        loaded = self._loaded
        try:
            changed = self._stamp() != loaded.stamp
        except (OSError, PolicyError) as exc:
            log.error("policy unreadable, keeping policy %s: %s", loaded.version, exc)
            return loaded
        if not changed:
            return loaded
        with self._lock:
            if self._loaded is not loaded:
                return self._loaded
            try:
                self._loaded = self._load()
                self.last_error = None
                log.info("policy reloaded: version %s", self._loaded.version)
            except PolicyError as exc:
                self.last_error = f"{exc}; the last good policy {loaded.version} stays in force"
                log.error("%s", self.last_error)
                # Do not try again until the policy changes again.
                try:
                    stamp = self._stamp()
                except (OSError, PolicyError):
                    stamp = loaded.stamp
                self._loaded = _Loaded(loaded.enforcer, loaded.policy, loaded.version, stamp,
                                       loaded.users)
        return self._loaded

    @property
    def version(self) -> str:
        """A short hash of the model and policy in force."""
        return self._current().version

    @property
    def policy(self) -> Policy:
        return self._current().policy

    def knows(self, user: str) -> bool:
        """Whether the policy names the user (a membership or a rule of theirs), or the
        organisation's directory provisioned them."""
        name = f"user:{normalize(user)}"
        loaded = self._current()
        policy = loaded.policy
        return (normalize(user) in loaded.users
                or any(m.member == name for m in policy.memberships)
                or any(r.subject == name for r in policy.rules))

    def tenants_of(self, user: str, claimed: Iterable[str] = ()) -> list[str]:
        """The tenants where the user has a membership (in the policy, or among the `claimed`
        tokens); the default tenant if none."""
        return self._tenants(self._current(), user, _claimed_groups(claimed))

    @staticmethod
    def _tenants(loaded: _Loaded, user: str, claimed: list[tuple[str, str]]) -> list[str]:
        subject = f"user:{normalize(user)}"
        tenants = {m.tenant for m in loaded.policy.memberships if m.member == subject}
        tenants.update(tenant for tenant, _ in claimed)
        return sorted(tenants) or [DEFAULT_TENANT]

    def subject(self, user: str, *, claimed: Iterable[str] = ()) -> Subject:
        """The user's principals in each of their tenants, their ACL tokens and read denials.

        `claimed`: ACL tokens of groups the caller's access token claims (identity/groups.py),
        held for this call only, as if `g, user:NAME, GROUP, TENANT` were in the policy: with
        every group and role the policy nests them in, and the denials on any of them.
        """
        loaded = self._current()
        name = f"user:{normalize(user)}"
        groups = _claimed_groups(claimed)
        extra: dict[str, set[str]] = {}
        for tenant, group in groups:
            extra.setdefault(tenant, set()).add(group)
        by_tenant: dict[str, frozenset[str]] = {}
        for tenant in self._tenants(loaded, user, groups):
            held = [name, *loaded.enforcer.get_implicit_roles_for_user(name, tenant)]
            for group in sorted(extra.get(tenant, ())):
                held += [group, *loaded.enforcer.get_implicit_roles_for_user(group, tenant)]
            by_tenant[tenant] = frozenset(held)
        tokens = frozenset(token(t, p) for t, ps in by_tenant.items() for p in ps)
        denials = tuple(
            Denial(rule.tenant, rule.obj, rule)
            for rule in loaded.policy.rules
            if rule.effect == "deny" and rule.action in (READ, "*")
            and (is_document_object(rule.obj) or rule.obj == "*")
            for tenant, principals in by_tenant.items()
            if rule.tenant in ("*", tenant) and rule.subject in principals
        )
        return Subject(name, by_tenant, tokens, tuple(dict.fromkeys(denials)))

    def principals_for(self, user: str) -> frozenset[str]:
        """The caller's ACL tokens: every principal they hold, in each of their tenants."""
        return self.subject(user).tokens

    def allows(self, user: str, obj: str, act: str) -> bool:
        """Whether the user may take action `act` on admin object `obj` (in any of their
        tenants; a deny in that tenant overrides)."""
        loaded = self._current()
        name = f"user:{normalize(user)}"
        return any(bool(loaded.enforcer.enforce(name, tenant, obj, act))
                   for tenant in self.tenants_of(user))

    def membership_path(self, user: str, principal: str, tenant: str) -> list[Membership]:
        """The membership lines that make the user hold `principal` in `tenant` (shortest)."""
        start = f"user:{normalize(user)}"
        links: dict[str, list[Membership]] = {}
        for m in self._current().policy.memberships:
            if m.tenant == tenant:
                links.setdefault(m.member, []).append(m)
        paths: dict[str, list[Membership]] = {start: []}
        queue = deque([start])
        while queue:
            node = queue.popleft()
            if node == principal:
                return paths[node]
            for m in links.get(node, []):
                if m.group not in paths:
                    paths[m.group] = [*paths[node], m]
                    queue.append(m.group)
        return []

    def change(
        self, *, add: list[Membership | Rule] | None = None,
        remove: list[Membership | Rule] | None = None,
    ) -> tuple[int, int]:
        """Add and remove lines (policy_file.edit_policy_text), under the policy's lock, so
        edits from any process or replica are never lost; in force on the next call."""
        with self._document.change() as change:
            change.value, added, removed = edit_policy_text(
                change.value, self.where, add=add or [], remove=remove or [])
            change.commit = bool(added or removed)
        self._current()
        return added, removed
