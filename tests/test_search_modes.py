"""Ranking modes over HTTP and in the retriever: hybrid by default, dense, sparse (BM25) or hybrid
on request, every mode permission-filtered; a version without BM25 vectors is searched dense."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from application.services import open_catalog, open_document_access
from application.settings import load_settings
from ingest.tagging import point_id
from retrieval.embedder import Embedder
from retrieval.retriever import Retriever
from retrieval.scope import Scope
from retrieval.store import SearchMode, StoredChunk
from retrieval.versions import DocumentEntry, VersionInfo
from tests.conftest import EXAMPLE_USERS, Deployment, write_example_config
from tests.payloads import chunk_payload
from tests.test_end_to_end import CANARIES, QUESTIONS, may_read

pytestmark = pytest.mark.e2e


def test_the_default_is_the_configured_hybrid_ranking(deployment: Deployment):
    with deployment.client("dave") as client:
        body = client.post("/v1/search", json={"query": "annual leave days"}).json()
    assert body["search_mode"] == "hybrid"
    assert body["results"]
    for result in body["results"]:
        assert -1.0 <= result["similarity"] <= 1.0
        assert 0.0 <= result["score"] <= 2.0  # DBSF: two lists' scores, each normalised to 0..1
    # A fused score, not the cosine similarity.
    assert any(r["score"] != pytest.approx(r["similarity"]) for r in body["results"])
    scores = [r["score"] for r in body["results"]]
    assert scores == sorted(scores, reverse=True)


@pytest.mark.parametrize("mode", ["dense", "sparse", "hybrid"])
@pytest.mark.parametrize("user", EXAMPLE_USERS)
def test_every_mode_returns_only_what_the_caller_may_read(deployment: Deployment, user: str,
                                                          mode: str):
    with deployment.client(user) as client:
        for question in QUESTIONS:
            response = client.post("/v1/search",
                                   json={"query": question, "top_k": 10, "search_mode": mode})
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["search_mode"] == mode
            for result in body["results"]:
                assert may_read(user, result["doc_id"]), (mode, question, result["doc_id"])
                if mode == "dense":
                    assert result["score"] == pytest.approx(result["similarity"])
            if user != "carol":
                for canary in CANARIES:
                    assert canary.lower() not in response.text.lower()


def test_bm25_finds_an_exact_identifier(deployment: Deployment):
    identifier = CANARIES[1]  # a code word that appears in one document only
    with deployment.client("carol") as client:
        body = client.post("/v1/search", json={"query": identifier, "search_mode": "sparse"}
                           ).json()
    assert {r["doc_id"] for r in body["results"]} == {"finance:board/kestrel-acquisition.docx"}
    with deployment.client("alice") as client:  # no access to the board folder
        body = client.post("/v1/search", json={"query": identifier, "search_mode": "sparse"}
                           ).json()
    assert body["results"] == []


def test_chat_takes_a_mode_and_the_audit_log_records_it(deployment: Deployment):
    with deployment.client("dave") as client:
        body = client.post("/v1/chat", json={"message": "How many days of annual leave?",
                                             "search_mode": "sparse"}).json()
        completion = client.post("/v1/chat/completions", json={
            "model": "clearance", "search_mode": "dense",
            "messages": [{"role": "user", "content": "How many days of annual leave?"}]}).json()
    assert body["search_mode"] == "sparse" and body["mode"] != "abstain"
    assert completion["clearance"]["search_mode"] == "dense"
    records = [json.loads(line) for line in
               deployment.settings.audit_log.read_text(encoding="utf-8").splitlines()]
    mine = {r["request_id"]: r for r in records}
    assert mine[body["request_id"]]["ranking"] == "sparse"
    assert mine[completion["clearance"]["request_id"]]["ranking"] == "dense"


def test_an_unknown_mode_is_a_clear_422(deployment: Deployment):
    with deployment.client("dave") as client:
        response = client.post("/v1/search", json={"query": "leave", "search_mode": "fuzzy"})
    assert response.status_code == 422
    assert "search_mode" in response.text and "hybrid" in response.text
    assert "Traceback" not in response.text


def test_a_version_without_bm25_vectors_is_searched_dense(tmp_path: Path, embedder: Embedder):
    settings = load_settings(write_example_config(tmp_path))
    catalog = open_catalog(settings)
    text = "Staff get 25 days of annual leave each year."
    doc_id = "handbook:welcome.md"
    payload = chunk_payload(chunk_id=point_id(doc_id, 0), doc_id=doc_id, source="handbook",
                            uri="welcome.md", title="Welcome", text=text, index_version="v1")
    writer = catalog.backend.create("v1", dim=embedder.dim)  # no sparse vectors
    writer.upsert([StoredChunk(point_id(doc_id, 0), embedder.embed_documents([text])[0].tolist(),
                               payload.to_payload())])
    catalog.record_documents("v1", {doc_id: DocumentEntry("handbook", "welcome.md",
                                                          ("group:staff",))})
    catalog.record(VersionInfo("v1", "2026-01-01T00:00:00+00:00", embedder.name, embedder.dim,
                               1, 1, ["handbook"]))
    writer.seal()
    catalog.switch("v1")
    retriever = Retriever(catalog, embedder, open_document_access(settings, catalog))
    scope = Scope("dave", frozenset({"user:dave", "group:staff"}), "test")
    try:
        for mode in (None, SearchMode.SPARSE, SearchMode.HYBRID):
            retrieved = retriever.search("annual leave", scope=scope, top_k=3, mode=mode)
            assert retrieved.mode is SearchMode.DENSE
            assert [h.payload.doc_id for h in retrieved.hits] == [doc_id]
            assert retrieved.hits[0].similarity == retrieved.hits[0].score > 0.3
    finally:
        retriever.close()
        catalog.backend.close()
