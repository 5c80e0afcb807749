"""Access tokens over HTTP, beside API keys: a token for alice sees what alice's key sees, and
a refused token gets 401 with its reason."""

from __future__ import annotations

import time

import pytest

from tests.conftest import Deployment
from tests.identity.conftest import IdentityWorld
from tests.identity.signing_idp import SigningIdp
from tests.test_acl_changes import QUERY

pytestmark = pytest.mark.e2e


@pytest.fixture
def world(identity_world: IdentityWorld) -> tuple[Deployment, SigningIdp]:
    return identity_world.deployed, identity_world.idp


def _search(deployed: Deployment, bearer: str) -> tuple[int, dict]:
    with deployed.client() as client:
        response = client.post("/v1/search", json={"query": QUERY, "top_k": 50},
                               headers={"Authorization": f"Bearer {bearer}"})
    return response.status_code, response.json()


def test_a_token_sees_what_the_users_key_sees(world: tuple[Deployment, SigningIdp]):
    deployed, idp = world
    for user in ("alice", "dave"):
        status, by_token = _search(deployed, idp.token(sub=user))
        assert status == 200
        _, by_key = _search(deployed, deployed.keys[user])
        assert {r["doc_id"] for r in by_token["results"]} == {
            r["doc_id"] for r in by_key["results"]} != set()
    alice = {r["doc_id"] for r in _search(deployed, idp.token(sub="alice"))[1]["results"]}
    dave = {r["doc_id"] for r in _search(deployed, idp.token(sub="dave"))[1]["results"]}
    assert alice != dave


def test_a_refused_token_gets_401_with_its_reason(world: tuple[Deployment, SigningIdp]):
    # (Refusals are on record as every 401 is: the first from an address in a window has a
    # record of its own, later ones are counted into one; tests/api/test_rate_limits.py.)
    deployed, idp = world
    status, body = _search(deployed, idp.token(exp=int(time.time()) - 600))
    assert status == 401 and "access token refused: the token has expired" in body["error"]
    status, body = _search(deployed, idp.token(aud="another"))
    assert status == 401 and "not for this service" in body["error"]
