"""Who a caller is, in principals, and what admin actions it may take: the only Casbin importer."""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from dataclasses import dataclass
from pathlib import Path

import casbin

log = logging.getLogger(__name__)

PRINCIPAL_RE = re.compile(r"^(user|group|role):[^\s,]+$")


class PolicyError(Exception):
    """The Casbin model or policy file cannot be loaded; the message names the file."""


def is_principal(value: str) -> bool:
    """True for "user:<name>", "group:<name>" or "role:<name>" with no spaces or commas."""
    return bool(PRINCIPAL_RE.match(value))


@dataclass(frozen=True)
class _Loaded:
    enforcer: casbin.Enforcer
    version: str
    stamp: tuple[int, int, int, int]


def _stamp(model: Path, policy: Path) -> tuple[int, int, int, int]:
    m, p = model.stat(), policy.stat()
    return (m.st_mtime_ns, m.st_size, p.st_mtime_ns, p.st_size)


class PolicyEngine:
    """Casbin over a model file and a policy file, reloaded when either file changes.

    A policy file that stops parsing leaves the last good policy in force and logs why;
    a policy that never loaded raises PolicyError, so nothing is served without one.
    """

    def __init__(self, model_path: Path, policy_path: Path) -> None:
        self._model = model_path
        self._policy = policy_path
        self._lock = threading.Lock()
        self._loaded = self._load()

    def _load(self) -> _Loaded:
        try:
            stamp = _stamp(self._model, self._policy)
            enforcer = casbin.Enforcer(str(self._model), str(self._policy))
            digest = hashlib.sha256(self._model.read_bytes() + b"\0" + self._policy.read_bytes())
        except Exception as exc:  # casbin raises bare Exceptions on bad files
            raise PolicyError(
                f"cannot load Casbin model {self._model} / policy {self._policy}: {exc}"
            ) from exc
        names = [name for rule in enforcer.get_grouping_policy() for name in rule[:2]]
        names += [rule[0] for rule in enforcer.get_policy()]
        bad = sorted({name for name in names if not is_principal(name)})
        if bad:
            raise PolicyError(
                f"{self._policy}: {', '.join(map(repr, bad))} not principals; "
                "write user:<name>, group:<name> or role:<name>"
            )
        return _Loaded(enforcer, digest.hexdigest()[:16], stamp)

    def _current(self) -> _Loaded:
        """The loaded policy, reloaded first if a file changed since it was read."""
        loaded = self._loaded
        try:
            changed = _stamp(self._model, self._policy) != loaded.stamp
        except OSError as exc:
            log.error("policy files unreadable, keeping policy %s: %s", loaded.version, exc)
            return loaded
        if not changed:
            return loaded
        with self._lock:
            if self._loaded is not loaded:
                return self._loaded
            try:
                self._loaded = self._load()
                log.info("policy reloaded: version %s", self._loaded.version)
            except PolicyError as exc:
                log.error("%s; keeping the last good policy %s", exc, loaded.version)
        return self._loaded

    @property
    def version(self) -> str:
        """A short hash of the model and policy in force."""
        return self._current().version

    def principals_for(self, user: str) -> frozenset[str]:
        """The user's own principal and every group and role it belongs to, transitively."""
        subject = f"user:{user}"
        enforcer = self._current().enforcer
        return frozenset([subject, *enforcer.get_implicit_roles_for_user(subject)])

    def allows(self, user: str, obj: str, act: str) -> bool:
        """Whether the user may take action `act` on admin resource `obj`."""
        return bool(self._current().enforcer.enforce(f"user:{user}", obj, act))
