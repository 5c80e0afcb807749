"""Pausing generation or the whole service, through the CLI and the admin API, survives a
restart of the server process and is audited. The LLM is a FAKE OpenAI-protocol server."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest

from retrieval.embedder import Embedder
from tests.fakes.openai_server import fake_llm
from tests.llm_world import ingest_world, write_world
from tests.processes import clearance, served

pytestmark = pytest.mark.e2e

QUESTION = {"message": "When does the office close for the winter break?"}


def post(url: str, path: str, key: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{url}{path}", json=body, headers={"Authorization": f"Bearer {key}"},
                      timeout=60)


def audit_actions(config: Path) -> list[tuple[str, str | None, str | None]]:
    lines = (config.parent / "data" / "audit" / "audit.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    return [(r["action"], r.get("caller"), r.get("target") or r.get("outcome"))
            for r in records if r["action"] in ("pause", "resume") or r["outcome"] == "refused"]


def test_pause_and_resume_survive_a_restart_and_are_audited(tmp_path: Path,
                                                           embedder: Embedder):
    with fake_llm() as llm:
        config = write_world(tmp_path, llm_url=llm.url, timeout_s=5)
        keys = ingest_world(config, embedder)
        dave, root = keys["dave"], keys["root"]

        paused = clearance(config, "pause", "service", "--reason", "maintenance window")
        assert paused.returncode == 0, paused.stderr
        assert "service paused since" in paused.stdout
        assert clearance(config, "pause", "service").returncode == 1  # --reason is required

        with served(config, tmp_path / "server-1.log") as (proc, url):
            refused = post(url, "/v1/chat", dave, QUESTION)
            assert refused.status_code == 503
            assert "paused by an administrator" in refused.json()["error"]
            assert "maintenance window" in refused.json()["error"]
            assert refused.headers["Retry-After"] == "60"
            models = httpx.get(f"{url}/v1/models", headers={"Authorization": f"Bearer {dave}"})
            assert models.status_code == 503
            assert models.json()["error"]["type"] == "service_unavailable"
            assert httpx.get(f"{url}/healthz").json()["status"] == "paused"
            # Staff may not resume; an admin may, and the next request is answered.
            assert post(url, "/v1/admin/resume", dave, {"target": "service"}).status_code == 403
            resumed = post(url, "/v1/admin/resume", root, {"target": "service"})
            assert resumed.status_code == 200 and resumed.json()["service"] is None
            answered = post(url, "/v1/chat", dave, QUESTION).json()
            assert answered["mode"] == "generated"
            assert post(url, "/v1/admin/pause", root, {"target": "generation",
                                                       "reason": "model review"}
                        ).status_code == 200
            asked = len(llm.requests)
            body = post(url, "/v1/chat", dave, QUESTION).json()
            assert body["mode"] == "extractive" and "paused" in body["notice"]
            assert len(llm.requests) == asked  # the model was not called
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)

        with served(config, tmp_path / "server-2.log") as (_, url):
            body = post(url, "/v1/chat", dave, QUESTION).json()
            assert body["mode"] == "extractive" and "paused" in body["notice"]
            state = clearance(config, "pause")
            assert "generation paused by user:root" in state.stdout
            assert "service    running" in state.stdout
            resumed_cli = clearance(config, "resume", "generation")
            assert resumed_cli.returncode == 0, resumed_cli.stderr
            assert post(url, "/v1/chat", dave, QUESTION).json()["mode"] == "generated"
            assert clearance(config, "resume", "generation").returncode == 1  # not paused

    actions = audit_actions(config)
    assert actions[0][0] == "pause" and actions[0][1].startswith("cli:")
    assert actions[0][2] == "service"
    assert ("/v1/chat", "user:dave", "refused") in actions
    assert ("/v1/models", "user:dave", "refused") in actions
    assert ("resume", "user:root", "service") in actions
    assert ("pause", "user:root", "generation") in actions
    assert actions[-1][0] == "resume" and actions[-1][1].startswith("cli:")
    verify = clearance(config, "audit", "verify")
    assert verify.returncode == 0, verify.stdout


def test_an_unreadable_pause_file_pauses_everything_until_resumed(tmp_path: Path):
    from control.pause import PauseSwitch

    switch = PauseSwitch(tmp_path / "pause.json")
    assert not switch.current().service_paused
    switch.pause("generation", by="user:root", reason="r")
    (tmp_path / "pause.json").write_text("{not json")
    state = switch.current()
    assert state.service_paused and state.generation_paused and "cannot be read" in state.problem
    switch.resume("service")
    state = switch.current()
    assert not state.service_paused and state.generation_paused and state.problem is None
