"""Version manifests: rollback order, unknown versions, retention that spares the current one."""

from __future__ import annotations

from pathlib import Path

import pytest

from retrieval.edge_store import EdgeBackend
from retrieval.errors import StoreError
from retrieval.store import StoredChunk
from retrieval.versions import VersionCatalog, VersionInfo

POINT = "6f1c2a52-3f0e-4c55-9d0a-2b8f6a1e9c41"


def _build(catalog: VersionCatalog, version_id: str, created: str) -> None:
    writer = catalog.backend.create(version_id, dim=4)
    payload = {"acl": ["group:staff"], "doc_id": "d", "source": "s", "text": "t"}
    writer.upsert([StoredChunk(POINT, [1.0, 0.0, 0.0, 0.0], payload)])
    writer.seal()
    catalog.record(VersionInfo(id=version_id, created_at=created, embedder="e", dim=4,
                               documents=1, chunks=1, sources=["s"]))


@pytest.fixture
def catalog(tmp_path: Path) -> VersionCatalog:
    catalog = VersionCatalog(tmp_path / "versions", EdgeBackend(tmp_path / "index"))
    for i in range(1, 6):
        _build(catalog, f"v{i}", f"2026-11-0{i}T00:00:00+00:00")
    catalog.switch("v5")
    return catalog


def test_rollback_goes_to_the_previous_then_the_named_version(catalog: VersionCatalog):
    assert catalog.rollback() == "v4"
    assert catalog.current() == "v4"
    assert catalog.rollback(to="v5") == "v5"
    with pytest.raises(StoreError, match="does not exist"):
        catalog.rollback(to="v9")
    catalog.switch("v1")
    with pytest.raises(StoreError, match="no earlier"):
        catalog.rollback()


def test_prune_keeps_the_newest_and_never_the_current(catalog: VersionCatalog, tmp_path: Path):
    catalog.switch("v1")
    removed = catalog.prune(keep=3)
    assert removed == ["v2"]  # v1 is current: kept although old
    assert [v.id for v in catalog.sealed()] == ["v1", "v3", "v4", "v5"]
    assert not (tmp_path / "versions" / "v2.json").exists()
    catalog.switch("v5")
    assert catalog.prune(keep=3) == ["v1"]
    assert catalog.backend.versions() == ["v3", "v4", "v5"]
