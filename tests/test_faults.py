"""Disk and store faults, through the real API: a request that fails after its audit record is
recorded as failed, /healthz says what is not ready, pause and resume on a full disk answer 507
and change nothing, and an index on a filesystem that cannot back its memory maps fails its
requests with 503 instead of killing the server.

The faults are real where this machine allows it (a small tmpfs, mounted here as root; skipped
where mounting is refused) and simulated otherwise (the same conditions raised in-process), so
CI covers every path either way.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

import retrieval.readiness as readiness
from api.app import create_app
from application.services import Services, build_services
from application.settings import Settings, load_settings
from control.audit import request_outcomes, verify_audit_log
from retrieval.embedder import Embedder
from retrieval.errors import AuditWriteError
from tests.conftest import REPO, LiveServer
from tests.llm_world import ingest_world, write_world
from tests.processes import free_port

pytestmark = pytest.mark.e2e

QUERY = {"query": "When does the office close for the winter break?", "top_k": 3}


@dataclass
class World:
    settings: Settings
    services: Services
    url: str
    keys: dict[str, str]

    def client(self, user: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.keys[user]}"} if user else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)


@contextmanager
def serve(root: Path, embedder: Embedder) -> Iterator[World]:
    """The small world without an LLM, ingested, keys issued, served in this process."""
    config = write_world(root, llm_url=None)
    keys = ingest_world(config, embedder)
    settings = load_settings(config)
    services = build_services(settings, embedder=embedder)
    with LiveServer(create_app(settings, services)) as url:
        yield World(settings, services, url, keys)


@contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` mounted on `path`; the test is skipped where mounting is refused."""
    path.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                              capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"cannot mount a tmpfs here ({exc}); the simulated tests cover this")
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or done.returncode}); "
                    "the simulated tests cover this")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=30, check=False)


