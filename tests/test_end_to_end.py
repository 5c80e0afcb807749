"""End to end over HTTP: real parser, embedder, embedded Qdrant and Casbin on the example corpus.

Who may read what is written out here by hand from examples/README.md, independently of
Casbin and of the store, and every result, citation and snippet is checked against it.
"""

from __future__ import annotations

import codecs

import pytest

from tests.conftest import EXAMPLE_USERS, Deployment

pytestmark = pytest.mark.e2e

EVERYONE = frozenset(EXAMPLE_USERS)
# Document id prefix -> users who may read it (first match wins), from examples/README.md.
READERS: list[tuple[str, frozenset[str]]] = [
    ("handbook:", EVERYONE),
    ("hr:", frozenset({"alice"})),
    ("engineering:platform/", frozenset({"bob"})),
    ("engineering:", frozenset({"bob"})),
    ("finance:board/", frozenset({"carol"})),
    ("finance:reports/", frozenset({"carol"})),
    ("legal:", frozenset({"erin"})),
]
# The board document's distinctive strings, kept ROT13 so a grep of the repo finds them only
# inside the document itself.
CANARIES = [codecs.decode(s, "rot13") for s in ("Oevtugjngre", "XRFGERY-4417", "Xrfgery")]

QUESTIONS = [
    "Where is the office and when was the company founded?",
    "How many days of annual leave do we get?",
    "What is the daily meal limit when travelling?",
    "Where do I report phishing emails?",
    "What is the salary range of band L3?",
    "How much parental leave does each parent get?",
    "Who owns the telemetry ingest service?",
    "How long was the March 2026 telemetry ingest outage?",
    "To whom is an unmitigated SEV1 escalated?",
    "What is the total Q3 2026 operating budget?",
    "What price is planned for the acquisition and when is signing?",
    "Which company are we acquiring?",
    "How long does the NDA stay in force?",
    "From what date must documents on the Aurora supplier dispute be preserved?",
    "What about the office plants and the fiddle-leaf fig?",
]


def may_read(user: str, doc_id: str) -> bool:
    for prefix, readers in READERS:
        if doc_id.startswith(prefix):
            return user in readers
    return False  # no rule: nobody


def test_ingest_reports_every_document_and_skips_the_unmatched_one(deployment: Deployment):
    report = deployment.first_report
    assert report.documents == 14
    assert report.errors == []
    assert [p.doc_id for p in report.no_acl] == ["finance:unfiled/draft-notes.txt"]
    assert report.chunks >= report.documents


@pytest.mark.parametrize("user", EXAMPLE_USERS)
def test_each_user_sees_only_documents_they_may_read(deployment: Deployment, user: str):
    seen: set[str] = set()
    with deployment.client(user) as client:
        for question in QUESTIONS:
            search = client.post("/v1/search", json={"query": question, "top_k": 10})
            assert search.status_code == 200, search.text
            for result in search.json()["results"]:
                assert may_read(user, result["doc_id"]), (question, result["doc_id"])
                seen.add(result["doc_id"])
            chat = client.post("/v1/chat", json={"message": question, "top_k": 10})
            assert chat.status_code == 200, chat.text
            body = chat.json()
            for citation in body["citations"]:
                assert may_read(user, citation["doc_id"]), (question, citation["doc_id"])
            if user != "carol":
                for canary in CANARIES:
                    assert canary.lower() not in search.text.lower()
                    assert canary.lower() not in chat.text.lower()
    readable = {d for d in seen if may_read(user, d)}
    assert readable == seen
    # Every user reaches the handbook, and the user with the most access reaches beyond it.
    assert any(d.startswith("handbook:") for d in seen)
    if user in {"alice", "bob", "carol", "erin"}:
        assert any(not d.startswith("handbook:") for d in seen), seen


def test_only_carol_finds_the_confidential_document(deployment: Deployment):
    question = f"{CANARIES[0]} acquisition {CANARIES[1]} price"
    with deployment.client("carol") as client:
        body = client.post("/v1/search", json={"query": question}).json()
    assert body["results"][0]["doc_id"] == "finance:board/kestrel-acquisition.docx"
    assert CANARIES[0] in body["results"][0]["text"]
    for user in set(EXAMPLE_USERS) - {"carol"}:
        with deployment.client(user) as client:
            for path, payload in (("/v1/search", {"query": question, "top_k": 50}),
                                  ("/v1/chat", {"message": question, "top_k": 50})):
                response = client.post(path, json=payload)
                assert response.status_code == 200
                assert "kestrel" not in response.text.lower()
                assert CANARIES[0].lower() not in response.text.lower()


