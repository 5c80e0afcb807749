"""Admin API over HTTP: permissions, re-index jobs in a child process, versions and rollback."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from retrieval.embedder import Embedder
from tests.conftest import EXAMPLE_USERS, Deployment, serve_example

pytestmark = pytest.mark.e2e

ADMIN_CALLS: list[tuple[str, str, dict | None]] = [
    ("POST", "/v1/admin/reindex", None),
    ("POST", "/v1/admin/sources/handbook/reindex", None),
    ("GET", "/v1/admin/jobs/job-x", None),
    ("GET", "/v1/admin/index/versions", None),
    ("POST", "/v1/admin/index/rollback", {}),
    ("GET", "/v1/admin/policy", None),
    ("POST", "/v1/admin/policy/changes", {"add": ["g, user:dave, role:admin"]}),
    ("GET", "/v1/admin/policy/explain?user=dave&doc=handbook:welcome.md", None),
    ("PUT", "/v1/admin/documents/handbook:welcome.md/acl", {"allow": ["user:dave"]}),
    ("DELETE", "/v1/admin/documents/handbook:welcome.md/acl", None),
    ("GET", "/v1/admin/quarantine", None),
    ("POST", "/v1/admin/quarantine", {"kind": "source", "target": "handbook"}),
    ("POST", "/v1/admin/quarantine/release", {"kind": "source", "target": "handbook"}),
    ("POST", "/v1/admin/keys", {"user": "mallory"}),
    ("DELETE", "/v1/admin/keys/root", None),
    ("GET", "/v1/admin/keys", None),
    ("POST", "/v1/admin/keys/0123456789abcdef/rotate", {"overlap_hours": 1}),
    ("POST", "/v1/admin/keys/0123456789abcdef/revoke", None),
    ("GET", "/v1/admin/users/deactivated", None),
    ("POST", "/v1/admin/users/root/deactivate", {"reason": "staff try"}),
    ("POST", "/v1/admin/users/dave/activate", None),
    ("GET", "/v1/admin/audit/verify", None),
    ("GET", "/v1/admin/report", None),
    ("GET", "/v1/admin/record", None),
    ("GET", "/v1/admin/pause", None),
    ("POST", "/v1/admin/pause", {"target": "service", "reason": "staff try"}),
    ("POST", "/v1/admin/resume", {"target": "service"}),
]


@pytest.fixture(scope="module")
def admin_deployment(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder
                     ) -> Iterator[Deployment]:
    with serve_example(tmp_path_factory.mktemp("admin"), embedder) as deployed:
        yield deployed


def wait_for_job(client: httpx.Client, job_id: str, timeout: float = 240) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/v1/admin/jobs/{job_id}").json()
        if job["state"] in {"succeeded", "failed"}:
            return job
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} did not finish in {timeout} s")


@pytest.mark.parametrize("user", [u for u in EXAMPLE_USERS if u != "root"])
def test_staff_get_403_on_every_admin_route(admin_deployment: Deployment, user: str):
    with admin_deployment.client(user) as client:
        for method, path, body in ADMIN_CALLS:
            response = client.request(method, path, json=body)
            assert response.status_code == 403, (path, response.text)
            assert "may not" in response.json()["error"]


def test_the_403_list_covers_every_admin_route(admin_deployment: Deployment):
    with admin_deployment.client() as client:
        spec = client.get("/openapi.json").json()
    routes = {(method.upper(), path) for path, item in spec["paths"].items()
              for method in item if path.startswith("/v1/admin")}
    called = set()
    for method, path, _ in ADMIN_CALLS:
        template = next((p for m, p in routes if m == method and _fits(p, path)), None)
        called.add((method, template))
    assert routes <= called, f"admin routes missing from ADMIN_CALLS: {routes - called}"


def _fits(template: str, path: str) -> bool:
    # re.escape turns "{name}" into "\{name\}": a path parameter matches one or more
    # characters; a query string may follow.
    pattern = re.sub(r"\\\{[^}]+\\\}", "[^?]+", re.escape(template)) + r"(\?.*)?"
    return re.fullmatch(pattern, path) is not None


def test_admin_routes_need_a_key(admin_deployment: Deployment):
    with admin_deployment.client() as client:
        for method, path, body in ADMIN_CALLS:
            assert client.request(method, path, json=body).status_code == 401


def test_reindex_while_serving_then_rollback(admin_deployment: Deployment):
    first = admin_deployment.first_report.version_id
    query = {"query": "How many days of annual leave do we get?", "top_k": 5}
    with admin_deployment.client("dave") as client:
        expected = [r["chunk_id"] for r in client.post("/v1/search", json=query).json()["results"]]

    seen: list[tuple[int, str | None, list[str]]] = []
    stop = threading.Event()

    def keep_querying() -> None:
        with admin_deployment.client("dave") as client:
            while not stop.is_set():
                response = client.post("/v1/search", json=query)
                body = response.json()
                seen.append((response.status_code, body.get("index_version"),
                             [r["chunk_id"] for r in body.get("results", [])]))

    querier = threading.Thread(target=keep_querying)
    querier.start()
    try:
        with admin_deployment.client("root") as admin:
            started = admin.post("/v1/admin/reindex")
            assert started.status_code == 202, started.text
            job_id = started.json()["job_id"]
            busy = admin.post("/v1/admin/sources/handbook/reindex")
            assert busy.status_code == 409
            assert busy.json()["job_id"] == job_id
            job = wait_for_job(admin, job_id)
            assert job["state"] == "succeeded", job
            assert job["documents_done"] == job["documents_total"] == 15
            assert job["chunks"] > 0
            second = job["version_id"]
            time.sleep(0.5)  # a few queries on the new version
    finally:
        stop.set()
        querier.join()

    assert second != first
    assert seen and all(status == 200 for status, _, _ in seen)
    assert {version for _, version, _ in seen} <= {first, second}
    assert any(version == second for _, version, _ in seen)
    # The corpus did not change, so both complete versions answer with the same chunks.
    assert all(chunks == expected for _, _, chunks in seen)

    with admin_deployment.client("root") as admin:
        versions = admin.get("/v1/admin/index/versions").json()
        assert versions["current"] == second
        listed = {v["id"]: v for v in versions["versions"]}
        assert listed[second]["job_id"] == job_id and listed[second]["current"]
        assert listed[first]["embedder"] == listed[second]["embedder"]

        back = admin.post("/v1/admin/index/rollback", json={})
        assert back.status_code == 200 and back.json()["index_version"] == first
        with admin_deployment.client("dave") as client:
            assert client.post("/v1/search", json=query).json()["index_version"] == first
        missing = admin.post("/v1/admin/index/rollback", json={"to": "v-missing"})
        assert missing.status_code == 404
        assert admin.get("/v1/admin/jobs/job-unknown").status_code == 404
        assert admin.post("/v1/admin/sources/nope/reindex").status_code == 404


def test_a_source_reindex_reads_only_that_source(admin_deployment: Deployment):
    handbook = admin_deployment.root / "docs" / "handbook"
    files = [p for p in handbook.rglob("*") if p.is_file() and not p.name.startswith(".")]
    with admin_deployment.client("root") as admin:
        started = admin.post("/v1/admin/sources/handbook/reindex")
        assert started.status_code == 202, started.text
        job = wait_for_job(admin, started.json()["job_id"])
        assert job["state"] == "succeeded", job
        assert job["source"] == "handbook"
        assert job["documents_done"] == job["documents_total"] == len(files) == 4
        listed = {v["id"]: v for v in admin.get("/v1/admin/index/versions").json()["versions"]}
    # The other sources were carried over: the new version still holds every document.
    assert listed[job["version_id"]]["documents"] == admin_deployment.first_report.documents


def test_a_source_added_to_the_config_can_be_reindexed_and_quarantined_without_a_restart(
        tmp_path: Path, embedder: Embedder):
    with serve_example(tmp_path, embedder) as deployed, deployed.client("root") as admin:
        assert admin.post("/v1/admin/sources/contracts/reindex").status_code == 404
        (tmp_path / "docs" / "contracts").mkdir()
        (tmp_path / "docs" / "contracts" / "retention.md").write_text(
            "# Retention\n\nContracts are kept for ten years after they end.\n", encoding="utf-8")
        with deployed.config.open("a", encoding="utf-8") as config:
            config.write('\n[[sources]]\nname = "contracts"\npath = "docs/contracts"\n'
                         'owner = "gc"\nacl = [{ glob = "*", allow = ["group:staff"] }]\n')
        started = admin.post("/v1/admin/sources/contracts/reindex")
        assert started.status_code == 202, started.text
        job = wait_for_job(admin, started.json()["job_id"])
        assert job["state"] == "succeeded", job
        assert job["source"] == "contracts" and job["documents_total"] == 1
        held = admin.post("/v1/admin/quarantine", json={"kind": "source", "target": "contracts"})
        assert held.status_code == 200, held.text
