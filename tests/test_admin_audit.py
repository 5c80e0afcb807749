"""Every admin action, through HTTP and through the CLI, leaves exactly one audit record that
names the caller (issue 14).

The tables below list a call for every route that changes something and for every CLI command;
the first test fails when a route or a command is added without a line here (or a place among
the reads), so a new action cannot go unaudited unnoticed. The calls run against one deployment
of the example corpus: the real parser, embedder, embedded Qdrant and Casbin, a real re-index
job in a child process, and the CLI's own `main` in this process, on the same data directory.
"""

from __future__ import annotations

import argparse
import getpass
import json
from collections.abc import Iterator
from typing import Any

import pytest

from api.app import ROUTERS
from api.cli import build_parser, main
from application.admin import ACTIONS
from application.services import open_keys
from ingest.jobs import build_lock
from retrieval.embedder import Embedder
from tests.conftest import Deployment, serve_example
from tests.test_admin import wait_for_job

pytestmark = pytest.mark.e2e

DOC = "handbook:welcome.md"
# (method, route) → (path, body, status, the action recorded, its outcome), called in this order.
HTTP_CALLS: dict[tuple[str, str], tuple[str, dict[str, Any] | None, int, str, str]] = {
    ("POST", "/v1/admin/sources/{name}/reindex"): (
        "/v1/admin/sources/handbook/reindex", None, 202, "index.reindex", "ok"),
    ("POST", "/v1/admin/index/rollback"): ("/v1/admin/index/rollback", {}, 200,
                                           "index.rollback", "ok"),
    # Made while the test holds the build lock: refused, and the refusal is the one record.
    ("POST", "/v1/admin/reindex"): ("/v1/admin/reindex", None, 409, "index.reindex", "refused"),
    ("POST", "/v1/admin/keys"): ("/v1/admin/keys", {"user": "newcomer"}, 201, "keys.create",
                                 "ok"),
    # {newcomer_key}: the id of newcomer's newest active key when the call is made.
    ("POST", "/v1/admin/keys/{key_id}/rotate"): (
        "/v1/admin/keys/{newcomer_key}/rotate", {"overlap_hours": 1}, 201, "keys.rotate", "ok"),
    ("POST", "/v1/admin/keys/{key_id}/revoke"): (
        "/v1/admin/keys/{newcomer_key}/revoke", None, 200, "keys.revoke", "ok"),
    ("DELETE", "/v1/admin/keys/{user}"): ("/v1/admin/keys/newcomer", None, 200, "keys.revoke",
                                          "ok"),
    ("PUT", "/v1/admin/documents/{doc_id:path}/acl"): (
        f"/v1/admin/documents/{DOC}/acl", {"allow": ["user:dave"]}, 200, "acl.set", "ok"),
    ("DELETE", "/v1/admin/documents/{doc_id:path}/acl"): (
        f"/v1/admin/documents/{DOC}/acl", None, 200, "acl.clear", "ok"),
    ("POST", "/v1/admin/quarantine"): ("/v1/admin/quarantine", {"kind": "document",
                                                                "target": DOC}, 200,
                                       "quarantine.add", "ok"),
    ("POST", "/v1/admin/quarantine/release"): (
        "/v1/admin/quarantine/release", {"kind": "document", "target": DOC}, 200,
        "quarantine.release", "ok"),
    ("POST", "/v1/admin/pause"): ("/v1/admin/pause", {"target": "generation", "reason": "t"},
                                  200, "pause", "ok"),
    ("POST", "/v1/admin/resume"): ("/v1/admin/resume", {"target": "generation"}, 200, "resume",
                                   "ok"),
    ("POST", "/v1/admin/users/{user}/deactivate"): (
        "/v1/admin/users/erin/deactivate", {"reason": "left"}, 200, "users.deactivate", "ok"),
    ("POST", "/v1/admin/users/{user}/activate"): (
        "/v1/admin/users/erin/activate", None, 200, "users.activate", "ok"),
    ("POST", "/v1/admin/policy/changes"): (
        "/v1/admin/policy/changes", {"add": ["g, user:dave, group:staff"]}, 200,
        "policy.change", "ok"),
}
# Routes that change nothing an admin action covers: retrievals, audited by their own tests.
RETRIEVALS = {("POST", "/v1/search"), ("POST", "/v1/chat"), ("POST", "/v1/chat/completions")}
# A caller's own rating of an answer, audited as "feedback" (tests/test_feedback_http.py), and
# the web page's sign-in and sign-out, audited as "signin" and "signout"
# (tests/api/test_web_session.py).
OWN_CALLS = {("POST", "/v1/feedback"), ("POST", "/auth/key"), ("POST", "/auth/logout")}

