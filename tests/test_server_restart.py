"""A server that dies comes back on the version last switched to; a version built with another
embedder is refused with a clear error, and a rollback serves again without a restart.

The first test runs the real CLI and the real server in separate processes and kills the server
with SIGKILL; the second serves over real HTTP in this process.
"""

from __future__ import annotations

import signal
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.app import create_app
from application.services import build_services, open_catalog, open_document_access
from application.settings import load_settings
from control.keys import KeyStore
from ingest.pipeline import build_index_version
from retrieval.embedder import Embedder
from retrieval.errors import StoreError
from retrieval.retriever import Retriever
from retrieval.scope import Scope
from retrieval.store import StoredChunk
from retrieval.versions import DocumentEntry, VersionInfo, new_version_id
from tests.conftest import LiveServer, write_example_config
from tests.processes import clearance, ingest, served

pytestmark = pytest.mark.e2e

QUERY = {"query": "annual leave", "top_k": 3}
OTHER_EMBEDDER = "other/model-8d"


def search(url: str, key: str) -> dict[str, Any]:
    response = httpx.post(f"{url}/v1/search", json=QUERY,
                          headers={"Authorization": f"Bearer {key}"}, timeout=60)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_a_server_killed_with_sigkill_restarts_on_the_last_switched_version(tmp_path: Path):
    config = write_example_config(tmp_path)
    first = ingest(config)
    welcome = tmp_path / "docs" / "handbook" / "welcome.md"
    welcome.write_text(welcome.read_text(encoding="utf-8")
                       + "\n\n## Cafeteria\n\nThe rooftop cafeteria opens at 7:30.\n",
                       encoding="utf-8")
    newest = ingest(config)
    assert newest != first
    # The last switch is a rollback: the version served is not the newest one.
    rollback = clearance(config, "index", "rollback")
    assert rollback.returncode == 0, rollback.stderr
    assert f"index version {first} is now current (was {newest})" in rollback.stdout
    created = clearance(config, "keys", "create", "dave")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]

    with served(config, tmp_path / "server-1.log") as (proc, url):
        assert httpx.get(f"{url}/healthz").json() == {"status": "ok", "index_version": first,
                                                       "generation_paused": False}
        before = search(url, key)
        assert before["index_version"] == first
        assert before["results"]
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL

    with served(config, tmp_path / "server-2.log") as (_, url):
        assert httpx.get(f"{url}/healthz").json() == {"status": "ok", "index_version": first,
                                                       "generation_paused": False}
        after = search(url, key)
    assert after["index_version"] == first
    assert [r["chunk_id"] for r in after["results"]] == [r["chunk_id"] for r in before["results"]]
    assert [r["score"] for r in after["results"]] == pytest.approx(
        [r["score"] for r in before["results"]], abs=1e-5)

    versions = clearance(config, "index", "versions")
    assert versions.returncode == 0, versions.stderr
    lines = versions.stdout.splitlines()
    assert any(line.startswith(f"* {first} ") for line in lines), versions.stdout
    assert any(line.startswith(f"  {newest} ") for line in lines), versions.stdout


def test_a_version_built_with_another_embedder_is_refused_with_a_clear_error(
    tmp_path: Path, embedder: Embedder
):
    settings = load_settings(write_example_config(tmp_path))
    handbook = [s for s in settings.sources if s.name == "handbook"]
    catalog = open_catalog(settings)
    real = build_index_version(handbook, settings.ingest, catalog=catalog, embedder=embedder)
    assert real.documents > 0

    # A sealed version whose manifest and vectors are another embedder's (8 dimensions).
    other = new_version_id()
    doc_id = "handbook:welcome.md"
    writer = catalog.backend.create(other, dim=8)
    writer.upsert([StoredChunk(
        str(uuid.uuid5(uuid.NAMESPACE_URL, f"{doc_id}#0")),
        [1.0] + [0.0] * 7,
        {"chunk_id": "c0", "chunk_index": 0, "doc_id": doc_id, "source": "handbook",
         "uri": "welcome.md", "title": "Welcome", "doc_version": "x", "index_version": other,
         "acl": ["group:staff"], "text": "Annual leave is 25 days."},
    )])
    catalog.record_documents(other, {doc_id: DocumentEntry("handbook", "welcome.md",
                                                           ("group:staff",))})
    catalog.record(VersionInfo(id=other, created_at=datetime.now(UTC).isoformat(),
                               embedder=OTHER_EMBEDDER, dim=8, documents=1, chunks=1,
                               sources=["handbook"]))
    writer.seal()
    catalog.switch(other)

    # (a) The retriever refuses it, naming both embedders and what to do.
    retriever = Retriever(catalog, embedder, open_document_access(settings, catalog))
    scope = Scope(user="dave", principals=frozenset({"user:dave", "group:staff"}),
                  policy_version="test")
    try:
        with pytest.raises(StoreError) as refused:
            retriever.search("annual leave", scope=scope, top_k=3)
    finally:
        retriever.close()
    message = str(refused.value)
    assert other in message
    assert f"{OTHER_EMBEDDER} (8 dims)" in message
    assert f"{embedder.name} ({embedder.dim} dims)" in message
    assert "re-index or roll back" in message

    # (b) Over HTTP: 503 with that message and no traceback; a rollback serves again at once.
    key = KeyStore(settings.keys_file).create("dave")
    app = create_app(settings, build_services(settings, embedder=embedder))
    with LiveServer(app) as url, httpx.Client(
        base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60
    ) as client:
        response = client.post("/v1/search", json=QUERY)
        assert response.status_code == 503, response.text
        body = response.json()
        assert set(body) == {"error", "request_id"}
        assert OTHER_EMBEDDER in body["error"] and embedder.name in body["error"]
        assert "re-index or roll back" in body["error"]
        assert "Traceback" not in response.text and 'File "' not in response.text
        audited = settings.audit_log.read_text(encoding="utf-8")
        assert body["request_id"] in audited and '"outcome":"error"' in audited.replace(" ", "")

        assert catalog.rollback() == real.version_id
        answer = client.post("/v1/search", json=QUERY)
        assert answer.status_code == 200, answer.text
        assert answer.json()["index_version"] == real.version_id
        assert answer.json()["results"]

        # A build on top of the other embedder's version reuses none of its chunks.
        catalog.switch(other)
        rebuilt = build_index_version(handbook, settings.ingest, catalog=catalog,
                                      embedder=embedder)
        assert rebuilt.reused == 0
        assert rebuilt.embedded_chunks == rebuilt.chunks == real.chunks
        assert catalog.current() == rebuilt.version_id
        served_again = client.post("/v1/search", json=QUERY)
        assert served_again.status_code == 200, served_again.text
        assert served_again.json()["index_version"] == rebuilt.version_id
