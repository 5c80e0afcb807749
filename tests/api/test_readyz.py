"""GET /readyz on the example deployment: 200 with every check when ready, 503 naming the check
that fails when the audit log cannot be written; /healthz stays as it was."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx

from retrieval.embedder import Embedder
from tests.conftest import Deployment, serve_example
from tests.fakes.openai_server import fake_llm
from tests.llm_world import serve_world
from tests.processes import free_port


def test_readyz_is_200_with_its_checks_when_ready(deployment: Deployment):
    response = httpx.get(deployment.url + "/readyz", timeout=30)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ready" and body["not_ready"] == []
    assert set(body["checks"]) == {"index", "policy", "audit_log"}  # no database, no LLM
    assert all(check["ok"] for check in body["checks"].values())
    assert "is loaded" in body["checks"]["index"]["detail"]
    assert "in force" in body["checks"]["policy"]["detail"]


def test_readyz_is_503_naming_an_unwritable_audit_log(tmp_path: Path, embedder: Embedder):
    with serve_example(tmp_path, embedder) as deployed:
        audit_dir = deployed.settings.audit_log.parent
        shutil.rmtree(audit_dir, ignore_errors=True)  # made by the first record
        # A file where the audit directory must be: nothing can be appended (root included).
        audit_dir.write_text("not a directory")
        response = httpx.get(deployed.url + "/readyz", timeout=30)
        assert response.status_code == 503, response.text
        body = response.json()
        assert body["status"] == "not ready" and body["not_ready"] == ["audit_log"]
        assert not body["checks"]["audit_log"]["ok"]
        assert "not writable" in body["checks"]["audit_log"]["detail"]
        assert str(tmp_path) not in response.text  # no path shown to anyone
        assert body["checks"]["index"]["ok"] and body["checks"]["policy"]["ok"]
        assert httpx.get(deployed.url + "/healthz", timeout=30).status_code == 503


def test_readyz_checks_the_llm_when_one_is_configured(tmp_path: Path, embedder: Embedder):
    with fake_llm() as llm, serve_world(tmp_path / "up", embedder, llm_url=llm.url) as deployed:
        up = httpx.get(deployed.url + "/readyz", timeout=30)
        assert up.status_code == 200, up.text
        assert up.json()["checks"]["llm"] == {"ok": True, "detail": "the endpoint answers"}
    port = free_port()  # nothing listens there
    with serve_world(tmp_path / "down", embedder, llm_url=f"http://127.0.0.1:{port}/v1",
                     timeout_s=2.0) as deployed:
        down = httpx.get(deployed.url + "/readyz", timeout=30)
        assert down.status_code == 503, down.text
        assert down.json()["not_ready"] == ["llm"]
        assert "cannot be reached" in down.json()["checks"]["llm"]["detail"]
        assert str(port) not in down.text  # the address is not shown