# The SCIM routes: the identity provider's, with a provisioning key, not admin actions. Their
# records (scim.users.* and scim.groups.*, naming provisioning:NAME) are checked in
# tests/identity/test_scim.py; the .search routes only read.
SCIM_CHANGES = {("POST", "/scim/v2/.search")} | {
    (method, f"/scim/v2/{endpoint}{tail}") for endpoint in ("Users", "Groups")
    for method, tail in (("POST", ""), ("POST", "/.search"), ("PUT", "/{resource_id}"),
                         ("PATCH", "/{resource_id}"), ("DELETE", "/{resource_id}"))}

# CLI command → (arguments, the action recorded, exit status), run in this order.
CLI_CALLS: dict[tuple[str, ...], tuple[list[str], str, int]] = {
    ("ingest",): (["ingest", "--source", "handbook"], "index.reindex", 0),
    ("index", "rollback"): (["index", "rollback"], "index.rollback", 0),
    ("keys", "create"): (["keys", "create", "newcomer"], "keys.create", 0),
    ("keys", "rotate"): (["keys", "rotate", "{newcomer_key}"], "keys.rotate", 0),
    ("keys", "revoke"): (["keys", "revoke", "newcomer"], "keys.revoke", 0),
    ("acl", "set"): (["acl", "set", DOC, "--allow", "user:dave"], "acl.set", 0),
    ("acl", "clear"): (["acl", "clear", DOC], "acl.clear", 0),
    ("quarantine", "add"): (["quarantine", "add", "--doc", DOC, "--reason", "t"],
                            "quarantine.add", 0),
    ("quarantine", "release"): (["quarantine", "release", "--doc", DOC],
                                "quarantine.release", 0),
    ("pause",): (["pause", "generation", "--reason", "t"], "pause", 0),
    ("resume",): (["resume", "generation"], "resume", 0),
    ("users", "deactivate"): (["users", "deactivate", "erin", "--reason", "t"],
                              "users.deactivate", 0),
    ("users", "activate"): (["users", "activate", "erin"], "users.activate", 0),
    ("policy", "add"): (["policy", "add", "g, user:erin, group:staff"], "policy.change", 0),
    ("policy", "remove"): (["policy", "remove", "g, user:erin, group:staff"], "policy.change", 0),
}
# Commands that only read (`pause` with no TARGET shows the switch, and is in CLI_CALLS too).
CLI_READS = {("serve",), ("index", "versions"), ("acl", "show"), ("policy", "show"),
             ("policy", "explain"), ("quarantine", "list"), ("audit", "verify"),
             ("audit", "anchor"), ("eval", "beir"), ("db", "status"), ("keys", "list"),
             ("users", "list"), ("report",), ("record",)}
# Commands on the PostgreSQL control plane itself, which this file's world (files) has none of:
# their records ("db.migrate", "db.import", naming cli:LOGIN) are checked in
# tests/control/test_postgres.py::test_db_commands_migrate_import_and_are_on_record.
CLI_DATABASE = {("db", "migrate"), ("db", "import")}


def _cli_commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()
                  ) -> set[tuple[str, ...]]:
    found: set[tuple[str, ...]] = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found |= _cli_commands(sub, (*prefix, name)) or {(*prefix, name)}
    return found


def _newcomer_key(deployed: Deployment) -> str:
    active = [k for k in open_keys(deployed.settings).list_keys("newcomer")
              if k.state() == "active"]
    return active[-1].id if active else "0" * 16


def _records(deployed: Deployment) -> list[dict[str, Any]]:
    log = deployed.settings.audit_log
    lines = log.read_text(encoding="utf-8").splitlines() if log.exists() else []
    return [json.loads(line) for line in lines]


def test_every_changing_route_and_every_cli_command_has_a_call_here():
    app_routes = {(method, route.path) for module in ROUTERS for route in module.router.routes
                  for method in route.methods - {"HEAD", "GET"}}
    assert app_routes - RETRIEVALS - OWN_CALLS - SCIM_CHANGES == set(HTTP_CALLS)
    assert app_routes >= SCIM_CHANGES
    assert _cli_commands(build_parser()) == set(CLI_CALLS) | CLI_READS | CLI_DATABASE
    every_action = set(ACTIONS.values())
    assert {call[3] for call in HTTP_CALLS.values()} == every_action
    assert {call[1] for call in CLI_CALLS.values()} == every_action