def fill(directory: Path) -> Path:
    """Fill the filesystem of `directory` to the last byte; returns the file doing it."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for block in (1 << 16, 1 << 12, 1):
            try:
                while True:
                    os.write(fd, b"\0" * block)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
    finally:
        os.close(fd)
    return filler


def search(world: World, user: str = "dave") -> httpx.Response:
    with world.client(user) as client:
        return client.post("/v1/search", json=QUERY)


def pause_state(world: World) -> dict[str, Any]:
    with world.client("root") as admin:
        response = admin.get("/v1/admin/pause")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Iterator[World]:
    """Shared by the simulated-fault tests below: each puts back what it breaks."""
    with serve(tmp_path_factory.mktemp("faults"), embedder) as served:
        yield served


def test_a_request_that_fails_after_its_record_is_recorded_as_failed(
        world: World, monkeypatch: pytest.MonkeyPatch):
    real = world.services.retrieval.search

    def fails_after_the_record(*args: Any, **kwargs: Any) -> Any:
        real(*args, **kwargs)  # audited "ok" here
        raise RuntimeError("the response could not be built")

    monkeypatch.setattr(world.services.retrieval, "search", fails_after_the_record)
    response = search(world)
    monkeypatch.undo()
    assert response.status_code == 500 and "Traceback" not in response.text
    request_id = response.headers["X-Request-ID"]
    records = [r for r in _records(world) if r.get("request_id") == request_id]
    assert [r["outcome"] for r in records] == ["ok", "failed"]
    assert "RuntimeError" in records[1]["reason"]
    assert request_outcomes(world.settings.audit_log)[request_id] == "failed"
    result = verify_audit_log(world.settings.audit_log)
    assert result.ok and result.failed_later >= 1, result.problems


def test_healthz_says_which_check_fails(world: World, monkeypatch: pytest.MonkeyPatch):
    with world.client() as client:
        ok = client.get("/healthz")
        assert ok.status_code == 200
        assert set(ok.json()) == {"status", "index_version", "generation_paused"}
        assert ok.json()["status"] == "ok"

        monkeypatch.setattr(readiness, "MIN_FREE_BYTES", 1 << 62)  # a full audit filesystem
        full = client.get("/healthz")
        monkeypatch.undo()
        assert full.status_code == 503
        assert full.json()["status"] == "not ready"
        assert set(full.json()["problems"]) == {"audit_log"}
        assert "is full" in full.json()["problems"]["audit_log"]

        current = world.settings.index_dir / "CURRENT"
        served = current.read_text(encoding="utf-8")
        current.write_text("v20000101T000000-dead\n", encoding="utf-8")  # no such version
        try:
            broken = client.get("/healthz")
        finally:
            current.write_text(served, encoding="utf-8")
        assert broken.status_code == 503
        assert set(broken.json()["problems"]) == {"index"}
        assert "v20000101T000000-dead" in broken.json()["problems"]["index"]
        assert client.get("/healthz").status_code == 200


def test_pause_and_resume_on_a_full_disk_answer_507_and_change_nothing(
        world: World, monkeypatch: pytest.MonkeyPatch):
    before = pause_state(world)
    with world.client("root") as admin:
        monkeypatch.setattr(readiness, "MIN_FREE_BYTES", 1 << 62)
        refused = admin.post("/v1/admin/pause", json={"target": "service", "reason": "x"})
        monkeypatch.undo()
        assert refused.status_code == 507, refused.text
        assert refused.json()["error"].startswith("the data directory is full: ")
        assert pause_state(world) == before

        # The disk fills between the check and the audit record: the same answer, no change.
        def full(record: dict[str, Any]) -> dict[str, Any]:
            raise AuditWriteError("audit log could not be written") from OSError(
                errno.ENOSPC, os.strerror(errno.ENOSPC))

        monkeypatch.setattr(world.services.audit, "append", full)
        raced = admin.post("/v1/admin/pause", json={"target": "generation", "reason": "x"})
        monkeypatch.undo()
        assert raced.status_code == 507, raced.text
        assert pause_state(world) == before
        assert not [r for r in _records(world) if r.get("action") == "pause"]


def _records(world: World) -> list[dict[str, Any]]:
    text = world.settings.audit_log.read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()]


def test_a_full_audit_filesystem_for_real(tmp_path: Path, embedder: Embedder):
    with tmpfs(tmp_path / "data" / "audit", "4m") as audit_dir, serve(
            tmp_path, embedder) as world:
        assert world.settings.audit_log.parent == audit_dir
        for _ in range(3):
            assert search(world).status_code == 200
        with world.client("root") as admin:
            assert admin.post("/v1/admin/pause", json={"target": "generation",
                                                       "reason": "review"}).status_code == 200
        paused = pause_state(world)
        filler = fill(audit_dir)

        with world.client() as client:
            health = client.get("/healthz")
        assert health.status_code == 503 and "is full" in health.json()["problems"]["audit_log"]
        failed = [search(world) for _ in range(5)]
        assert [r.status_code for r in failed] == [500] * 5
        assert all("audit log could not be written" in r.json()["error"] for r in failed)
        with world.client("root") as admin:
            for path, body in (("/v1/admin/resume", {"target": "generation"}),
                               ("/v1/admin/pause", {"target": "service", "reason": "x"})):
                refused = admin.post(path, json=body)
                assert refused.status_code == 507, refused.text
                assert refused.json()["error"].startswith("the data directory is full: ")
        assert pause_state(world) == paused

        # No request that got a 500 is on record as answered; the chain is intact.
        outcomes = request_outcomes(world.settings.audit_log)
        for response in failed:
            assert outcomes.get(response.headers["X-Request-ID"]) in (None, "failed")
        assert verify_audit_log(world.settings.audit_log).ok

        filler.unlink()
        with world.client() as client:
            assert client.get("/healthz").status_code == 200
        answered = search(world)
        assert answered.status_code == 200
        outcomes = request_outcomes(world.settings.audit_log)
        assert outcomes[answered.headers["X-Request-ID"]] == "ok"
        result = verify_audit_log(world.settings.audit_log)
        assert result.ok, result.problems


def test_an_index_that_cannot_be_mapped_fails_requests_and_the_server_lives(
        tmp_path: Path, embedder: Embedder):
    """The embedded engine maps a version's files; on a full tmpfs, touching them raises
    SIGBUS. The server probes a version in a child process first, so it answers 503 instead."""
    config = write_world(tmp_path, llm_url=None)
    with tmpfs(tmp_path / "data" / "index", "64m") as index_dir:
        keys = ingest_world(config, embedder)
        filler = fill(index_dir)
        log = tmp_path / "server.log"
        port = free_port()
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "api.cli", "--config", str(config), "serve",
                 "--host", "127.0.0.1", "--port", str(port)],
                cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            health = _first_answer(proc, f"{url}/healthz", log)
            assert health.status_code == 503, health.text
            assert "SIGBUS" in health.json()["problems"]["index"]
            headers = {"Authorization": f"Bearer {keys['dave']}"}
            refused = httpx.post(f"{url}/v1/search", json=QUERY, headers=headers, timeout=60)
            assert refused.status_code == 503, refused.text
            assert "cannot be read" in refused.json()["error"]
            assert proc.poll() is None, log.read_text(encoding="utf-8")
            assert "cannot be served" in log.read_text(encoding="utf-8")

            # Room again: the version is probed again (after RETRY_S) and served.
            filler.unlink()
            deadline = time.monotonic() + 120
            while httpx.get(f"{url}/healthz", timeout=30).status_code != 200:
                assert time.monotonic() < deadline, log.read_text(encoding="utf-8")
                assert proc.poll() is None, log.read_text(encoding="utf-8")
                time.sleep(1)
            answered = httpx.post(f"{url}/v1/search", json=QUERY, headers=headers, timeout=60)
            assert answered.status_code == 200, answered.text
            assert answered.json()["results"]

            # Should a fatal signal reach the server all the same, it leaves a line in the log.
            proc.send_signal(signal.SIGBUS)
            assert proc.wait(timeout=60) == -signal.SIGBUS
            assert "Fatal Python error: Bus error" in log.read_text(encoding="utf-8")
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=30)


def _first_answer(proc: subprocess.Popen[bytes], url: str, log: Path) -> httpx.Response:
    """The first HTTP answer from a server starting up, whatever its status."""
    deadline = time.monotonic() + 120
    while True:
        assert proc.poll() is None, f"server exited with {proc.returncode}:\n{log.read_text()}"
        assert time.monotonic() < deadline, f"server did not answer in 120 s:\n{log.read_text()}"
        try:
            return httpx.get(url, timeout=30)
        except httpx.TransportError:
            time.sleep(0.2)