def test_answers_cite_sources_with_versions_and_timestamps(deployment: Deployment):
    with deployment.client("dave") as client:
        body = client.post(
            "/v1/chat", json={"message": "What is the daily meal limit when travelling?"}
        ).json()
    assert body["mode"] == "extractive"
    assert "45" in body["answer"]
    assert body["citations"], body
    cited = {c["n"] for c in body["citations"]}
    for n in cited:
        assert f"[{n}]" in body["answer"]
    pdf = [c for c in body["citations"] if c["uri"] == "expenses-policy.pdf"]
    assert pdf and pdf[0]["page"] == 2
    for citation in body["citations"]:
        assert len(citation["doc_version"]) == 64
        assert citation["source_modified_at"].endswith("+00:00")
        assert citation["ingested_at"].endswith("+00:00")
        assert citation["snippet"]
    assert body["index_version"] == deployment.first_report.version_id


def test_weak_evidence_abstains(deployment: Deployment):
    with deployment.client("dave") as client:
        body = client.post(
            "/v1/chat", json={"message": "What is the salary range of band L3?"}
        ).json()
    assert body["mode"] == "abstain"
    assert "sources you can access" in body["answer"]
    assert body["citations"] == []


def test_search_results_carry_the_documented_fields(deployment: Deployment):
    with deployment.client("alice") as client:
        body = client.post("/v1/search", json={"query": "parental leave", "top_k": 3}).json()
    assert set(body) == {"request_id", "index_version", "search_mode", "results"}
    top = body["results"][0]
    assert top["doc_id"] == "hr:parental-leave.md"
    assert set(top) == {"chunk_id", "doc_id", "source", "title", "uri", "page", "doc_version",
                        "source_modified_at", "ingested_at", "score", "similarity", "text"}
    assert top["source"] == "hr" and top["uri"] == "parental-leave.md"


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "missing API key"),
        ({"Authorization": "Bearer clr_not-a-real-key"}, "unknown, revoked or expired API key"),
        ({"Authorization": "Basic abc"}, "malformed Authorization header"),
    ],
)
def test_requests_without_a_valid_key_get_401(deployment: Deployment, headers, reason):
    with deployment.client() as client:
        for path, payload in (("/v1/search", {"query": "leave"}), ("/v1/chat", {"message": "x"})):
            response = client.post(path, json=payload, headers=headers)
            assert response.status_code == 401
            assert reason in response.json()["error"]
            assert response.headers["WWW-Authenticate"] == "Bearer"


def test_a_revoked_key_gets_401(deployment: Deployment):
    from control.keys import KeyStore

    store = KeyStore(deployment.settings.keys_file)
    key = store.create("frank")
    with deployment.client() as client:
        auth = {"Authorization": f"Bearer {key}"}
        assert client.post("/v1/search", json={"query": "leave"}, headers=auth).status_code == 200
        assert store.revoke("frank") == 1
        response = client.post("/v1/search", json={"query": "leave"}, headers=auth)
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("payload", "mentions"),
    [
        ({"query": ""}, "query"),
        ({"query": "   "}, "query"),
        ({}, "query"),
        ({"query": "leave", "top_k": 0}, "top_k"),
        ({"query": "leave", "top_k": 51}, "top_k"),
        ({"query": "leave", "top_k": "5"}, "top_k"),
        ({"query": 42}, "query"),
        ({"query": "leave", "extra": 1}, "extra"),
    ],
)
def test_bad_input_gets_a_clear_4xx(deployment: Deployment, payload, mentions):
    with deployment.client("dave") as client:
        response = client.post("/v1/search", json=payload)
    assert response.status_code == 422
    body = response.json()
    assert body["error"].startswith("invalid request")
    assert mentions in body["error"]
    assert "Traceback" not in response.text


def test_healthz(deployment: Deployment):
    with deployment.client() as client:
        body = client.get("/healthz").json()
    assert body["status"] == "ok"
    assert body["index_version"]
