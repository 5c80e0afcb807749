"""Tokens from a real OpenID provider (node-oidc-provider, tests/identity/oidc_provider.py):
validated through its discovery document and JWKS; each user sees what their API key sees; a
key rotated at the provider is picked up without restarting Clearance."""

from __future__ import annotations

import jwt
import pytest

from tests.conftest import Deployment
from tests.identity.conftest import IdentityWorld
from tests.identity.oidc_provider import OidcProvider, access_token, signing_key
from tests.test_acl_changes import QUERY

pytestmark = pytest.mark.e2e
USERS = ["alice", "dave"]  # both clients of the provider, with different documents


@pytest.fixture
def world(identity_world: IdentityWorld) -> tuple[Deployment, OidcProvider, dict]:
    return identity_world.deployed, identity_world.provider, identity_world.provider_key


def _seen(deployed: Deployment, bearer: str) -> tuple[int, set[str], str]:
    with deployed.client() as client:
        response = client.post("/v1/search", json={"query": QUERY, "top_k": 50},
                               headers={"Authorization": f"Bearer {bearer}"})
    body = response.json()
    return response.status_code, {r["doc_id"] for r in body.get("results", [])}, response.text


def test_provider_tokens_see_what_each_users_key_sees(world):
    deployed, provider, _ = world
    issuer = provider.issuer
    seen = {}
    for user in USERS:
        status, by_token, text = _seen(deployed, access_token(issuer, user))
        assert status == 200, text
        assert by_token == _seen(deployed, deployed.keys[user])[1] != set()
        seen[user] = by_token
    assert seen["alice"] != seen["dave"]


def test_a_token_for_another_audience_is_refused(world):
    deployed, provider, _ = world
    token = access_token(provider.issuer, "alice", resource="https://other.test")
    status, _, text = _seen(deployed, token)
    assert status == 401 and "not for this service" in text


def test_a_key_rotated_at_the_provider_is_picked_up_without_a_restart(world):
    deployed, provider, first = world
    assert _seen(deployed, access_token(provider.issuer, "alice"))[0] == 200  # first key cached
    # The provider restarts signing with a new key (the old one still published beside it);
    # Clearance, not restarted, has only the first key cached.
    provider.start([signing_key("second"), first])
    token = access_token(provider.issuer, "alice")
    assert jwt.get_unverified_header(token)["kid"] == "second"
    status, docs, text = _seen(deployed, token)
    assert status == 200 and docs, text
