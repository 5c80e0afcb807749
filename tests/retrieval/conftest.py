"""Fixtures for the vector store contract: one `backend` per implementation."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from qdrant_client import QdrantClient, models

from retrieval.edge_store import EdgeBackend
from retrieval.server_store import ServerBackend
from retrieval.store import VectorBackend

_LIVE = pytest.mark.skipif(
    not os.environ.get("QDRANT_URL"),
    reason="QDRANT_URL is not set: no live Qdrant server to run the contract against",
)


def _drop_live_prefix(client: QdrantClient, prefix: str) -> None:
    """Remove everything a live test created, the alias first so no collection is current."""
    for alias in client.get_aliases().aliases:
        if alias.alias_name.startswith(f"{prefix}_"):
            drop = models.DeleteAliasOperation(
                delete_alias=models.DeleteAlias(alias_name=alias.alias_name)
            )
            client.update_collection_aliases(change_aliases_operations=[drop])
    for collection in client.get_collections().collections:
        if collection.name.startswith(f"{prefix}_"):
            client.delete_collection(collection.name)


@pytest.fixture(params=["edge", "server-memory", pytest.param("server-live", marks=_LIVE)])
def backend_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def backend(backend_kind: str, tmp_path: Path) -> Iterator[VectorBackend]:
    if backend_kind == "edge":
        edge = EdgeBackend(tmp_path / "index")
        yield edge
        edge.close()
    elif backend_kind == "server-memory":
        memory = ServerBackend(QdrantClient(":memory:"))
        yield memory
        memory.close()
    else:
        client = QdrantClient(
            url=os.environ["QDRANT_URL"], api_key=os.environ.get("QDRANT_API_KEY")
        )
        # A prefix of its own per test, so runs sharing a server never see each other.
        prefix = f"clrtest{uuid.uuid4().hex[:10]}"
        try:
            yield ServerBackend(client, prefix=prefix)
        finally:
            _drop_live_prefix(client, prefix)
            client.close()
