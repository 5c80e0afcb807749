"""A trusted front-end (Open WebUI) asks on behalf of its users: with the front-end key, each
named user sees only their own documents; the headers without that key, or the key without a
user, are refused; on record, the user and the front-end."""

from __future__ import annotations

import json

import pytest

from tests.conftest import Deployment
from tests.identity.conftest import IdentityWorld
from tests.test_acl_changes import QUERY

pytestmark = pytest.mark.e2e
EMAIL = "X-OpenWebUI-User-Email"


@pytest.fixture
def world(identity_world: IdentityWorld) -> tuple[Deployment, str]:
    return identity_world.deployed, identity_world.frontend_key


def _search(deployed: Deployment, headers: dict[str, str]) -> tuple[int, set[str], str]:
    with deployed.client() as client:
        response = client.post("/v1/search", json={"query": QUERY, "top_k": 50},
                               headers=headers)
    docs = {r["doc_id"] for r in response.json().get("results", [])}
    return response.status_code, docs, response.text


def test_each_named_user_sees_only_their_own_documents(world: tuple[Deployment, str]):
    deployed, key = world
    seen = {}
    for user in ("alice", "dave"):
        status, docs, text = _search(deployed, {"Authorization": f"Bearer {key}",
                                                EMAIL: f"{user}@larkspur.example"})
        assert status == 200, text
        own = _search(deployed, {"Authorization": f"Bearer {deployed.keys[user]}"})[1]
        assert docs == own != set()
        seen[user] = docs
    assert seen["alice"] != seen["dave"]
    records = [json.loads(line) for line in
               deployed.settings.audit_log.read_text("utf-8").splitlines()]
    ours = [r for r in records if r.get("via") == "frontend:open-webui"]
    assert {r["caller"] for r in ours} == {"user:alice", "user:dave"}


@pytest.mark.parametrize(("case", "headers", "reason"), [
    ("the headers without a key", {EMAIL: "alice@larkspur.example"}, "missing API key"),
    ("the key without a user", {}, "a front-end key is not a user"),
    ("a user the policy does not know", {EMAIL: "mallory@larkspur.example"},
     "the policy does not know"),
    ("an address of another domain", {EMAIL: "alice@evil.example"}, "not an address of"),
    ("a user's own key with the header", {EMAIL: "alice@larkspur.example"},
     "only a front-end's key may do"),
])
def test_front_end_identities_that_are_refused(world: tuple[Deployment, str], case: str,
                                               headers: dict[str, str], reason: str):
    deployed, key = world
    if case == "a user's own key with the header":
        headers = {**headers, "Authorization": f"Bearer {deployed.keys['dave']}"}
    elif case != "the headers without a key":
        headers = {**headers, "Authorization": f"Bearer {key}"}
    status, _, text = _search(deployed, headers)
    assert status == 401, text
    assert reason in text


def test_a_front_end_key_cannot_administer(world: tuple[Deployment, str]):
    deployed, key = world
    with deployed.client() as client:
        response = client.get("/v1/admin/policy", headers={
            "Authorization": f"Bearer {key}", EMAIL: "root@larkspur.example"})
    assert response.status_code == 403 and "scope is query" in response.text
