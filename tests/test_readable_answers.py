"""On the example corpus over HTTP: extractive answers read well, follow-ups find their document."""

from __future__ import annotations

import json

import pytest

from answers.conversation import Question, Turn
from answers.standalone import rules_standalone
from tests.answers.followups import FOLLOW_UPS
from tests.conftest import Deployment

pytestmark = pytest.mark.e2e


def chat(deployment: Deployment, user: str, message: str) -> dict:
    with deployment.client(user) as client:
        response = client.post("/v1/chat", json={"message": message})
    assert response.status_code == 200, response.text
    return response.json()


def test_a_pdf_sentence_is_quoted_whole_and_each_document_cited_once(deployment: Deployment):
    body = chat(deployment, "dave", "When are approved expense claims reimbursed?")
    assert "to the bank account registered in the HR system. [1]" in body["answer"]
    doc_ids = [(c["doc_id"], c["doc_version"]) for c in body["citations"]]
    assert len(doc_ids) == len(set(doc_ids))
    pdf = next(c for c in body["citations"] if c["doc_id"] == "handbook:expenses-policy.pdf")
    assert 3 in pdf["pages"] and pdf["page"] == pdf["pages"][0]


def test_a_table_row_is_quoted_as_a_row(deployment: Deployment):
    body = chat(deployment, "carol", "What is the Q3 2026 budget of research and development?")
    assert "Department: Research and development; Q3 2026 budget (EUR): 3,600,000" in \
        body["answer"], body["answer"]


def test_follow_ups_made_standalone_retrieve_their_document(deployment: Deployment):
    found = 0
    for case in FOLLOW_UPS:
        history = tuple(Turn("user", q) for q in case.turns[:-1])
        query = rules_standalone(Question(case.turns[-1], history), history_turns=2)
        with deployment.client(case.user) as client:
            results = client.post("/v1/search", json={"query": query}).json()["results"]
        top = results[0]["doc_id"] if results else None
        found += top == case.doc_id
        print(f"{top == case.doc_id!s:5} {case.doc_id:40} {query}")
    print(f"follow-ups: {found} of {len(FOLLOW_UPS)} retrieve their document first")
    assert found >= 0.8 * len(FOLLOW_UPS)


def test_a_follow_up_is_answered_and_audited_as_its_standalone_question(deployment: Deployment):
    messages = [{"role": "user", "content": "What is the daily meal limit when travelling?"},
                {"role": "assistant", "content": "45 EUR per day [1]."},
                {"role": "user", "content": "And the hotel limit?"}]
    with deployment.client("dave") as client:
        response = client.post("/v1/chat/completions", json={"model": "clearance",
                                                              "messages": messages})
    assert response.status_code == 200, response.text
    assert "160 EUR per night" in response.json()["choices"][0]["message"]["content"]
    lines = deployment.settings.audit_log.read_text(encoding="utf-8").splitlines()
    record = next(r for r in map(json.loads, reversed(lines)) if r.get("action") == "chat")
    assert record["query"] == "What is the daily hotel limit when travelling?"
    assert record["standalone"]["method"] == "rules"
    assert record["standalone"]["original_hmac"] != record["query_hmac"]
