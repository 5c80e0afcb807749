"""Policy, deny rules, quarantine, ACL overrides, keys and audit through the admin API and CLI.

Every change applies to the next request of a running server, and is audited.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import httpx
import pytest

from retrieval.embedder import Embedder
from tests.conftest import Deployment, serve_example
from tests.test_acl_changes import QUERY, WELCOME, seen
from tests.test_versions_and_audit import clearance

pytestmark = pytest.mark.e2e

BOARD = "finance:board/kestrel-acquisition.docx"


@pytest.fixture(scope="module")
def dep(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Iterator[Deployment]:
    with serve_example(tmp_path_factory.mktemp("policy"), embedder) as deployed:
        yield deployed


def audit_records(dep: Deployment) -> list[dict]:
    lines = dep.settings.audit_log.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def change(dep: Deployment, **body: list[str]) -> dict:
    with dep.client("root") as admin:
        response = admin.post("/v1/admin/policy/changes", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_membership_removed_through_the_api_applies_to_the_next_query(dep: Deployment):
    assert WELCOME in seen(dep, "dave")[0]
    before = change(dep)["version"]
    result = change(dep, remove=["g, user:dave, group:staff"])
    assert result["removed"] == 1 and result["version"] != before
    assert seen(dep, "dave")[0] == set()
    records = audit_records(dep)
    assert records[-1]["caller"] == "user:dave" and records[-1]["outcome"] == "empty"
    assert records[-1]["policy_version"] == result["version"]
    change_record = next(r for r in reversed(records) if r["action"] == "policy.change")
    assert change_record["remove"] == ["g, user:dave, group:staff"]
    assert change_record["caller"] == "user:root"
    assert change(dep, add=["g, user:dave, group:staff"])["added"] == 1
    assert WELCOME in seen(dep, "dave")[0]


def test_bad_policy_lines_are_refused_and_change_nothing(dep: Deployment):
    version = change(dep)["version"]
    with dep.client("root") as admin:
        for line in ["g, dave, group:staff", "p, group:staff, source:hr, read",
                     "x, user:a, group:b", "g, user:a, group:b, Not-A-Tenant"]:
            response = admin.post("/v1/admin/policy/changes", json={"add": [line]})
            assert response.status_code == 422, (line, response.text)
            assert "add[0]" in response.json()["error"]
        assert admin.get("/v1/admin/policy").json()["version"] == version


def test_a_deny_rule_overrides_the_acl_and_explain_names_it(dep: Deployment):
    rule = f"p, user:dave, doc:{WELCOME}, read, deny"
    change(dep, add=[rule])
    try:
        assert WELCOME not in seen(dep, "dave")[0]
        assert WELCOME in seen(dep, "alice")[0]
        with dep.client("root") as admin:
            why = admin.get("/v1/admin/policy/explain",
                            params={"user": "dave", "doc": WELCOME}).json()
        assert why["allowed"] is False
        assert f"denied by policy rule: {rule}" in why["reasons"]
        cli = clearance(dep, "policy", "explain", "dave", WELCOME)
        assert cli.returncode == 2 and f"denied by policy rule: {rule}" in cli.stdout
    finally:
        change(dep, remove=[rule])
    assert WELCOME in seen(dep, "dave")[0]
    cli = clearance(dep, "policy", "explain", "dave", WELCOME)
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert "ALLOWED" in cli.stdout and "via g, user:dave, group:staff" in cli.stdout


def test_a_group_deny_on_a_source(dep: Deployment):
    rule = "p, group:hr, source:handbook, read, deny"
    change(dep, add=[rule])
    try:
        assert not any(d.startswith("handbook:") for d in seen(dep, "alice")[0])
        assert any(d.startswith("hr:") for d in seen(dep, "alice")[0])
        assert WELCOME in seen(dep, "dave")[0]
    finally:
        change(dep, remove=[rule])


def test_quarantine_through_api_and_cli_applies_to_everyone_until_released(dep: Deployment):
    with dep.client("root") as admin:
        added = admin.post("/v1/admin/quarantine", json={
            "kind": "document", "target": WELCOME, "reason": "contains a password"})
        assert added.status_code == 200, added.text
        assert all(WELCOME not in seen(dep, u)[0] for u in ("dave", "alice", "root"))
        listed = admin.get("/v1/admin/quarantine").json()["entries"]
        assert [(e["target"], e["by"], e["reason"]) for e in listed] == [
            (WELCOME, "user:root", "contains a password")]
        assert admin.post("/v1/admin/quarantine/release", json={
            "kind": "document", "target": WELCOME}).status_code == 200
        assert admin.post("/v1/admin/quarantine", json={
            "kind": "document", "target": "handbook:nope.md"}).status_code == 404
    assert WELCOME in seen(dep, "dave")[0]

    cli = clearance(dep, "quarantine", "add", "--source", "handbook", "--reason", "audit")
    assert cli.returncode == 0, cli.stderr
    assert not any(d.startswith("handbook:") for d in seen(dep, "dave")[0])
    assert "source   handbook" in clearance(dep, "quarantine", "list").stdout
    assert clearance(dep, "quarantine", "release", "--source", "handbook").returncode == 0
    assert WELCOME in seen(dep, "dave")[0]
    records = [(r["action"], r["outcome"]) for r in audit_records(dep)]
    for action in ("quarantine.add", "quarantine.release"):
        assert records.count((action, "ok")) == 2  # once through the API, once through the CLI
    assert records.count(("quarantine.add", "refused")) == 1  # the unknown document


def test_acl_override_through_the_api(dep: Deployment):
    with dep.client("root") as admin:
        path = f"/v1/admin/documents/{WELCOME}/acl"
        assert admin.put(path, json={"allow": ["user:root"]}).status_code == 200
        assert WELCOME not in seen(dep, "dave")[0]
        bad = admin.put(path, json={"allow": ["root"]})
        assert bad.status_code == 422 and "not principals" in bad.json()["error"]
        assert admin.delete(path).status_code == 200
        assert admin.delete(path).status_code == 404
    assert WELCOME in seen(dep, "dave")[0]


def test_a_forbidden_document_answers_exactly_as_a_missing_one(dep: Deployment):
    with dep.client("dave") as client:
        forbidden = client.post("/v1/chat", json={"message": "Kestrel acquisition price"})
        missing = client.post("/v1/chat", json={"message": "Zyxwv merger of Quorplex Ltd"})
        search = client.post("/v1/search", json={"query": "Kestrel acquisition", "top_k": 50})
    assert forbidden.status_code == missing.status_code == 200
    a, b = forbidden.json(), missing.json()
    assert a["mode"] == b["mode"] == "abstain"
    assert a["answer"] == b["answer"] and a["citations"] == b["citations"] == []
    assert set(a) == set(b)
    assert BOARD not in {r["doc_id"] for r in search.json()["results"]}


def test_a_broken_policy_file_keeps_the_last_good_policy_and_says_so(dep: Deployment):
    policy = dep.root / "policy.csv"
    original = policy.read_text(encoding="utf-8")
    with dep.client("root") as admin:
        version = admin.get("/v1/admin/policy").json()["version"]
    try:
        policy.write_text(original + "g, dave-without-prefix, group:staff\n", encoding="utf-8")
        st = policy.stat()
        os.utime(policy, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
        with dep.client("root") as admin:
            state = admin.get("/v1/admin/policy").json()
        assert state["version"] == version
        assert "is not a principal" in state["problem"]
        assert "stays in force" in state["problem"]
        assert WELCOME in seen(dep, "dave")[0]
        assert seen(dep, "erin")[0]  # nobody lost or gained access
    finally:
        policy.write_text(original, encoding="utf-8")


def test_keys_and_audit_verify_through_the_api(dep: Deployment):
    with dep.client("root") as admin:
        created = admin.post("/v1/admin/keys", json={"user": "frank"})
        assert created.status_code == 201
        key = created.json()["key"]
        with dep.client() as anon:
            ok = anon.post("/v1/search", json={"query": QUERY},
                           headers={"Authorization": f"Bearer {key}"})
            assert ok.status_code == 200 and ok.json()["results"] == []  # frank: no groups
            assert admin.delete("/v1/admin/keys/frank").json()["revoked"] == 1
            gone = anon.post("/v1/search", json={"query": QUERY},
                             headers={"Authorization": f"Bearer {key}"})
            assert gone.status_code == 401
        verify = admin.get("/v1/admin/audit/verify").json()
    assert verify["ok"] is True and verify["records"] > 10
    assert key not in dep.settings.audit_log.read_text(encoding="utf-8")


def _search(dep: Deployment, key: str) -> httpx.Response:
    with dep.client() as anon:
        return anon.post("/v1/search", json={"query": QUERY},
                         headers={"Authorization": f"Bearer {key}"})


def test_key_lifecycle_through_the_api_and_cli(dep: Deployment):
    with dep.client("root") as admin:
        # A query-scoped key of an admin: it searches, and is refused on every admin route.
        made = admin.post("/v1/admin/keys", json={"user": "root", "name": "laptop",
                                                  "scope": "query", "expires_in_days": 7})
        assert made.status_code == 201, made.text
        body = made.json()
        query_key, key_id = body["key"], body["id"]
        assert (body["scope"], body["kind"], body["state"]) == ("query", "personal", "active")
        assert body["expires_at"] is not None
        assert _search(dep, query_key).status_code == 200
        with dep.client() as anon:
            refused = anon.get("/v1/admin/policy",
                               headers={"Authorization": f"Bearer {query_key}"})
        assert refused.status_code == 403 and "scope is query" in refused.text

        # Listing shows every key's facts, never a key or a hash.
        listed = admin.get("/v1/admin/keys")
        assert listed.status_code == 200
        entry = next(k for k in listed.json()["keys"] if k["id"] == key_id)
        assert (entry["name"], entry["scope"], entry["last_used_at"] is not None) == (
            "laptop", "query", True)
        assert query_key not in listed.text and "hash" not in listed.text

        # Rotation: with an overlap both keys work; the replaced one then stops at once
        # when rotated again with none.
        rotated = admin.post(f"/v1/admin/keys/{key_id}/rotate", json={"overlap_hours": 1})
        assert rotated.status_code == 201, rotated.text
        second, second_id = rotated.json()["key"], rotated.json()["id"]
        assert rotated.json()["replaces"] == key_id and rotated.json()["name"] == "laptop"
        assert _search(dep, query_key).status_code == _search(dep, second).status_code == 200
        again = admin.post(f"/v1/admin/keys/{second_id}/rotate", json={"overlap_hours": 0})
        expired = _search(dep, second)
        assert expired.status_code == 401 and "expired" in expired.text
        assert _search(dep, again.json()["key"]).status_code == 200
        assert admin.post(f"/v1/admin/keys/{second_id}/rotate").status_code == 404

        # Revocation of one key by id.
        assert admin.post(f"/v1/admin/keys/{key_id}/revoke").json()["state"] == "revoked"
        assert _search(dep, query_key).status_code == 401
        assert admin.post(f"/v1/admin/keys/{key_id}/revoke").status_code == 404
        assert admin.post("/v1/admin/keys", json={"user": "root", "scope": "all"}
                          ).status_code == 422

    cli = clearance(dep, "keys", "list", "--user", "root")
    assert cli.returncode == 0 and "laptop" in cli.stdout and "revoked" in cli.stdout
    assert query_key not in cli.stdout
    made = clearance(dep, "keys", "create", "grace", "--service", "--scope", "query",
                     "--expires-days", "30", "--label", "etl")
    assert made.returncode == 0, made.stderr
    assert "service, scope query" in made.stdout
    new_id = made.stdout.split()[2]
    assert clearance(dep, "keys", "revoke", "--id", new_id).returncode == 0
    assert clearance(dep, "keys", "revoke", "--id", new_id).returncode == 1
    records = [(r["action"], r["outcome"]) for r in audit_records(dep)]
    assert records.count(("keys.rotate", "ok")) == 2
    assert ("keys.rotate", "refused") in records
