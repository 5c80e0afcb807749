"""Serve a generated world over real HTTP on either store backend.

The edge backend goes through the real composition root (`build_services`). qdrant-client's
`:memory:` mode lives inside one client object, so that deployment is built by hand: the index
is built into a catalog over one ServerBackend, and the served Services get a catalog over that
same backend (otherwise as `build_services` builds them).

"edge-postgres" is the deployment for several replicas: the control plane (policy, keys, ACL
overrides, quarantine, audit) in a real PostgreSQL database, and two replicas, each with its
own Services (composition root, pools and caches) over the same index and database, each
served on its own port; the suite's requests alternate between them.

Before serving, a second index version is built from the first with chunks planted in it that
have no usable ACL (see world.Planted): the store filter and the re-check must drop them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest import mock

from psycopg.types.json import Jsonb
from qdrant_client import QdrantClient

import application.services
from api.app import create_app
from application.services import (
    Services,
    build_services,
    import_file_state,
    open_acl_overrides,
    open_database,
    open_keys,
    open_quarantine,
)
from application.settings import Settings, load_settings
from control.pg_audit import PgAuditLog
from ingest.pipeline import IngestReport, build_index_version
from ingest.tagging import point_id
from retrieval.bm25 import Bm25Encoder
from retrieval.edge_store import EdgeBackend
from retrieval.embedder import Embedder
from retrieval.server_store import ServerBackend
from retrieval.store import StoredChunk, VectorBackend
from retrieval.versions import VersionCatalog, new_version_id
from tests.conftest import REPO, LiveServer, shared_parser
from tests.leak.world import MISSING, World

BACKENDS = ("edge", "qdrant-memory", "edge-postgres")


@dataclass
class LeakDeployment:
    world: World
    backend: str
    root: Path
    settings: Settings
    services: Services
    url: str
    keys: dict[str, str]
    report: IngestReport
    built_version: str  # the version the pipeline built
    served_version: str  # the version served: the built one plus the planted chunks
    urls: tuple[str, ...] = ()  # every replica's URL (url is the first)

    def set_policy_text(self, text: str) -> None:
        """Replace the policy as an operator editing it by hand would (no validation)."""
        if self.settings.database_url is None:
            path = self.settings.casbin_policy
            path.write_text(text, encoding="utf-8")
            stat = path.stat()  # make sure the change is seen even within one mtime tick
            os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
            return
        with open_database(self.settings).connection() as conn:
            conn.execute("UPDATE control_state SET value = %s, version = version + 1 "
                         "WHERE name = 'policy'", (Jsonb(text),))

    def audit_records(self) -> list[dict[str, Any]]:
        if self.settings.database_url is None:
            return [json.loads(line) for line in
                    self.settings.audit_log.read_text(encoding="utf-8").splitlines() if line]
        return PgAuditLog(open_database(self.settings), self.settings.audit_key).records()


def _plant(world: World, catalog: VersionCatalog, embedder: Embedder) -> str:
    """A new version: every chunk of the current one, plus world.planted; switched to."""
    current = catalog.current()
    assert current is not None
    reader = catalog.backend.open(current)
    try:
        chunks = list(reader.iter_chunks())
    finally:
        reader.close()
    version_id = new_version_id()
    template = chunks[0].payload
    vectors = embedder.embed_documents([p.text for p in world.planted])
    planted = []
    for p, vector in zip(world.planted, vectors, strict=True):
        payload = {
            **template,
            "chunk_id": point_id(p.doc_id, 0),
            "chunk_index": 0,
            "doc_id": p.doc_id,
            "source": p.source,
            "uri": p.uri,
            "title": p.uri,
            "index_version": version_id,
            "text": p.text,
        }
        if p.payload_acl is MISSING:
            del payload["acl"]
        else:
            payload["acl"] = p.payload_acl
        planted.append(StoredChunk(point_id(p.doc_id, 0), vector.tolist(), payload,
                                   Bm25Encoder().encode_document(p.text)))
    copies = [StoredChunk(c.point_id, c.vector, {**c.payload, "index_version": version_id},
                          c.sparse) for c in chunks]
    # With BM25 vectors like the built version: the leak suite searches hybrid by default.
    writer = catalog.backend.create(version_id, dim=embedder.dim, sparse=True)
    try:
        writer.upsert(copies + planted)
        # The document table stays the built one: planted chunks belong to no document.
        catalog.record_documents(version_id, catalog.documents(current))
        info = catalog.get(current)
        assert info is not None
        catalog.record(replace(info, id=version_id, created_at=datetime.now(UTC).isoformat(),
                               chunks=len(copies) + len(planted)))
        writer.seal()
    except BaseException:
        writer.abort()
        raise
    catalog.switch(version_id)
    return version_id


def _services_over(settings: Settings, embedder: Embedder, catalog: VersionCatalog) -> Services:
    """What application.services.build_services builds, with `catalog` in place of the one it
    opens."""
    with mock.patch.object(application.services, "open_catalog", lambda *_args, **_kw: catalog):
        return build_services(settings, embedder=embedder)


@contextmanager
def serve_world(world: World, backend: str, root: Path, embedder: Embedder,
                database_url: str | None = None, extra_config: str = ""
                ) -> Iterator[LeakDeployment]:
    """The world served on `backend`; `extra_config` (TOML tables, e.g. an identity provider
    to trust: tests/leak/memberships.py) is added to the end of its config."""
    config = world.write(root, REPO / "policies" / "model.conf")
    if extra_config:
        with config.open("a", encoding="utf-8") as f:
            f.write(extra_config)
    if backend == "edge-postgres":
        assert database_url is not None, "edge-postgres needs a database"
        # A top-level key: before the file's first table.
        config.write_text(f'database_url = "{database_url}"\n' + config.read_text("utf-8"),
                          encoding="utf-8")
    settings = load_settings(config)
    if settings.database_url is not None:
        import_file_state(settings)  # the policy file into the database
    overrides = open_acl_overrides(settings)
    for doc_id, acl in world.ingest_overrides.items():
        overrides.set(doc_id, acl)

    store: VectorBackend
    if backend in ("edge", "edge-postgres"):
        store = EdgeBackend(settings.index_dir)
    elif backend == "qdrant-memory":
        store = ServerBackend(QdrantClient(":memory:"), prefix=f"leak{world.seed}")
    else:
        raise ValueError(backend)
    catalog = VersionCatalog(settings.data_dir / "versions", store)
    report = build_index_version(
        settings.sources, settings.ingest, catalog=catalog, embedder=embedder,
        acl_overrides=overrides.current()[1], parser=shared_parser(),
    )
    built = report.version_id
    served = _plant(world, catalog, embedder)

    keystore = open_keys(settings)
    keys = {user: keystore.create(user) for user in world.users}

    replicas = 2 if backend == "edge-postgres" else 1
    if backend != "qdrant-memory":
        store.close()
        services = [build_services(settings, embedder=embedder) for _ in range(replicas)]
    else:
        services = [_services_over(settings, embedder, catalog)]
    with ExitStack() as stack:
        urls = tuple(stack.enter_context(LiveServer(create_app(settings, s))) for s in services)
        # Set while the server runs, as the CLI would: both are re-read per query.
        for doc_id, acl in world.live_overrides.items():
            overrides.set(doc_id, acl)
        quarantine = open_quarantine(settings)
        for doc_id in world.quarantined_docs:
            quarantine.add("document", doc_id, by="user:leak-suite", reason="leak suite")
        for source in world.quarantined_sources:
            quarantine.add("source", source, by="user:leak-suite", reason="leak suite")
        yield LeakDeployment(world, backend, root, settings, services[0], urls[0], keys, report,
                             built, served, urls)
