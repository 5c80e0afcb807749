"""The source viewer over HTTP on the example deployment (real parser, embedder, embedded Qdrant,
Casbin and keys): a cited document version as the caller may read it now, and its original file.

A document that does not exist, one the caller may not read (now: after a revocation too) and a
version not in the current index get the same 404, byte for byte but the request id; each is
audited ("view" or "download", outcome "empty"). The original is served only while the file at
its declared source still is that version, and never through a link out of the source.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from application.documents import GONE
from retrieval.embedder import Embedder
from tests.conftest import Deployment, serve_example

pytestmark = pytest.mark.e2e

EXPENSES = "handbook:expenses-policy.pdf"
HOLIDAYS = "handbook:holidays-2026.html"
WELCOME = "handbook:welcome.md"
SALARIES = "hr:salary-bands.docx"  # group hr only: alice
RUNBOOK = "engineering:platform/oncall-runbook.md"  # group platform only: bob
NO_SUCH = "hr:no-such-file.docx"
WRONG = "0" * 64
VARYING = {"x-request-id", "date"}  # headers that differ between any two responses


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder
             ) -> Iterator[Deployment]:
    with serve_example(tmp_path_factory.mktemp("viewer"), embedder) as deployment:
        yield deployment


def _file(deployed: Deployment, doc_id: str) -> Path:
    source, uri = doc_id.split(":", 1)
    return deployed.root / "docs" / source / uri


def _version(deployed: Deployment, doc_id: str) -> str:
    """The version a document was built with: sha256 of its file, as ingest computes it."""
    return hashlib.sha256(_file(deployed, doc_id).read_bytes()).hexdigest()


def _path(doc_id: str, version: str, *, file: bool = False) -> str:
    return f"/v1/documents/{quote(doc_id, safe='/:')}/versions/{version}" + (
        "/file" if file else "")


def _get(deployed: Deployment, user: str | None, doc_id: str, version: str, *,
         file: bool = False, **params: str) -> httpx.Response:
    with deployed.client(user) as client:
        return client.get(_path(doc_id, version, file=file), params=params)


def _shape(response: httpx.Response) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
    """Everything a response says but its request id (and Date)."""
    body = {k: v for k, v in response.json().items() if k != "request_id"}
    headers = sorted((k, v) for k, v in response.headers.items() if k.lower() not in VARYING)
    return response.status_code, body, headers


def _records(deployed: Deployment, request_id: str) -> list[dict[str, Any]]:
    lines = deployed.settings.audit_log.read_text(encoding="utf-8").splitlines()
    return [r for r in map(json.loads, lines) if r.get("request_id") == request_id]


def _audited(deployed: Deployment, response: httpx.Response
             ) -> list[tuple[str, str, str | None, str]]:
    """(action, caller, doc_version asked, outcome) of each record of the response's request
    but the request record itself."""
    return [(r["action"], r["caller"], r.get("doc_version"), r["outcome"])
            for r in _records(deployed, response.headers["X-Request-ID"])
            if r["action"] != "request"]


def _until(condition: Callable[[], bool], limit: float = 10.0) -> None:
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > limit:
            pytest.fail(f"condition not met within {limit} s")
        time.sleep(0.05)


def test_a_permitted_user_opens_the_cited_version_at_the_cited_chunk(deployed: Deployment):
    with deployed.client("dave") as client:
        chat = client.post("/v1/chat", json={
            "message": "What is the daily meal limit when travelling?"}).json()
    citation = next(c for c in chat["citations"] if c["doc_id"] == EXPENSES)
    cited = citation["chunk_ids"][0]
    response = _get(deployed, "dave", EXPENSES, citation["doc_version"], chunk=cited)
    assert response.status_code == 200, response.text
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json()
    assert body["request_id"] == response.headers["X-Request-ID"]
    assert body["index_version"] == chat["index_version"]
    for field in ("doc_id", "source", "title", "uri", "doc_version", "source_modified_at",
                  "ingested_at"):
        assert body[field] == citation[field], field
    assert body["doc_version"] == _version(deployed, EXPENSES)
    assert body["source_modified_at"] and body["ingested_at"]
    sections = body["sections"]
    assert body["complete"] is True
    assert [s["chunk_index"] for s in sections] == list(range(len(sections)))
    assert [s["chunk_id"] for s in sections if s["cited"]] == [cited]
    assert set(citation["chunk_ids"]) <= {s["chunk_id"] for s in sections}
    assert set(citation["pages"]) <= set(body["pages"])
    assert body["pages"] == sorted({s["page"] for s in sections if s["page"] is not None})
    # Each section is the chunk the index holds: search (another read path) finds it as such.
    with deployed.client("dave") as client:
        for section in sections:
            found = client.post("/v1/search", json={"query": section["text"][:2000],
                                                    "top_k": 10}).json()["results"]
            same = [r for r in found if r["chunk_id"] == section["chunk_id"]]
            assert same and same[0]["text"] == section["text"]
            assert same[0]["page"] == section["page"] and same[0]["doc_id"] == EXPENSES
    original = _file(deployed, EXPENSES).read_bytes()
    assert body["file"] == {"available": True, "media_type": "application/pdf",
                            "size_bytes": len(original),
                            "url": _path(EXPENSES, body["doc_version"], file=True)}
    with deployed.client("dave") as client:
        assert client.get(body["file"]["url"]).content == original
    assert _audited(deployed, response) == [("view", "user:dave", citation["doc_version"], "ok")]
    # Without `chunk`, nothing is flagged.
    plain = _get(deployed, "dave", EXPENSES, body["doc_version"]).json()
    assert not any(s["cited"] for s in plain["sections"])


def test_denied_unknown_and_not_current_get_the_same_404_each_audited(deployed: Deployment):
    salaries = _version(deployed, SALARIES)
    assert _get(deployed, "alice", SALARIES, salaries).status_code == 200
    unknown = _get(deployed, "dave", NO_SUCH, salaries)
    denied = _get(deployed, "dave", SALARIES, salaries)
    denied_old = _get(deployed, "dave", SALARIES, WRONG)
    unknown_file = _get(deployed, "dave", NO_SUCH, salaries, file=True)
    denied_file = _get(deployed, "dave", SALARIES, salaries, file=True)
    assert unknown.status_code == 404
    assert unknown.json()["error"].startswith("no document version with that id and version "
                                              "that you can read")
    assert "current_version" not in unknown.json()
    for response in (denied, denied_old, unknown_file, denied_file):
        assert _shape(response) == _shape(unknown)
        assert response.headers.keys() == unknown.headers.keys()
        assert salaries not in response.text and "salary" not in response.text
    for response, asked in ((unknown, salaries), (denied, salaries), (denied_old, WRONG)):
        assert _audited(deployed, response) == [("view", "user:dave", asked, "empty")]
    for response in (unknown_file, denied_file):
        assert _audited(deployed, response) == [("download", "user:dave", salaries, "empty")]
    # Only a caller who may read the document learns its current version.
    welcome = _version(deployed, WELCOME)
    readable_old = _get(deployed, "dave", WELCOME, WRONG)
    status, body, _ = _shape(readable_old)
    assert body.pop("current_version") == welcome
    assert (status, body) == _shape(unknown)[:2]
    assert _audited(deployed, readable_old) == [("view", "user:dave", WRONG, "empty")]


def test_a_revoked_membership_or_source_rule_applies_to_the_next_view(deployed: Deployment):
    salaries = _version(deployed, SALARIES)
    unknown = _get(deployed, "alice", NO_SUCH, salaries)
    policy = deployed.root / "policy.csv"
    original = policy.read_text(encoding="utf-8")
    assert _get(deployed, "alice", SALARIES, salaries).status_code == 200
    try:
        policy.write_text(original.replace("g, user:alice, group:hr\n", ""), encoding="utf-8")
        _until(lambda: _get(deployed, "alice", SALARIES, salaries).status_code == 404)
        revoked = _get(deployed, "alice", SALARIES, salaries)
        revoked_file = _get(deployed, "alice", SALARIES, salaries, file=True)
        assert _shape(revoked) == _shape(revoked_file) == _shape(unknown)
        assert _audited(deployed, revoked) == [("view", "user:alice", salaries, "empty")]
        assert _audited(deployed, revoked_file) == [
            ("download", "user:alice", salaries, "empty")]
    finally:
        policy.write_text(original, encoding="utf-8")
    _until(lambda: _get(deployed, "alice", SALARIES, salaries).status_code == 200)
    # The source's ACL rule in the config, narrowed to someone else.
    config = deployed.config
    text = config.read_text(encoding="utf-8")
    rule = 'acl = [{ glob = "*", allow = ["group:hr"] }]'
    assert rule in text
    try:
        config.write_text(text.replace(rule, 'acl = [{ glob = "*", allow = ["user:root"] }]'),
                          encoding="utf-8")
        _until(lambda: _get(deployed, "alice", SALARIES, salaries).status_code == 404)
        revoked = _get(deployed, "alice", SALARIES, salaries)
        assert _shape(revoked) == _shape(unknown)
        assert _audited(deployed, revoked) == [("view", "user:alice", salaries, "empty")]
    finally:
        config.write_text(text, encoding="utf-8")
    _until(lambda: _get(deployed, "alice", SALARIES, salaries).status_code == 200)


def test_the_original_is_served_as_an_attachment_while_it_is_that_version(
        deployed: Deployment):
    path = _file(deployed, HOLIDAYS)
    original = path.read_bytes()
    version = _version(deployed, HOLIDAYS)
    response = _get(deployed, "dave", HOLIDAYS, version, file=True)
    assert response.status_code == 200, response.text
    assert response.content == original
    assert response.headers["Content-Type"] == "text/html"  # never rendered: an attachment
    assert response.headers["Content-Disposition"] == (
        "attachment; filename=\"holidays-2026.html\"; filename*=UTF-8''holidays-2026.html")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Content-Security-Policy"] == "sandbox"
    assert _audited(deployed, response) == [("download", "user:dave", version, "ok")]
    try:
        path.write_bytes(original + b"\n<!-- edited -->\n")
        gone = _get(deployed, "dave", HOLIDAYS, version, file=True)
        assert gone.status_code == 404
        assert gone.json()["error"] == GONE
        assert [(a, o) for a, _, _, o in _audited(deployed, gone)] == [
            ("download", "ok"), ("download", "failed")]
        assert [r["reason"] for r in _records(deployed, gone.headers["X-Request-ID"])
                if r["outcome"] == "failed"] == [GONE]
        # The indexed version is still viewable; its original is not offered.
        view = _get(deployed, "dave", HOLIDAYS, version).json()
        assert view["file"] == {"available": False, "media_type": "text/html",
                                "size_bytes": None, "url": None}
        path.unlink()
        assert _get(deployed, "dave", HOLIDAYS, version, file=True).json()["error"] == GONE
    finally:
        path.write_bytes(original)
    assert _get(deployed, "dave", HOLIDAYS, version, file=True).content == original


@pytest.mark.parametrize(("doc_id", "user", "swapped"), [
    (WELCOME, "dave", "file"),  # the file itself, a link to a copy outside the source
    (RUNBOOK, "bob", "directory"),  # its directory, a link to a copy outside
])
def test_a_link_out_of_the_source_is_never_followed(deployed: Deployment, doc_id: str,
                                                    user: str, swapped: str):
    path = _file(deployed, doc_id)
    target = path if swapped == "file" else path.parent
    version = _version(deployed, doc_id)
    assert _get(deployed, user, doc_id, version, file=True).status_code == 200
    outside = deployed.root / "outside" / swapped
    outside.parent.mkdir(exist_ok=True)
    moved = deployed.root / "outside" / f"{swapped}.original"
    (shutil.copytree if swapped == "directory" else shutil.copy2)(target, outside)
    target.rename(moved)
    try:
        target.symlink_to(outside)  # the same bytes, but out of the source
        assert path.read_bytes() == (moved if swapped == "file" else moved / path.name
                                     ).read_bytes()
        refused = _get(deployed, user, doc_id, version, file=True)
        assert refused.status_code == 404 and refused.json()["error"] == GONE
        assert _get(deployed, user, doc_id, version).json()["file"]["available"] is False
    finally:
        target.unlink()
        moved.rename(target)
    assert _get(deployed, user, doc_id, version, file=True).status_code == 200


def test_no_key_is_401_and_a_paused_service_503(deployed: Deployment):
    version = _version(deployed, WELCOME)
    for file in (False, True):
        assert _get(deployed, None, WELCOME, version, file=file).status_code == 401
    with deployed.client("root") as admin:
        paused = admin.post("/v1/admin/pause", json={"target": "service", "reason": "test"})
        assert paused.status_code == 200, paused.text
        try:
            for file in (False, True):
                refused = _get(deployed, "dave", WELCOME, version, file=file)
                assert refused.status_code == 503
                first, *_ = _records(deployed, refused.headers["X-Request-ID"])
                assert (first["action"], first["outcome"]) == (
                    _path(WELCOME, version, file=file), "refused")
        finally:
            assert admin.post("/v1/admin/resume", json={"target": "service"}).status_code == 200
    assert _get(deployed, "dave", WELCOME, version).status_code == 200


@pytest.mark.parametrize("version", ["abc", "F" * 64, "0" * 63])
def test_a_malformed_version_is_a_422_naming_it(deployed: Deployment, version: str):
    response = _get(deployed, "dave", WELCOME, version)
    assert response.status_code == 422
    assert "path.doc_version" in response.json()["error"]


def test_a_document_longer_than_one_response_is_marked_incomplete(deployed: Deployment,
                                                                   embedder: Embedder):
    """`Retriever.document` returns at most `max_chunks` chunks; past that the sections are
    some of the document's, and the viewer and MCP fetch say so (`complete`)."""
    from application.documents import document_fields
    from application.services import build_services
    from retrieval.scope import scope_for
    services = build_services(deployed.settings, embedder=embedder)
    try:
        scope = scope_for(services.policy, "dave")
        whole = services.retriever.document(EXPENSES, scope=scope)
        assert len(whole.hits) >= 2 and whole.complete
        part = services.retriever.document(EXPENSES, scope=scope, max_chunks=1)
        assert len(part.hits) == 1 and part.complete is False
        assert document_fields(part)["complete"] is False
        assert document_fields(whole)["complete"] is True
    finally:
        services.close()
