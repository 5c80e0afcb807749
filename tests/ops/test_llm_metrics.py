"""LLM calls in the metrics: a real server asking the fake OpenAI-compatible endpoint counts the
call, its tokens as the endpoint reported them, the answer's mode, and a failure as an error."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from observability import metrics
from retrieval.embedder import Embedder
from tests.fakes.openai_server import fake_llm
from tests.llm_world import ingest_world, write_world
from tests.ops.conftest import TOKEN, value
from tests.processes import served

pytestmark = pytest.mark.e2e
QUESTION = "When are travel expenses reimbursed?"


def test_llm_calls_tokens_and_errors_are_counted(tmp_path: Path, embedder: Embedder):
    with fake_llm() as llm:
        config = write_world(tmp_path, llm_url=llm.url)
        with config.open("a", encoding="utf-8") as out:
            out.write(f'\n[metrics]\ntoken = "{TOKEN}"\n')
        keys = ingest_world(config, embedder)
        with served(config, tmp_path / "serve.log") as (_, url):
            def chat() -> str:
                response = httpx.post(url + "/v1/chat", json={"message": QUESTION},
                                      headers={"Authorization": f"Bearer {keys['dave']}"},
                                      timeout=120)
                assert response.status_code == 200, response.text
                return str(response.json()["mode"])

            answered = chat()
            assert answered in ("generated", "repaired")
            llm.status = 500
            assert chat() == "fallback"
            scrape = httpx.get(url + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"},
                               timeout=30)
    samples = metrics.parse(scrape.text)
    assert value(samples, "clearance_llm_request_duration_seconds_count", outcome="ok") >= 1
    assert value(samples, "clearance_llm_request_duration_seconds_count", outcome="error") == 1
    assert value(samples, "clearance_llm_errors_total", reason="error") == 1
    # The fake reports 123 prompt and 45 completion tokens a call.
    ok_calls = value(samples, "clearance_llm_request_duration_seconds_count", outcome="ok")
    assert value(samples, "clearance_llm_tokens_total", kind="prompt") == 123 * ok_calls
    assert value(samples, "clearance_llm_tokens_total", kind="completion") == 45 * ok_calls
    assert value(samples, "clearance_answers_total", mode=answered) == 1
    assert value(samples, "clearance_answers_total", mode="fallback") == 1
