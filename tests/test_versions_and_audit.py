"""Operator commands against a running server: re-ingest, rollback, and audit verification.

These change their deployment's data, so they run on one of their own.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from retrieval.embedder import Embedder
from tests.conftest import Deployment, serve_example

pytestmark = pytest.mark.e2e

NEW_FACT = "The rooftop cafeteria opens on 3 March 2027 and serves breakfast from 7:30."


@pytest.fixture(scope="module")
def mutable_deployment(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder
                       ) -> Iterator[Deployment]:
    with serve_example(tmp_path_factory.mktemp("mutable"), embedder) as deployed:
        yield deployed


def clearance(deployment: Deployment, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a separate process, as an operator would."""
    return subprocess.run(
        [sys.executable, "-m", "api.cli", "--config", str(deployment.config), *args],
        capture_output=True, text=True, timeout=300, check=False,
    )


def ask(deployment: Deployment, query: str) -> dict:
    with deployment.client("dave") as client:
        response = client.post("/v1/search", json={"query": query, "top_k": 3})
    assert response.status_code == 200, response.text
    return response.json()


def test_reingest_is_served_without_restart_and_rollback_restores_the_first_version(
    mutable_deployment: Deployment,
):
    first = mutable_deployment.first_report.version_id
    assert ask(mutable_deployment, "When does the cafeteria open?")["index_version"] == first

    welcome = mutable_deployment.root / "docs" / "handbook" / "welcome.md"
    welcome.write_text(welcome.read_text() + f"\n\n## Cafeteria\n\n{NEW_FACT}\n")
    ingest = clearance(mutable_deployment, "ingest")
    assert ingest.returncode == 0, ingest.stderr
    assert "skipped finance:unfiled/draft-notes.txt: no ACL rule matches" in ingest.stdout
    assert "14 documents" in ingest.stdout
    second = ingest.stdout.strip().splitlines()[-1].split()[2]
    assert second != first

    answer = ask(mutable_deployment, "When does the rooftop cafeteria open?")
    assert answer["index_version"] == second
    assert "3 March 2027" in answer["results"][0]["text"]

    versions = clearance(mutable_deployment, "index", "versions")
    assert versions.returncode == 0
    lines = versions.stdout.splitlines()
    assert any(line.startswith(f"* {second}") for line in lines)
    assert any(line.startswith(f"  {first}") for line in lines)

    rollback = clearance(mutable_deployment, "index", "rollback")
    assert rollback.returncode == 0, rollback.stderr
    assert f"index version {first} is now current" in rollback.stdout

    answer = ask(mutable_deployment, "When does the rooftop cafeteria open?")
    assert answer["index_version"] == first
    assert all("3 March 2027" not in r["text"] for r in answer["results"])

    forward = clearance(mutable_deployment, "index", "rollback", "--to", second)
    assert forward.returncode == 0
    assert ask(mutable_deployment, "cafeteria")["index_version"] == second
    unknown = clearance(mutable_deployment, "index", "rollback", "--to", "v-nope")
    assert unknown.returncode == 1
    assert "does not exist" in unknown.stderr


def test_every_call_is_audited_with_caller_policy_and_results(mutable_deployment: Deployment):
    with mutable_deployment.client("alice") as client:
        ok = client.post("/v1/search", json={"query": "parental leave"})
        chat = client.post("/v1/chat", json={"message": "What is the salary range of L3?"})
        invalid = client.post("/v1/search", json={"query": ""})
    with mutable_deployment.client() as anonymous:
        refused = anonymous.post("/v1/chat", json={"message": "salary bands"})
    records = [json.loads(line) for line in
               mutable_deployment.settings.audit_log.read_text().splitlines()]
    by_id = {r["request_id"]: r for r in records}

    search = by_id[ok.headers["X-Request-ID"]]
    assert search["caller"] == "user:alice"
    assert search["principals"] == ["group:hr", "group:staff", "user:alice"]
    assert search["policy_version"]
    assert search["index_version"] == ok.json()["index_version"]
    assert [r["chunk_id"] for r in search["results"]] == [
        r["chunk_id"] for r in ok.json()["results"]]
    assert all(r["doc_version"] for r in search["results"])
    assert search["dropped"] == 0 and search["outcome"] == "ok"

    answered = by_id[chat.headers["X-Request-ID"]]
    assert answered["action"] == "chat" and answered["mode"] == chat.json()["mode"]
    assert by_id[invalid.headers["X-Request-ID"]]["outcome"] == "refused"
    assert refused.status_code == 401
    assert by_id[refused.headers["X-Request-ID"]]["reason"] == "missing API key"


def test_audit_verify_passes_on_the_written_log_and_fails_on_tampered_copies(
    mutable_deployment: Deployment, tmp_path: Path
):
    log = mutable_deployment.settings.audit_log
    verified = clearance(mutable_deployment, "audit", "verify")
    assert verified.returncode == 0, verified.stdout
    lines = log.read_text().splitlines(keepends=True)
    assert len(lines) >= 5
    assert f"{len(lines)} records, ok" in verified.stdout

    edited = list(lines)
    record = json.loads(edited[2])
    record["caller"] = "user:someone-else"
    edited[2] = json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n"
    deleted = lines[:2] + lines[3:]
    swapped = [*lines[:1], lines[2], lines[1], *lines[3:]]
    for name, content in (("edited", edited), ("deleted", deleted), ("swapped", swapped)):
        copy = tmp_path / f"{name}.jsonl"
        copy.write_text("".join(content))
        result = clearance(mutable_deployment, "audit", "verify", "--log", str(copy))
        assert result.returncode == 1, (name, result.stdout)
        assert "BROKEN" in result.stdout


def test_a_request_fails_with_500_when_its_audit_record_cannot_be_written(
    mutable_deployment: Deployment,
):
    audit_dir = mutable_deployment.settings.audit_log.parent
    moved = audit_dir.with_name("audit-moved")
    shutil.move(audit_dir, moved)
    audit_dir.write_text("not a directory")  # the log cannot be opened under a file
    try:
        with mutable_deployment.client("dave") as client:
            response = client.post("/v1/search", json={"query": "annual leave"})
        assert response.status_code == 500
        assert "audit log could not be written" in response.json()["error"]
        assert "results" not in response.json()
    finally:
        audit_dir.unlink()
        shutil.move(moved, audit_dir)
