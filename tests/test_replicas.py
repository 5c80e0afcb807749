"""Two `clearance serve` processes over one index and one PostgreSQL control plane.

A change made through either replica (a key revocation, a membership change, an ACL override, a
quarantine, a pause, a re-index job) is in force on the other from its next request, and the
audit records both write verify as one chain.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from api.cli import main
from application.services import close_databases, open_catalog, open_keys
from application.settings import load_settings
from control.pg_audit import PgAuditLog
from control.postgres import Database
from ingest.pipeline import build_index_version
from retrieval.embedder import Embedder
from tests.conftest import shared_parser, write_example_config
from tests.postgres_server import PostgresServer
from tests.processes import served
from tests.test_acl_changes import QUERY, WELCOME

pytestmark = pytest.mark.e2e

SALARY = "hr:parental-leave.md"  # readable by alice (group:hr), not by dave (group:staff)


@dataclass
class Replicas:
    config: Path
    urls: tuple[str, str]
    keys: dict[str, str]

    def call(self, replica: int, user: str, method: str, path: str, **kw: object
             ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.keys[user]}"}
        return httpx.request(method, self.urls[replica] + path, headers=headers, timeout=60,
                             **kw)  # type: ignore[arg-type]

    def seen(self, replica: int, user: str) -> set[str]:
        response = self.call(replica, user, "POST", "/v1/search",
                             json={"query": QUERY, "top_k": 50})
        assert response.status_code == 200, response.text
        return {r["doc_id"] for r in response.json()["results"]}

    def admin(self, replica: int, method: str, path: str, **kw: object) -> httpx.Response:
        response = self.call(replica, "root", method, "/v1/admin" + path, **kw)
        assert response.status_code in (200, 201, 202), response.text
        return response


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder,
             postgres: PostgresServer) -> Iterator[Replicas]:
    root = tmp_path_factory.mktemp("replicas")
    url = postgres.create_migrated_database()
    config = write_example_config(root)
    config.write_text(f'database_url = "{url}"\n' + config.read_text("utf-8"), "utf-8")
    assert main(["db", "import", "--config", str(config)]) == 0  # the example policy
    settings = load_settings(config)
    build_index_version(settings.sources, settings.ingest, catalog=open_catalog(settings),
                        embedder=embedder, parser=shared_parser())
    keys = {u: open_keys(settings).create(u) for u in ("root", "alice", "bob", "dave")}
    close_databases()
    with served(config, root / "a.log") as (_, a), served(config, root / "b.log") as (_, b):
        yield Replicas(config, (a, b), keys)


def test_a_membership_change_through_one_applies_on_the_other(replicas: Replicas):
    assert SALARY in replicas.seen(0, "alice") and SALARY not in replicas.seen(1, "dave")
    replicas.admin(0, "POST", "/policy/changes", json={"add": ["g, user:dave, group:hr"]})
    assert SALARY in replicas.seen(1, "dave")
    replicas.admin(1, "POST", "/policy/changes", json={"remove": ["g, user:dave, group:hr"]})
    assert SALARY not in replicas.seen(0, "dave")


def test_an_acl_override_through_one_applies_on_the_other(replicas: Replicas):
    replicas.admin(1, "PUT", f"/documents/{WELCOME}/acl", json={"allow": ["user:root"]})
    assert WELCOME not in replicas.seen(0, "dave")
    assert WELCOME in replicas.seen(0, "root")
    replicas.admin(0, "DELETE", f"/documents/{WELCOME}/acl")
    assert WELCOME in replicas.seen(1, "dave")


def test_a_quarantine_through_one_applies_on_the_other(replicas: Replicas):
    replicas.admin(0, "POST", "/quarantine", json={"kind": "document", "target": SALARY,
                                                   "reason": "replica test"})
    assert SALARY not in replicas.seen(1, "alice")
    listed = replicas.admin(1, "GET", "/quarantine").json()["entries"]
    assert [e["target"] for e in listed] == [SALARY]
    replicas.admin(1, "POST", "/quarantine/release", json={"kind": "document", "target": SALARY})
    assert SALARY in replicas.seen(0, "alice")


def test_a_pause_through_one_applies_on_the_other(replicas: Replicas):
    replicas.admin(1, "POST", "/pause", json={"target": "service", "reason": "incident"})
    refused = replicas.call(0, "alice", "POST", "/v1/search", json={"query": "leave"})
    assert refused.status_code == 503 and "paused" in refused.text
    replicas.admin(0, "POST", "/resume", json={"target": "service"})
    assert replicas.seen(1, "alice")


def test_a_key_revoked_through_one_is_refused_by_the_other(replicas: Replicas):
    assert replicas.seen(1, "bob")
    replicas.admin(0, "DELETE", "/keys/bob")
    assert replicas.call(1, "bob", "POST", "/v1/search", json={"query": "x"}).status_code == 401
    assert replicas.call(0, "bob", "POST", "/v1/search", json={"query": "x"}).status_code == 401


def test_a_reindex_started_on_one_is_followed_on_the_other(replicas: Replicas):
    job = replicas.admin(0, "POST", "/sources/handbook/reindex").json()
    deadline = time.monotonic() + 300
    while True:
        state = replicas.admin(1, "GET", f"/jobs/{job['job_id']}").json()
        if state["state"] in ("succeeded", "failed") or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert state["state"] == "succeeded", state
    version = state["version_id"]
    for replica in (0, 1):
        versions = replicas.admin(replica, "GET", "/index/versions").json()
        assert versions["current"] == version


def test_the_audit_records_of_both_verify_as_one_chain(replicas: Replicas):
    ids = set()
    for replica in (0, 1):
        response = replicas.call(replica, "alice", "POST", "/v1/search", json={"query": "leave"})
        ids.add(response.json()["request_id"])
        ids.add(replicas.admin(replica, "POST", "/pause", json={
            "target": "generation", "reason": f"replica {replica}"}).headers["x-request-id"])
        ids.add(replicas.admin(1 - replica, "POST", "/resume", json={
            "target": "generation"}).headers["x-request-id"])
    for replica in (0, 1):
        verdict = replicas.admin(replica, "GET", "/audit/verify").json()
        assert verdict["ok"], verdict["problems"]
    assert main(["audit", "verify", "--config", str(replicas.config)]) == 0
    settings = load_settings(replicas.config)
    db = Database(settings.database_url.get_secret_value(), max_size=1)  # type: ignore[union-attr]
    try:
        records = PgAuditLog(db, settings.audit_key).records()
    finally:
        db.close()
    close_databases()
    assert [r["seq"] for r in records] == list(range(1, len(records) + 1))
    assert ids <= {r.get("request_id") for r in records}
    ours = [(r["action"], r.get("reason") or r.get("target")) for r in records
            if r.get("request_id") in ids and r["action"] in ("pause", "resume")]
    assert ours == [("pause", "replica 0"), ("resume", "generation"),
                    ("pause", "replica 1"), ("resume", "generation")]
