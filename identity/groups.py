"""Group memberships an access token claims, for issuers whose config says to use them.

Off unless the issuer sets `groups_claim` (Okta and Keycloak: "groups"; Entra ID: "groups",
whose values are group object ids, or "roles", its app roles). The claim must be a list of
strings; which values count, and which principal each becomes:

- a value that is a key of `group_map` becomes that entry's principal: "group:NAME" or
  "role:NAME" in `groups_tenant`, or "TENANT/group:NAME" in that tenant;
- with `group_prefix`, a value that starts with it becomes "group:" + the rest, in
  `groups_tenant` ("clearance-finance" → group:finance);
- with neither a map nor a prefix, every value becomes "group:" + the value;
- any other value does not count.

A value that counts but makes no valid principal (a space or a comma in it, empty, not a
string) is left out and logged once; a claim that is not a list grants nothing and is logged.
None of these refuses the token: it is the user's, and they keep what the policy gives them
(fail closed: nothing extra). A claim can never name a user principal.

The principals come back as ACL tokens (policies/principals.py), held for that one request as
if `g, user:NAME, GROUP, TENANT` lines were in the policy (PolicyEngine.subject).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any

from policies.principals import (
    DEFAULT_TENANT,
    is_principal,
    is_tenant,
    normalize,
    split_token,
    token,
)

log = logging.getLogger(__name__)

_WARNED_MAX = 1000  # distinct bad values remembered per issuer, so each is logged once


def map_target(value: str, tenant: str) -> str:
    """The ACL token of a `group_map` target: "group:NAME" or "role:NAME" in `tenant`, or
    "TENANT/group:NAME" (or role) in TENANT; ValueError for anything else."""
    value = normalize(value)
    explicit = "/" in value.split(":", 1)[0]
    target_tenant, principal = split_token(value)
    if explicit and not is_tenant(target_tenant):
        raise ValueError(f"group_map target {value!r}: {target_tenant!r} is not a tenant name")
    if not principal.startswith(("group:", "role:")) or not is_principal(principal):
        raise ValueError(f"group_map target {value!r} is not group:NAME or role:NAME (with "
                         "TENANT/ before it for a tenant other than groups_tenant)")
    return token(target_tenant if explicit else tenant, principal)


class GroupClaim:
    """One issuer's rules for its groups claim (see the module docstring)."""

    def __init__(self, issuer: str, claim: str, *, tenant: str = DEFAULT_TENANT,
                 prefix: str | None = None, table: Mapping[str, str] | None = None) -> None:
        self.issuer, self.claim, self.tenant, self.prefix = issuer, claim, tenant, prefix
        self._table: dict[str, str] = {}
        for value, target in (table or {}).items():
            self._table[value] = map_target(target, tenant)
        self._lock = threading.Lock()
        self._warned: set[str] = set()

    def tokens(self, claims: Mapping[str, Any]) -> tuple[str, ...]:
        """The ACL tokens the token's claim gives, without repeats; () when it gives none."""
        if self.claim not in claims:
            names = claims.get("_claim_names")
            if isinstance(names, dict) and self.claim in names:
                # Entra's "overage": too many groups for the token, to be read from Graph.
                self._warn("overage", f"the {self.claim!r} claim was left out of the token "
                           "(too many groups: the IdP points to another source instead); "
                           "no groups are taken from it")
            return ()
        values = claims[self.claim]
        if not isinstance(values, list):
            self._warn(f"type:{type(values).__name__}",
                       f"the {self.claim!r} claim is a {type(values).__name__}, not a list: no "
                       "groups are taken from it")
            return ()
        out: list[str] = []
        for value in values:
            found = self._token(value)
            if found is not None:
                out.append(found)
        return tuple(dict.fromkeys(out))

    def _token(self, value: object) -> str | None:
        if not isinstance(value, str):
            self._warn(f"type:{type(value).__name__}", f"a value of the {self.claim!r} claim is "
                       f"a {type(value).__name__}, not a string: left out")
            return None
        mapped = self._table.get(value)
        if mapped is not None:
            return mapped
        if self.prefix is not None:
            if not value.startswith(self.prefix):
                return None
            name = value[len(self.prefix):]
        elif self._table:
            return None  # the map lists every value that counts
        else:
            name = value
        principal = normalize(f"group:{name}")
        if not is_principal(principal):
            self._warn(value, f"{value!r} of the {self.claim!r} claim makes no valid group name "
                       "(no spaces or commas, not empty): left out")
            return None
        return token(self.tenant, principal)

    def _warn(self, key: str, message: str) -> None:
        with self._lock:
            if key in self._warned or len(self._warned) >= _WARNED_MAX:
                return
            self._warned.add(key)
        log.warning("issuer %s: %s", self.issuer, message)
