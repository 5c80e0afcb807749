"""The identity mode's placement of memberships, checked without a deployment: what leaves the
policy is exactly what the tokens carry, and the issuer config the deployment gets turns each
user's claim into exactly the principals the carried memberships name."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from control.policy_store import policy_document
from identity.oidc import OidcSettings, OidcVerifier
from policies import DEFAULT_MODEL
from policies.enforcer import PolicyEngine
from policies.policy_file import parse_policy
from tests.identity.signing_idp import SigningIdp
from tests.leak.memberships import TokenClaims, place
from tests.leak.oracle import Oracle
from tests.leak.world import World, generate


@pytest.fixture(scope="module")
def world() -> World:
    return generate(20260501)


@pytest.fixture(scope="module")
def claims(world: World) -> Iterator[TokenClaims]:
    with SigningIdp() as idp:
        idp.add_key("k1")
        yield TokenClaims(place(world, "token"), idp)


def test_the_token_placement_moves_some_users_memberships_out_of_the_policy(
        world: World, claims: TokenClaims):
    carried = claims.placement.carried
    special = world.special
    assert special["thousand_groups"] not in carried  # 1,000 groups stay in the policy
    assert {m.tenant for m in carried[special["two_tenants"]]} == {"acme"}  # globex's stay
    for name in ("nfd_member", "ligature", "banned", "deep", "case_upper"):
        assert carried[special[name]], name
    assert sum(1 for u in world.users if u not in carried) >= 5  # some users keep the policy's
    moved = sum(len(ms) for ms in carried.values())
    full, rest = world.policy_text(), claims.placement.policy_text(world)
    lines = len(parse_policy(full, "full").memberships)
    assert len(parse_policy(rest, "rest").memberships) == lines - moved
    assert place(world, "policy").policy_text(world) == full


def test_each_claim_gives_exactly_the_carried_principals(world: World, claims: TokenClaims,
                                                         tmp_path: Path):
    issuer = tomllib.loads(claims.issuer_config())["oidc"]["issuers"][0]
    verifier = OidcVerifier(OidcSettings.model_validate({"issuers": [issuer]}))
    path = tmp_path / "policy.csv"
    path.write_text(claims.placement.policy_text(world), encoding="utf-8")
    engine = PolicyEngine(DEFAULT_MODEL, policy_document(path))
    oracle = Oracle(world)
    try:
        for user in world.users:
            groups = verifier.verify(claims.bearer(user)).groups
            assert set(groups) == claims.expected_claimed(user), user
            # The policy without the carried lines, plus the claim: what the oracle says.
            held = engine.subject(user, claimed=groups).by_tenant
            assert held == oracle.held(user), user
    finally:
        verifier.close()
