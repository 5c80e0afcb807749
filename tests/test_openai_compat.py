"""The official `openai` package, pointed at a running server on loopback, gets answers with
citations, streamed and not; a wrong key gets 401. /v1/chat streams too."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import Deployment

pytestmark = pytest.mark.e2e

QUESTION = "How many days of annual leave do staff get?"


def client_for(deployment: Deployment, user: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{deployment.url}/v1", api_key=deployment.keys[user],
                         max_retries=0, timeout=60)


def test_a_non_streamed_answer_with_citations(deployment: Deployment):
    completion = client_for(deployment, "dave").chat.completions.create(
        model="gpt-4o-anything", messages=[{"role": "user", "content": QUESTION}])
    assert completion.model == "gpt-4o-anything"  # any model is accepted and echoed
    content = completion.choices[0].message.content or ""
    assert completion.choices[0].finish_reason == "stop"
    extra: dict[str, Any] = completion.model_extra or {}
    citations = extra["citations"]
    assert citations and extra["clearance"]["mode"] == "extractive"
    # The numbered references any client shows, and the same sources in the structured field.
    assert "\n\nSources:\n[1] " in content
    for c in citations:
        assert f"[{c['n']}] {c['title']} ({c['doc_id']}" in content
        assert c["doc_version"][:12] in content and c["ingested_at"] in content
        assert c["source_modified_at"] in content
        assert c["source"] == "handbook"  # dave reads the handbook only
    usage = completion.usage
    assert usage is not None and usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_a_streamed_answer_with_citations(deployment: Deployment):
    stream = client_for(deployment, "dave").chat.completions.create(
        model="clearance", messages=[{"role": "user", "content": QUESTION}], stream=True,
        stream_options={"include_usage": True})
    chunks = list(stream)
    pieces = [c.choices[0].delta.content or "" for c in chunks if c.choices]
    text = "".join(pieces)
    assert len([p for p in pieces if p]) > 3  # it arrived in pieces
    final = next(c for c in chunks if c.choices and c.choices[0].finish_reason == "stop")
    citations = (final.model_extra or {})["citations"]
    assert citations and "\n\nSources:\n[1] " in text
    assert all(f"[{c['n']}] {c['title']}" in text for c in citations)
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    # The streamed text is the non-streamed answer.
    whole = client_for(deployment, "dave").chat.completions.create(
        model="clearance", messages=[{"role": "user", "content": QUESTION}])
    assert whole.choices[0].message.content == text


def test_a_wrong_key_gets_401(deployment: Deployment):
    bad = openai.OpenAI(base_url=f"{deployment.url}/v1", api_key="clr_not-a-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as raised:
        bad.chat.completions.create(model="clearance",
                                    messages=[{"role": "user", "content": QUESTION}])
    assert raised.value.status_code == 401
    assert "unknown, revoked or expired API key" in str(raised.value)
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()


def test_models_lists_clearance(deployment: Deployment):
    ids = [m.id for m in client_for(deployment, "dave").models.list()]
    assert ids == ["clearance"]


def test_what_cannot_be_honoured_is_refused_clearly(deployment: Deployment):
    client = client_for(deployment, "dave")
    with pytest.raises(openai.UnprocessableEntityError, match="last message must have role"):
        client.chat.completions.create(model="m", messages=[
            {"role": "user", "content": QUESTION}, {"role": "assistant", "content": "ok"}])
    with pytest.raises(openai.UnprocessableEntityError, match="only text content"):
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "https://x.example/a.png"}}]}])
    with pytest.raises(openai.UnprocessableEntityError, match="n: Input should be less than"):
        client.chat.completions.create(model="m", n=2,
                                       messages=[{"role": "user", "content": QUESTION}])


def test_a_forbidden_document_stays_out_of_completions(deployment: Deployment):
    # Only carol may read the board's Kestrel documents.
    ask = [{"role": "user", "content": "What did the board decide about Kestrel?"}]
    dave = client_for(deployment, "dave").chat.completions.create(model="m", messages=ask)
    carol = client_for(deployment, "carol").chat.completions.create(model="m", messages=ask)
    assert "finance:board/" not in json.dumps(dave.model_dump())
    assert "finance:board/" in json.dumps(carol.model_dump())


def test_chat_streams_server_sent_events_with_citations_at_the_end(deployment: Deployment):
    with deployment.client("dave") as client:
        plain = client.post("/v1/chat", json={"message": QUESTION}).json()
        with client.stream("POST", "/v1/chat", json={"message": QUESTION, "stream": True}
                           ) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            raw = response.read().decode()
    events = [(block.split("\n")[0].removeprefix("event: "),
               json.loads(block.split("\n")[1].removeprefix("data: ")))
              for block in raw.strip().split("\n\n")]
    names = [name for name, _ in events]
    assert names[0] == "meta" and names[-2:] == ["citations", "done"]
    assert set(names[1:-2]) == {"delta"} and len(names) > 5
    assert "".join(data["text"] for name, data in events if name == "delta") == plain["answer"]
    assert events[-2][1]["citations"] == plain["citations"]
    assert events[0][1]["mode"] == plain["mode"] == "extractive"


def test_streaming_refusals_are_plain_errors(deployment: Deployment):
    response = httpx.post(f"{deployment.url}/v1/chat",
                          json={"message": QUESTION, "stream": True}, timeout=30)
    assert response.status_code == 401 and "missing API key" in response.json()["error"]
