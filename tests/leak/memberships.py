"""Where a leak deployment keeps the world's memberships, and what its callers send.

The oracle (tests/leak/oracle.py) reads the memberships from the world wherever a deployment
keeps them: what a user may read does not depend on it. A Placement says where they are:

- "policy": every `g` line is in the policy file, and callers send API keys;
- "token": callers send OIDC access tokens of the stand-in issuer the deployment trusts
  (tests/identity/signing_idp.py: discovery and JWKS over loopback), one signed per request;
  for the users `place` picks, their own memberships (`g, user:NAME, ...`) are left out of the
  policy and carried in their token's groups claim instead (for some, only those of one
  tenant). The lines that nest groups in groups stay in the policy.

A later "scim" place fits the same shape: `carried` are then the memberships to provision
through /scim/v2, and `policy_text` is the policy file without them.

How a carried membership is written in the claim (TokenClaims): a group of the default tenant
as GROUP_PREFIX + its name, as written in the world (so in NFD where the world writes it so);
a role, or a group of another tenant, as an id that the issuer's group_map maps to
"TENANT/group:NAME", as Entra sends group object ids. Every token also carries DECOYS, values
the issuer's config must not count; were one counted, the oracle would see a leak.
"""

from __future__ import annotations

import json
import random
import unicodedata
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

from tests.identity.signing_idp import SigningIdp
from tests.leak.world import DEFAULT, Membership, World

PLACES = ("policy", "token")
GROUP_PREFIX = "clr-"
AUDIENCE = "clearance"
_IDS = uuid.UUID("5d0f6a8e-2b1c-4e7a-9c3d-1f2e3a4b5c6d")
UNMAPPED_ID = str(uuid.uuid5(_IDS, "a group the map does not name"))
# Values an issuer with GROUP_PREFIX and the map below must not count: no prefix ("finance",
# which would grant group:finance), not a group name (space, comma, empty), not a string.
DECOYS: tuple[object, ...] = ("finance", "group:staff", "staff", "clr-bad name", "clr-a,b",
                              "clr-", 42, None, {"group": "staff"}, ["clr-staff"], UNMAPPED_ID)


def _nfc(value: str) -> str:
    return unicodedata.normalize("NFC", value)


@dataclass(frozen=True)
class Placement:
    """Where the world's memberships are: `carried` (user → their own memberships kept out of
    the policy file) live in `where`; every other membership is in the policy file."""

    where: str
    carried: Mapping[str, tuple[Membership, ...]] = field(default_factory=dict)

    def policy_text(self, world: World) -> str:
        moved = {m for ms in self.carried.values() for m in ms}
        return world.policy_text(leave_out=moved)


def place(world: World, where: str) -> Placement:
    """`where` "policy": nothing carried. "token": every special user's memberships but the
    1,000 groups of thousand_groups (too many for a token; they stay in the policy), morgan's
    of one tenant, and a seeded share of the others' (all, one tenant's, or none)."""
    if where not in PLACES:
        raise ValueError(f"memberships live in one of {PLACES}, not {where!r}")
    if where == "policy":
        return Placement(where)
    rng = random.Random(f"{world.seed}/memberships/{where}")
    own: dict[str, list[Membership]] = {}
    for m in world.memberships:
        if m.member.startswith("user:"):
            own.setdefault(m.member.removeprefix("user:"), []).append(m)
    special = set(world.special.values())
    carried: dict[str, tuple[Membership, ...]] = {}
    for user in world.users:
        mine = own.get(user, [])
        tenants = sorted({m.tenant for m in mine})
        roll = 0.0 if user in special else rng.random()
        if user == world.special["thousand_groups"] or not mine or roll >= 0.7:
            continue  # all in the policy
        if len(tenants) > 1 and (user == world.special["two_tenants"] or roll < 0.3):
            carried[user] = tuple(m for m in mine if m.tenant == tenants[0])
        else:
            carried[user] = tuple(mine)
    return Placement(where, carried)


class TokenClaims:
    """The groups claim of each user's tokens, the issuer config that reads it, and the bearer
    a caller sends: a token signed now (see the module docstring)."""

    def __init__(self, placement: Placement, idp: SigningIdp, kid: str = "k1") -> None:
        self.placement, self.idp, self.kid = placement, idp, kid
        self.group_map: dict[str, str] = {}
        self._values: dict[str, list[object]] = {}
        for user, memberships in placement.carried.items():
            self._values[user] = [self._value(m) for m in memberships]

    def _value(self, m: Membership) -> str:
        if m.tenant == DEFAULT and m.group.startswith("group:"):
            return GROUP_PREFIX + m.group.removeprefix("group:")
        value = str(uuid.uuid5(_IDS, f"{m.tenant}/{_nfc(m.group)}"))
        self.group_map[value] = m.group if m.tenant == DEFAULT else f"{m.tenant}/{m.group}"
        return value

    def claim(self, user: str) -> list[object]:
        """What the token's groups claim holds: the carried memberships, then the decoys."""
        return [*self._values.get(user, ()), *DECOYS]

    def expected_claimed(self, user: str) -> set[str]:
        """The ACL tokens the server should take from the claim (the audit's claimed_groups)."""
        return {_nfc(m.group) if m.tenant == DEFAULT else f"{m.tenant}/{_nfc(m.group)}"
                for m in self.placement.carried.get(user, ())}

    def bearer(self, user: str) -> str:
        return self.idp.token(self.kid, sub=user, aud=AUDIENCE, groups=self.claim(user))

    @property
    def via(self) -> str:
        return f"oidc:{self.idp.issuer}"

    def issuer_config(self) -> str:
        """The `[[oidc.issuers]]` table for the deployment's config (TOML)."""
        lines = ["", "[[oidc.issuers]]", f"issuer = {json.dumps(self.idp.issuer)}",
                 f"audience = {json.dumps(AUDIENCE)}", 'groups_claim = "groups"',
                 f"group_prefix = {json.dumps(GROUP_PREFIX)}", "", "[oidc.issuers.group_map]"]
        lines += [f"{json.dumps(value)} = {json.dumps(target, ensure_ascii=False)}"
                  for value, target in sorted(self.group_map.items())]
        return "\n".join(lines) + "\n"
