"""POST /v1/feedback over HTTP on the example deployment: the caller rates the answer they got
(by the chat's request_id or the completion's id); another caller's id gets exactly the 404 an
unknown id gets; bad input is a clear 422; each rating is on the audit log."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from retrieval.embedder import Embedder
from tests.conftest import Deployment, serve_example

pytestmark = pytest.mark.e2e

QUESTION = "How many days of annual leave do staff get?"


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder
             ) -> Iterator[Deployment]:
    with serve_example(tmp_path_factory.mktemp("feedback"), embedder) as deployment:
        yield deployment


def _records(path: Path, action: str) -> list[dict[str, Any]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [r for r in map(json.loads, lines) if r.get("action") == action]


def _rate(deployed: Deployment, user: str, body: dict[str, Any]) -> Any:
    with deployed.client(user) as client:
        return client.post("/v1/feedback", json=body)


def test_the_asker_rates_by_either_id_and_the_last_rating_counts(deployed: Deployment):
    with deployed.client("dave") as client:
        chat = client.post("/v1/chat", json={"message": QUESTION}).json()
        completion = client.post("/v1/chat/completions", json={
            "model": "any", "messages": [{"role": "user", "content": QUESTION}]}).json()
    first = _rate(deployed, "dave", {"request_id": chat["request_id"], "rating": "down",
                                     "comment": "outdated; call +44 20 7946 0958"})
    assert first.status_code == 200, first.text
    again = _rate(deployed, "dave", {"request_id": chat["request_id"], "rating": "up"})
    assert again.json()["ratings"] == 2 and again.json()["rating"] == "up"
    by_completion = _rate(deployed, "dave", {"request_id": completion["id"], "rating": "up"})
    assert by_completion.status_code == 200
    assert completion["id"] == f"chatcmpl-{by_completion.json()['request_id']}"
    kept = json.loads((deployed.settings.data_dir / "feedback.json").read_text("utf-8"))
    assert kept[chat["request_id"]]["rating"] == "up" and kept[chat["request_id"]][
        "ratings"] == 2
    ours = [r for r in _records(deployed.settings.audit_log, "feedback")
            if r["rated_request"] == chat["request_id"]]
    assert [(r["caller"], r["rating"], r["outcome"]) for r in ours] == [
        ("user:dave", "down", "ok"), ("user:dave", "up", "ok")]
    assert ours[0]["comment"] == "outdated; call [PHONE]"


def test_another_callers_request_id_gets_the_404_of_an_unknown_id(deployed: Deployment):
    with deployed.client("alice") as client:
        theirs = client.post("/v1/chat", json={"message": QUESTION}).json()["request_id"]
    other = _rate(deployed, "bob", {"request_id": theirs, "rating": "down"})
    unknown = _rate(deployed, "bob", {"request_id": "0" * 32, "rating": "down"})
    assert other.status_code == unknown.status_code == 404
    strip = {"request_id"}  # each response names its own request
    assert {k: v for k, v in other.json().items() if k not in strip} == {
        k: v for k, v in unknown.json().items() if k not in strip}
    assert other.headers.keys() == unknown.headers.keys()
    assert theirs not in other.text
    refused = [r for r in _records(deployed.settings.audit_log, "feedback")
               if r["caller"] == "user:bob"]
    assert [(r["rated_request"], r["outcome"]) for r in refused] == [
        (theirs, "refused"), ("0" * 32, "refused")]
    assert _rate(deployed, "alice", {"request_id": theirs, "rating": "down"}).status_code == 200


@pytest.mark.parametrize("body, problem", [
    ({"request_id": "a" * 32, "rating": "meh"}, "rating"),
    ({"request_id": "a" * 32, "rating": "up", "comment": "x" * 2001}, "comment"),
    ({"request_id": "../../etc", "rating": "up"}, "request_id"),
    ({"rating": "up"}, "request_id"),
])
def test_bad_input_is_a_clear_422(deployed: Deployment, body: dict[str, Any], problem: str):
    response = _rate(deployed, "dave", body)
    assert response.status_code == 422
    assert response.json()["error"].startswith(f"invalid request: {problem}")


def test_no_key_is_401(deployed: Deployment):
    with deployed.client() as client:
        assert client.post("/v1/feedback", json={"request_id": "a" * 32, "rating": "up"}
                           ).status_code == 401
