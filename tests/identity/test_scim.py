"""SCIM 2.0 provisioning at /scim/v2 (application/provisioning.py), against the running server
of the identity deployment: the scim2-tester compliance checker, the requests Microsoft Entra ID
and Okta send, and what provisioning changes at the next query."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server

from application.services import open_keys
from tests.identity.conftest import IdentityWorld

PAYLOADS = Path(__file__).parent / "scim_payloads"
FINANCE_QUERY = "Q3 budget finance report"
FINANCE_REPORT = "finance:reports/q3-budget.html"


def _fill(template: Any, **names: str) -> Any:
    text = json.dumps(template)
    for name, value in names.items():
        text = text.replace("{" + name + "}", value)
    return json.loads(text)


@contextmanager
def _scim(world: IdentityWorld, key: str | None = None) -> Iterator[httpx.Client]:
    headers = {"Content-Type": "application/scim+json",
               "Authorization": f"Bearer {key or world.provisioning_key}"}
    with httpx.Client(base_url=world.deployed.url + "/scim/v2", headers=headers,
                      timeout=60) as client:
        yield client


def _search(world: IdentityWorld, user: str) -> httpx.Response:
    with world.deployed.client() as client:
        return client.post("/v1/search", json={"query": FINANCE_QUERY, "top_k": 50},
                           headers={"Authorization": f"Bearer {world.idp.token(sub=user)}"})


def _documents(world: IdentityWorld, user: str) -> set[str]:
    response = _search(world, user)
    assert response.status_code == 200, response.text
    return {hit["doc_id"] for hit in response.json()["results"]}


def _audit_actions(world: IdentityWorld) -> Counter[tuple[str, str]]:
    log = world.deployed.settings.audit_log
    lines = log.read_text("utf-8").splitlines() if log.exists() else []
    records = [json.loads(line) for line in lines if line.strip()]
    return Counter((r.get("action", ""), r.get("caller", "")) for r in records)


def test_scim2_tester_passes_every_check(identity_world: IdentityWorld):
    with httpx2.Client(base_url=identity_world.deployed.url + "/scim/v2", timeout=60,
                       headers={"Authorization": f"Bearer {identity_world.provisioning_key}"}
                       ) as http:
        results = check_server(SyncSCIMClient(http))
    statuses = Counter(r.status.name for r in results)
    print(f"scim2-tester: {len(results)} checks, {dict(statuses)}")
    failed = [(r.status.name, r.title, getattr(r, "resource_type", None), r.reason)
              for r in results if r.status is not Status.SUCCESS]
    assert not failed
    # Discovery, and create/read/replace/patch/delete of both Users and Groups, were checked.
    assert len(results) >= 100
    assert {getattr(r, "resource_type", None) for r in results} >= {"User", "Group"}


@pytest.mark.parametrize("peer", ["entra", "okta"])
def test_what_entra_and_okta_send_takes_effect_at_the_next_query(identity_world: IdentityWorld,
                                                                  peer: str):
    world = identity_world
    sent = json.loads((PAYLOADS / f"{peer}.json").read_text("utf-8"))
    user = f"{peer}-frank"
    names = {"user_name": f"{user}@larkspur.example", "group_name": "finance"}
    before = _audit_actions(world)
    with _scim(world) as scim:
        created = scim.post("/Users", json=_fill(sent["create_user"], **names))
        assert created.status_code == 201, created.text
        assert created.headers["content-type"].startswith("application/scim+json")
        assert "password" not in created.json()
        names["user_id"] = created.json()["id"]
        group = scim.post("/Groups", json=_fill(sent["create_group"], **names))
        assert group.status_code == 201, group.text
        names["group_id"] = group.json()["id"]
        try:
            assert FINANCE_REPORT not in _documents(world, user)
            for change in ("update_user", "rename_group"):
                if change in sent:
                    target = "Users/" + names["user_id"] if "user" in change else \
                        "Groups/" + names["group_id"]
                    done = scim.patch(f"/{target}", json=_fill(sent[change], **names))
                    assert done.status_code == 200, done.text

            added = scim.patch(f"/Groups/{names['group_id']}",
                               json=_fill(sent["add_member"], **names))
            assert added.status_code == 200, added.text
            assert [m["value"] for m in added.json()["members"]] == [names["user_id"]]
            assert FINANCE_REPORT in _documents(world, user)  # the very next query
            shown = scim.get(f"/Users/{names['user_id']}").json()
            assert [g["value"] for g in shown["groups"]] == [names["group_id"]]

            removed = scim.patch(f"/Groups/{names['group_id']}",
                                 json=_fill(sent["remove_member"], **names))
            assert removed.status_code == 200, removed.text
            assert not removed.json().get("members")
            assert FINANCE_REPORT not in _documents(world, user)  # gone at the next query

            found = scim.get("/Users", params={"filter": _fill(sent["find_user"], **names)})
            assert found.status_code == 200 and found.json()["totalResults"] == 1
            assert found.json()["Resources"][0]["id"] == names["user_id"]

            for form in ("disable_user_before_2020_flag", "disable_user"):
                if form in sent:
                    disabled = scim.patch(f"/Users/{names['user_id']}",
                                          json=_fill(sent[form], **names))
                    assert disabled.status_code == 200 and disabled.json()["active"] is False
            refused = _search(world, user)
            assert refused.status_code == 401 and "deactivated" in refused.text
        finally:
            assert scim.delete(f"/Groups/{names['group_id']}").status_code == 204
            assert scim.delete(f"/Users/{names['user_id']}").status_code == 204
        assert scim.get(f"/Users/{names['user_id']}").status_code == 404
    after = _audit_actions(world) - before
    caller = "provisioning:entra"
    assert after[("scim.users.create", caller)] == 1
    assert after[("scim.groups.patch", caller)] >= 2
    assert after[("users.deactivate", caller)] == 1
    assert after[("scim.users.delete", caller)] == 1 and after[("scim.groups.delete", caller)]


def test_a_deleted_user_is_refused_with_any_key_they_hold(identity_world: IdentityWorld):
    world = identity_world
    key = open_keys(world.deployed.settings).create("gwen")
    with _scim(world) as scim:
        created = scim.post("/Users", json={
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "gwen@larkspur.example"})
        assert created.status_code == 201, created.text
        user_id = created.json()["id"]
        with world.deployed.client() as client:
            def search() -> httpx.Response:
                return client.post("/v1/search", json={"query": FINANCE_QUERY},
                                   headers={"Authorization": f"Bearer {key}"})
            assert search().status_code == 200
            assert scim.delete(f"/Users/{user_id}").status_code == 204
            refused = search()
            assert refused.status_code == 401 and "user:gwen is deactivated" in refused.text
            # Provisioned again, active: the deactivation SCIM made is lifted.
            again = scim.post("/Users", json={
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "gwen@larkspur.example", "active": True})
            assert again.status_code == 201, again.text
            assert search().status_code == 200
            assert scim.delete(f"/Users/{again.json()['id']}").status_code == 204


def test_scim_does_not_lift_an_administrators_deactivation(identity_world: IdentityWorld):
    world = identity_world
    with world.deployed.client("root") as admin, _scim(world) as scim:
        assert admin.post("/v1/admin/users/hal/deactivate",
                          json={"reason": "incident"}).status_code == 200
        try:
            created = scim.post("/Users", json={
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "hal@larkspur.example", "active": True})
            assert created.status_code == 201, created.text
            assert _search(world, "hal").status_code == 401
            assert scim.delete(f"/Users/{created.json()['id']}").status_code == 204
        finally:
            assert admin.post("/v1/admin/users/hal/activate").status_code == 200


def test_only_a_provisioning_key_opens_scim_and_it_opens_nothing_else(
        identity_world: IdentityWorld):
    world = identity_world
    with world.deployed.client() as client:
        as_caller = client.post("/v1/search", json={"query": FINANCE_QUERY}, headers={
            "Authorization": f"Bearer {world.provisioning_key}"})
        assert as_caller.status_code == 401 and "/scim/v2 only" in as_caller.text
        for headers in ({}, {"Authorization": f"Bearer {world.deployed.keys['root']}"},
                        {"Authorization": f"Bearer {world.idp.token(sub='root')}"}):
            refused = client.get("/scim/v2/Users", headers=headers)
            assert refused.status_code == 401
            body = refused.json()
            assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
            assert body["status"] == "401" and "provisioning key" in body["detail"]


def test_bad_requests_get_a_scim_error_that_says_what_is_wrong(identity_world: IdentityWorld):
    world = identity_world
    user = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "ivy@larkspur.example"}
    with _scim(world) as scim:
        other_domain = scim.post("/Users", json={**user, "userName": "ivy@elsewhere.example"})
        assert other_domain.status_code == 400
        assert other_domain.json()["scimType"] == "invalidValue"
        assert "larkspur.example" in other_domain.json()["detail"]
        created = scim.post("/Users", json=user)
        assert created.status_code == 201
        user_id = created.json()["id"]
        try:
            before = _audit_actions(world)
            replaced = scim.put(f"/Users/{user_id}", json={**user, "displayName": "Ivy"})
            assert replaced.status_code == 200 and replaced.json()["displayName"] == "Ivy"
            assert (_audit_actions(world) - before) == Counter(
                {("scim.users.replace", "provisioning:entra"): 1})
            twice = scim.post("/Users", json={**user, "userName": "IVY@larkspur.example"})
            assert twice.status_code == 409 and twice.json()["scimType"] == "uniqueness"
            unknown_member = scim.post("/Groups", json={
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": "ghosts", "members": [{"value": "no-such-id"}]})
            assert unknown_member.status_code == 400
            assert "no-such-id" in unknown_member.json()["detail"]
            outer = scim.post("/Groups", json={
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": "outer", "members": [{"value": user_id}]})
            inner = scim.post("/Groups", json={
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": "inner", "members": [{"value": outer.json()["id"]}]})
            cycle = scim.patch(f"/Groups/{outer.json()['id']}", json={
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "add", "path": "members",
                                "value": [{"value": inner.json()["id"]}]}]})
            assert cycle.status_code == 400 and "member of itself" in cycle.json()["detail"]
            for group in (inner, outer):
                assert scim.delete(f"/Groups/{group.json()['id']}").status_code == 204
            bad_filter = scim.get("/Users", params={"filter": 'userName eq "ivy'})
            assert bad_filter.status_code == 400
            assert bad_filter.json()["scimType"] == "invalidFilter"
            not_json = scim.post("/Users", content=b"{not json")
            assert not_json.status_code == 400
            assert not_json.json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
            missing = scim.get("/Groups/no-such-id")
            assert missing.status_code == 404 and "no-such-id" in missing.json()["detail"]
        finally:
            assert scim.delete(f"/Users/{user_id}").status_code == 204