@pytest.fixture(scope="module")
def admin_world(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder
                ) -> Iterator[Deployment]:
    with serve_example(tmp_path_factory.mktemp("admin-audit"), embedder) as deployed:
        yield deployed


def test_each_admin_call_over_http_writes_one_record_naming_the_caller(admin_world: Deployment):
    with admin_world.client("root") as admin:
        for (method, _), (path, body, status, action, outcome) in HTTP_CALLS.items():
            path = path.replace("{newcomer_key}", _newcomer_key(admin_world))
            before = len(_records(admin_world))
            if action == "index.reindex" and outcome == "refused":
                with build_lock(admin_world.settings.data_dir):
                    response = admin.request(method, path, json=body)
            else:
                response = admin.request(method, path, json=body)
            assert response.status_code == status, (path, response.text)
            new = _records(admin_world)[before:]
            if status == 202:  # (each poll of the job leaves a record of its own)
                assert wait_for_job(admin, response.json()["job_id"])["state"] == "succeeded"
            assert [(r["action"], r["caller"], r["outcome"]) for r in new] == [
                (action, "user:root", outcome)], (path, new)
            assert new[0]["request_id"] == response.headers["X-Request-ID"]


def test_each_admin_cli_command_writes_one_record_naming_the_caller(
    admin_world: Deployment, capsys: pytest.CaptureFixture[str]
):
    config = ["--config", str(admin_world.config)]
    for args, action, status in CLI_CALLS.values():
        args = [a.replace("{newcomer_key}", _newcomer_key(admin_world)) for a in args]
        before = len(_records(admin_world))
        assert main([*args, *config]) == status, (args, capsys.readouterr())
        new = _records(admin_world)[before:]
        assert [(r["action"], r["caller"], r["outcome"]) for r in new] == [
            (action, f"cli:{getpass.getuser()}", "ok")], (args, new)
    capsys.readouterr()


def test_a_refused_cli_action_is_recorded_once_too(admin_world: Deployment,
                                                   capsys: pytest.CaptureFixture[str]):
    before = len(_records(admin_world))
    assert main(["quarantine", "add", "--source", "nosuch", "--reason", "t",
                 "--config", str(admin_world.config)]) == 1
    assert "no source named 'nosuch'" in capsys.readouterr().err
    new = _records(admin_world)[before:]
    assert [(r["action"], r["outcome"]) for r in new] == [("quarantine.add", "refused")]
    assert "nosuch" in new[0]["reason"]


@pytest.mark.parametrize(("user", "method", "path", "body", "status", "action"), [
    ("root", "GET", "/v1/admin/policy", None, 200, "request"),
    ("root", "POST", "/v1/admin/keys", b"{not json", 400, "request"),
    ("root", "POST", "/v1/admin/keys", {"user": "a b"}, 422, "request"),
    ("alice", "GET", "/v1/admin/quarantine", None, 403, "request"),
    ("alice", "GET", "/v1/models", None, 200, "request"),
    ("alice", "GET", "/v1/no-such-route", None, 404, "request"),
    ("alice", "POST", "/v1/search", {"query": "parental leave"}, 200, "search"),
    ("alice", "POST", "/v1/search", b"{not json", 400, "/v1/search"),
    ("alice", "POST", "/v1/chat", {"message": "parental leave?", "stream": True}, 200, "chat"),
])
def test_every_api_request_leaves_exactly_one_record(
    admin_world: Deployment, user: str, method: str, path: str, body: Any, status: int,
    action: str
):
    before = len(_records(admin_world))
    with admin_world.client(user) as client:
        if isinstance(body, bytes):
            response = client.request(method, path, content=body,
                                      headers={"Content-Type": "application/json"})
        else:
            response = client.request(method, path, json=body)
        response.read()
    assert response.status_code == status, response.text
    new = _records(admin_world)[before:]
    assert [r["action"] for r in new] == [action], new
    assert new[0]["request_id"] == response.headers["X-Request-ID"]
    if action == "request":
        # A body that does not parse is refused before the key is looked at, and a route that
        # does not exist has none to look at: no caller then.
        caller = None if status in (400, 404) else f"user:{user}"
        assert (new[0]["caller"], new[0]["status"], new[0]["path"]) == (caller, status, path)
