"""Groups from a token's claim over HTTP, for zoe, whom the policy does not name: from an issuer
that uses its groups claim she reads what the groups (and all the policy nests them in) may
read, minus their denials; the same claim from an issuer that does not use it gives her
nothing; a malformed value is left out; on record, the claimed groups."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import Deployment
from tests.identity.conftest import IdentityWorld
from tests.identity.oidc_provider import access_token
from tests.identity.signing_idp import SigningIdp
from tests.test_acl_changes import QUERY

pytestmark = pytest.mark.e2e

HANDBOOK = {"handbook:expenses-policy.pdf", "handbook:holidays-2026.html",
            "handbook:it-security.txt", "handbook:welcome.md"}  # group:staff
HR = {"hr:onboarding-checklist.txt", "hr:parental-leave.md", "hr:salary-bands.docx"}
ENGINEERING = {"engineering:architecture-overview.md", "engineering:incident-2026-03.eml",
               "engineering:platform/oncall-runbook.md"}  # platform/*: group:platform
LEGAL = {"legal:litigation-hold.eml", "legal:nda-template.docx"}


@pytest.fixture
def world(identity_world: IdentityWorld, groups_idp: SigningIdp
          ) -> tuple[Deployment, IdentityWorld, SigningIdp]:
    return identity_world.deployed, identity_world, groups_idp


def _ask(deployed: Deployment, bearer: str, endpoint: str = "search"
         ) -> tuple[int, dict[str, Any]]:
    field = "query" if endpoint == "search" else "message"
    with deployed.client() as client:
        response = client.post(f"/v1/{endpoint}", json={field: QUERY, "top_k": 50},
                               headers={"Authorization": f"Bearer {bearer}"})
    return response.status_code, response.json()


def _seen(deployed: Deployment, bearer: str) -> set[str]:
    status, body = _ask(deployed, bearer)
    assert status == 200, body
    return {r["doc_id"] for r in body["results"]}


def _record(deployed: Deployment, request_id: str) -> dict[str, Any]:
    records = [json.loads(line) for line in
               deployed.settings.audit_log.read_text("utf-8").splitlines()]
    return next(r for r in records if r.get("request_id") == request_id
                and r.get("action") in ("search", "chat"))


def test_a_claimed_group_reads_what_that_group_reads(world):
    deployed, _, groups_idp = world
    by_claim = _seen(deployed, groups_idp.token(sub="zoe", groups=["hr"]))
    assert by_claim == _seen(deployed, deployed.keys["alice"]) == HANDBOOK | HR  # alice: hr


def test_the_same_claim_from_an_issuer_that_does_not_use_it_gives_nothing(world):
    deployed, identity, _ = world
    assert _seen(deployed, identity.idp.token(sub="zoe", groups=["hr"])) == set()
    # alice keeps what the policy gives her, and nothing the claim says.
    assert _seen(deployed, identity.idp.token(sub="alice", groups=["legal"])) == HANDBOOK | HR


def test_a_nested_group_brings_the_groups_it_is_in(world):
    deployed, _, groups_idp = world
    # g, group:platform, group:engineering; g, group:engineering, group:staff
    assert _seen(deployed, groups_idp.token(sub="zoe", groups=["platform"])) == (
        HANDBOOK | ENGINEERING)


def test_malformed_values_are_left_out_and_the_rest_count(world):
    deployed, _, groups_idp = world
    token = groups_idp.token(sub="zoe", groups=["bad name", "a,b", "", 42, None, {"hr": 1},
                                                "legal"])
    assert _seen(deployed, token) == HANDBOOK | LEGAL
    assert _seen(deployed, groups_idp.token(sub="zoe", groups="hr")) == set()  # not a list


def test_a_deny_on_the_claimed_group_applies_in_search_and_chat(world):
    deployed, _, groups_idp = world
    token = groups_idp.token(sub="zoe", groups=["temps"])
    # g, group:temps, group:hr; p, group:temps, doc:hr:salary-bands.docx, read, deny
    assert _seen(deployed, token) == HANDBOOK | HR - {"hr:salary-bands.docx"}
    status, chat = _ask(deployed, token, "chat")
    assert status == 200
    cited = {c["doc_id"] for c in chat["citations"]}
    assert cited and cited <= HANDBOOK | HR - {"hr:salary-bands.docx"}
    record = _record(deployed, chat["request_id"])
    assert record["caller"] == "user:zoe" and record["via"] == f"oidc:{groups_idp.issuer}"
    assert record["claimed_groups"] == ["group:temps"]
    assert {"group:temps", "group:hr", "group:staff"} <= set(record["principals"])
    assert record["denied"] == ["doc:hr:salary-bands.docx"]
    assert record.get("dropped", 0) == 0  # the re-check held the same principals


def test_claimed_groups_last_for_their_request_only(world):
    deployed, _, groups_idp = world
    assert _seen(deployed, groups_idp.token(sub="zoe", groups=["legal"])) == HANDBOOK | LEGAL
    status, body = _ask(deployed, groups_idp.token(sub="zoe"))  # no claim: nothing
    assert status == 200 and body["results"] == []
    assert "claimed_groups" not in _record(deployed, body["request_id"])


def test_a_claimed_group_grants_no_admin_action(world):
    deployed, _, groups_idp = world
    # g, group:it-admins, role:admin; p, role:admin, *, *: reading follows claims, admin
    # actions the policy alone.
    token = groups_idp.token(sub="zoe", groups=["it-admins"])
    with deployed.client() as client:
        response = client.get("/v1/admin/policy", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 403 and "user:zoe may not" in response.text


def test_a_real_providers_groups_claim_is_used(world):
    deployed, identity, _ = world
    # node-oidc-provider puts zoe's groups in her access token; its issuer uses the claim.
    assert _seen(deployed, access_token(identity.provider.issuer, "zoe")) == HANDBOOK | LEGAL
    # A client without groups gets no claim: alice sees what her key sees.
    assert _seen(deployed, access_token(identity.provider.issuer, "alice")) == HANDBOOK | HR
