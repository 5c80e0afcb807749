"""The VectorBackend contract, run on every backend, then checks only one backend can make."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from qdrant_client import QdrantClient, models
from qdrant_edge import EdgeShard

from retrieval.edge_store import EdgeBackend
from retrieval.errors import StoreError
from retrieval.server_store import ServerBackend
from retrieval.store import INDEXED_FIELDS, ReadFilter, StoredChunk, VectorBackend

DIM = 16
GROUPS = [f"group:{i}" for i in range(12)]
USERS = [f"user:{i}" for i in range(30)]


def _unit(rng: np.random.Generator, n: int) -> np.ndarray:
    # Unit vectors: cosine stores vectors normalised, so stored == written only for these.
    v = rng.normal(size=(n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _chunks(n: int, seed: int = 7) -> list[StoredChunk]:
    """n chunks with seeded random vectors and 0-3 groups (+ a user on some) in their acl."""
    rng = np.random.default_rng(seed)
    vectors = _unit(rng, n)
    chunks = []
    for i in range(n):
        acl = sorted(rng.choice(GROUPS, size=int(rng.integers(0, 4)), replace=False).tolist())
        if rng.random() < 0.1:
            acl.append(str(rng.choice(USERS)))
        payload = {
            "acl": acl,
            "doc_id": f"doc-{i // 5}",
            "source": "fixtures",
            "text": f"chunk {i} ✓",
            "page": i % 7,
        }
        chunks.append(
            StoredChunk(str(uuid.uuid5(uuid.NAMESPACE_URL, f"c{i}")), vectors[i].tolist(), payload)
        )
    return chunks


def _build(backend: VectorBackend, version_id: str, chunks: Sequence[StoredChunk]) -> None:
    writer = backend.create(version_id, dim=DIM)
    for start in range(0, len(chunks), 100):
        writer.upsert(chunks[start : start + 100])
    writer.seal()


def _exact_top_k(
    chunks: Sequence[StoredChunk], query: np.ndarray, principals: set[str], k: int
) -> list[str]:
    permitted = [c for c in chunks if principals & set(c.payload["acl"])]
    if not permitted:
        return []
    matrix = np.array([c.vector for c in permitted], dtype=np.float64)
    scores = matrix @ query.astype(np.float64)
    order = np.argsort(-scores, kind="stable")[:k]
    return [permitted[i].point_id for i in order]


def test_round_trip(backend: VectorBackend) -> None:
    chunks = _chunks(20)
    _build(backend, "v1", chunks)
    assert backend.versions() == ["v1"]
    reader = backend.open("v1")
    try:
        assert reader.count() == 20
        target = next(c for c in chunks if c.payload["acl"])
        hits = reader.search(target.vector,
            access=ReadFilter(frozenset({target.payload["acl"][0]})), limit=3)
        assert hits[0].point_id == target.point_id
        assert hits[0].score == pytest.approx(1.0, abs=1e-5)
        assert hits[0].payload == target.payload
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    finally:
        reader.close()


@pytest.mark.parametrize(
    "principals",
    [
        {"group:0"},
        {"group:1", "group:5"},
        {"group:2", "group:3", "group:4", "user:3"},
        {"user:7"},
        set(GROUPS),
        {"nobody"},
    ],
    ids=["one-group", "two-groups", "groups-and-user", "one-user", "all-groups", "no-match"],
)
def test_filtered_search_is_exact_among_permitted(
    backend: VectorBackend, principals: set[str]
) -> None:
    chunks = _chunks(300)
    _build(backend, "v1", chunks)
    reader = backend.open("v1")
    by_id = {c.point_id: c for c in chunks}
    oracle = {c.point_id for c in chunks if principals & set(c.payload["acl"])}
    queries = _unit(np.random.default_rng(11), 5)
    try:
        for query in queries:
            hits = reader.search(query.tolist(), access=ReadFilter(frozenset(principals)), limit=10)
            assert {h.point_id for h in hits} <= oracle
            for hit in hits:
                assert principals & set(hit.payload["acl"])
                assert hit.payload == by_id[hit.point_id].payload
            # Complete recall: the filtered top-k is the exact top-k of the permitted points.
            assert [h.point_id for h in hits] == _exact_top_k(chunks, query, principals, 10)
        # A limit above the permitted count returns exactly the permitted set.
        everything = reader.search(queries[0].tolist(),
            access=ReadFilter(frozenset(principals)), limit=400)
        assert {h.point_id for h in everything} == oracle
    finally:
        reader.close()


def test_empty_principals_return_nothing(backend: VectorBackend) -> None:
    chunks = _chunks(30)
    _build(backend, "v1", chunks)
    reader = backend.open("v1")
    try:
        assert reader.search(chunks[0].vector, access=ReadFilter(frozenset(set())), limit=10) == []
        assert reader.search(chunks[0].vector, access=ReadFilter(frozenset([])), limit=10) == []
    finally:
        reader.close()


def test_chunk_with_empty_acl_is_never_returned(backend: VectorBackend) -> None:
    chunks = _chunks(40)
    secret = StoredChunk(str(uuid.uuid4()), chunks[0].vector, {**chunks[0].payload, "acl": []})
    _build(backend, "v1", [*chunks, secret])
    reader = backend.open("v1")
    everyone = {*GROUPS, *USERS, ""}
    try:
        hits = reader.search(secret.vector, access=ReadFilter(frozenset(everyone)), limit=50)
        assert secret.point_id not in {h.point_id for h in hits}
        assert len(hits) == sum(1 for c in chunks if c.payload["acl"])
    finally:
        reader.close()


def _oracle(chunks: Sequence[StoredChunk], access: ReadFilter) -> set[str]:
    """The points `access` admits, computed from its documented meaning, not from a store."""
    admitted = set()
    for c in chunks:
        doc, source = c.payload["doc_id"], c.payload["source"]
        if doc in access.exclude_docs or source in access.exclude_sources:
            continue
        by_acl = bool(access.principals & set(c.payload["acl"])) and doc not in access.acl_changed
        if by_acl or doc in access.include_docs:
            admitted.add(c.point_id)
    return admitted


@pytest.mark.parametrize(
    "access",
    [
        # doc-0..doc-3's ACL changed: the caller keeps doc-1 and doc-2 only by id.
        ReadFilter(frozenset({"group:0", "group:1"}), acl_changed=frozenset(
            {"doc-0", "doc-1", "doc-2", "doc-3"}), include_docs=frozenset({"doc-1", "doc-2"})),
        # Nothing by ACL (no principals), two documents by id.
        ReadFilter(frozenset(), acl_changed=frozenset({"doc-4", "doc-5"}),
                   include_docs=frozenset({"doc-4", "doc-5"})),
        # Excluded documents win over both the ACL and the by-id grant.
        ReadFilter(frozenset(GROUPS), acl_changed=frozenset({"doc-6"}),
                   include_docs=frozenset({"doc-6"}), exclude_docs=frozenset({"doc-6", "doc-7"})),
        # A whole source excluded: nothing left whatever the principals.
        ReadFilter(frozenset(GROUPS), include_docs=frozenset({"doc-1"}),
                   exclude_sources=frozenset({"fixtures"})),
    ],
    ids=["acl-changed", "by-id-only", "excluded-docs", "excluded-source"],
)
def test_read_filter_admits_exactly_what_it_describes(
    backend: VectorBackend, access: ReadFilter
) -> None:
    chunks = _chunks(200)
    _build(backend, "v1", chunks)
    reader = backend.open("v1")
    expected = _oracle(chunks, access)
    try:
        got = {h.point_id for h in reader.search(chunks[0].vector, access=access, limit=500)}
    finally:
        reader.close()
    assert got == expected
    if "fixtures" not in access.exclude_sources:
        assert expected  # each case admits something, so an empty result would fail it


def test_unsealed_version_is_invisible_and_abort_removes_it(backend: VectorBackend) -> None:
    _build(backend, "v1", _chunks(10))
    writer = backend.create("v2", dim=DIM)
    writer.upsert(_chunks(10, seed=3))
    assert backend.versions() == ["v1"]
    with pytest.raises(StoreError):
        backend.open("v2")
    with pytest.raises(StoreError, match="v2"):
        backend.switch("v2")
    with pytest.raises(StoreError):
        backend.create("v2", dim=DIM)
    writer.abort()
    assert backend.versions() == ["v1"]
    # The id is free again: nothing of the aborted build is left behind.
    again = backend.create("v2", dim=DIM)
    again.upsert(_chunks(3))
    again.seal()
    assert backend.versions() == ["v1", "v2"]
    reader = backend.open("v2")
    assert reader.count() == 3
    reader.close()


def test_writer_refuses_use_after_seal(backend: VectorBackend) -> None:
    writer = backend.create("v1", dim=DIM)
    writer.upsert(_chunks(2))
    writer.seal()
    with pytest.raises(StoreError, match="sealed"):
        writer.upsert(_chunks(2))
    with pytest.raises(StoreError):
        backend.create("v1", dim=DIM)


def test_switch_and_current(backend: VectorBackend) -> None:
    assert backend.current() is None
    _build(backend, "v1", _chunks(5))
    _build(backend, "v2", _chunks(5, seed=2))
    backend.switch("v1")
    assert backend.current() == "v1"
    backend.switch("v2")
    assert backend.current() == "v2"
    backend.switch("v2")
    assert backend.current() == "v2"
    with pytest.raises(StoreError, match="v9"):
        backend.switch("v9")
    assert backend.current() == "v2"


def test_drop(backend: VectorBackend) -> None:
    _build(backend, "v1", _chunks(5))
    _build(backend, "v2", _chunks(5, seed=2))
    backend.switch("v2")
    with pytest.raises(StoreError, match="current"):
        backend.drop("v2")
    backend.drop("v1")
    assert backend.versions() == ["v2"]
    with pytest.raises(StoreError):
        backend.open("v1")
    with pytest.raises(StoreError):
        backend.drop("v1")
    assert backend.current() == "v2"


def test_iter_chunks_returns_every_point(backend: VectorBackend) -> None:
    chunks = _chunks(300)  # more than one scroll page
    _build(backend, "v1", chunks)
    reader = backend.open("v1")
    try:
        stored = {c.point_id: c for c in reader.iter_chunks()}
        assert reader.count() == 300
    finally:
        reader.close()
    assert set(stored) == {c.point_id for c in chunks}
    for chunk in chunks:
        got = stored[chunk.point_id]
        assert got.payload == chunk.payload
        np.testing.assert_allclose(np.asarray(got.vector), chunk.vector, atol=1e-6)


def test_open_unknown_version_raises(backend: VectorBackend) -> None:
    with pytest.raises(StoreError, match="nope"):
        backend.open("nope")


@pytest.mark.parametrize("bad", ["", "../escape", ".hidden", "a/b", "x" * 200])
def test_invalid_version_ids_are_refused(backend: VectorBackend, bad: str) -> None:
    with pytest.raises(StoreError, match="invalid version id"):
        backend.create(bad, dim=DIM)


def test_closed_reader_raises(backend: VectorBackend) -> None:
    chunks = _chunks(5)
    _build(backend, "v1", chunks)
    reader = backend.open("v1")
    reader.close()
    with pytest.raises(StoreError, match="closed"):
        reader.search(chunks[0].vector, access=ReadFilter(frozenset({"group:0"})), limit=3)


def test_engine_errors_become_store_errors(backend: VectorBackend) -> None:
    writer = backend.create("v1", dim=DIM)
    with pytest.raises(StoreError, match="upsert"):
        writer.upsert([StoredChunk(str(uuid.uuid4()), [0.5] * (DIM + 1), {"acl": ["a"]})])
    with pytest.raises(StoreError, match="upsert"):
        writer.upsert([StoredChunk("not-a-uuid", [0.5] * DIM, {"acl": ["a"]})])
    writer.abort()


def test_payload_indexes_exist_before_first_write(
    backend: VectorBackend, backend_kind: str
) -> None:
    if backend_kind == "server-memory":
        pytest.skip(
            "qdrant-client local mode keeps no payload indexes and reports an empty "
            "payload_schema; see test_server_creates_indexes_before_any_upsert"
        )
    writer: Any = backend.create("v1", dim=DIM)
    try:
        # acl's is a tenant index: a sealed version stores chunks with the same ACL together.
        assert writer.indexed_fields() == {"acl": "keyword, tenant", "doc_id": "keyword",
                                           "source": "keyword"}
    finally:
        writer.abort()


class _RecordingClient(QdrantClient):
    """A real local-mode client that records the order of index creation and writes."""

    def __init__(self) -> None:
        super().__init__(":memory:")
        self.calls: list[tuple[str, str]] = []
        self.tenant_indexes: list[str] = []

    def create_payload_index(  # type: ignore[override]
        self, collection_name: str, field_name: str, **kw: Any
    ) -> Any:
        self.calls.append(("index", field_name))
        if getattr(kw.get("field_schema"), "is_tenant", False):
            self.tenant_indexes.append(field_name)
        return super().create_payload_index(collection_name, field_name, **kw)

    def upsert(self, collection_name: str, points: Any, **kw: Any) -> Any:  # type: ignore[override]
        self.calls.append(("upsert", collection_name))
        return super().upsert(collection_name, points, **kw)


def test_server_creates_indexes_before_any_upsert() -> None:
    client = _RecordingClient()
    backend = ServerBackend(client)
    _build(backend, "v1", _chunks(150))
    first_upsert = client.calls.index(("upsert", "clearance_v1"))
    assert client.calls[:first_upsert] == [("index", f) for f in INDEXED_FIELDS]
    assert client.tenant_indexes == ["acl"]  # what a server co-locates chunks by
    backend.close()


# Edge only: the files on disk.


def test_edge_layout_on_disk(tmp_path: Path) -> None:
    root = tmp_path / "index"
    backend = EdgeBackend(root)
    writer = backend.create("v1", dim=DIM)
    writer.upsert(_chunks(5))
    assert (root / ".building-v1").is_dir()
    assert not (root / "v1").exists()
    writer.seal()
    assert not (root / ".building-v1").exists()
    assert (root / "v1").is_dir()
    backend.switch("v1")
    assert (root / "CURRENT").read_text(encoding="utf-8").strip() == "v1"
    assert sorted(p.name for p in root.iterdir()) == ["CURRENT", "v1"]  # no temp file left
    with pytest.raises(StoreError, match="invalid version id"):
        backend.create("CURRENT", dim=DIM)


def test_edge_data_and_current_survive_a_new_instance(tmp_path: Path) -> None:
    chunks = _chunks(60)
    first = EdgeBackend(tmp_path / "index")
    _build(first, "v1", chunks)
    first.switch("v1")
    reader = first.open("v1")
    query = chunks[3].vector
    before = reader.search(query, access=ReadFilter(frozenset(set(GROUPS))), limit=5)
    reader.close()
    first.close()

    second = EdgeBackend(tmp_path / "index")
    assert second.versions() == ["v1"]
    assert second.current() == "v1"
    reader = second.open("v1")
    try:
        assert reader.count() == 60
        after = reader.search(query, access=ReadFilter(frozenset(set(GROUPS))), limit=5)
        assert [h.point_id for h in after] == [h.point_id for h in before]
        assert len(after) == 5
    finally:
        reader.close()


def test_edge_same_version_opens_twice_and_searches_from_threads(tmp_path: Path) -> None:
    chunks = _chunks(100)
    backend = EdgeBackend(tmp_path / "index")
    _build(backend, "v1", chunks)
    # Without a WAL the shard takes no directory lock: a reload may open a version still open.
    a, b = backend.open("v1"), backend.open("v1")
    query = chunks[0].vector
    expected = [h.point_id for h in a.search(query,
        access=ReadFilter(frozenset({"group:1"})), limit=5)]
    results: list[list[str]] = []

    def worker() -> None:
        for _ in range(20):
            results.append([h.point_id for h in b.search(query,
                access=ReadFilter(frozenset({"group:1"})), limit=5)])

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 80
    assert all(r == expected for r in results)
    a.close()
    b.close()


def test_edge_filtered_recall_is_complete_through_hnsw(tmp_path: Path) -> None:
    # Tiny thresholds make optimize() build HNSW and make filtered search walk the graph, where a
    # missing keyword index on `acl` silently drops permitted points (recall ~0.3 measured).
    root = tmp_path / "index"
    backend = EdgeBackend(root, full_scan_threshold_kb=1, indexing_threshold_kb=1)
    chunks = _chunks(3000, seed=5)
    _build(backend, "v1", chunks)
    probe = EdgeShard.load(str(root / "v1"))
    try:
        assert probe.info().indexed_vectors_count == 3000  # the graph is really in use
    finally:
        probe.close()
    reader = backend.open("v1")
    rng = np.random.default_rng(13)
    try:
        for query in _unit(rng, 20):
            principals = set(rng.choice(GROUPS, size=2, replace=False).tolist())
            hits = reader.search(query.tolist(), access=ReadFilter(frozenset(principals)), limit=10)
            assert [h.point_id for h in hits] == _exact_top_k(chunks, query, principals, 10)
    finally:
        reader.close()


def test_server_unreachable_is_a_store_error() -> None:
    # Nothing listens on port 1. No version check: it runs in a thread and warns when it fails.
    backend = ServerBackend(QdrantClient(url="http://127.0.0.1:1", check_compatibility=False))
    with pytest.raises(StoreError, match="listing collections failed"):
        backend.versions()
    backend.close()


# Abandoned builds (issue 3): a build that dies must leave nothing that looks like a version, and
# the next build, or start-up, removes what it left without touching a live build.


def test_remove_abandoned_keeps_sealed_versions_and_live_builds(backend: VectorBackend) -> None:
    _build(backend, "v1", _chunks(5))
    backend.switch("v1")
    writer = backend.create("v2", dim=DIM)
    writer.upsert(_chunks(5, seed=2))
    assert backend.remove_abandoned() == []  # type: ignore[attr-defined]
    assert backend.versions() == ["v1"]
    assert backend.current() == "v1"
    writer.seal()  # the live build was left whole
    assert backend.versions() == ["v1", "v2"]
    assert backend.remove_abandoned() == []  # type: ignore[attr-defined]
    assert backend.versions() == ["v1", "v2"]
    reader = backend.open("v1")
    try:
        assert reader.count() == 5
    finally:
        reader.close()


REPO = Path(__file__).resolve().parents[2]

# A builder in a process of its own: it creates a version, writes a point, says "ready", then
# seals or aborts on a line from stdin; or the test kills it with SIGKILL.
_BUILDER = """
import sys
from retrieval.edge_store import EdgeBackend
from retrieval.store import StoredChunk
writer = EdgeBackend(sys.argv[1]).create(sys.argv[2], dim=16)
writer.upsert([StoredChunk("00000000-0000-0000-0000-000000000001", [1.0] + [0.0] * 15,
                           {"acl": ["group:0"], "doc_id": "d", "source": "s", "text": "t"})])
print("ready", flush=True)
command = sys.stdin.readline().strip()
if command in ("seal", "abort"):
    getattr(writer, command)()
    print("done", flush=True)
"""

# Holds an flock on a path (the index root: what a switch holds) until stdin closes.
_HOLDER = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
fcntl.flock(fd, fcntl.LOCK_EX)
print("ready", flush=True)
sys.stdin.read()
"""


def _child(script: str, *args: str) -> subprocess.Popen[str]:
    child = subprocess.Popen(
        [sys.executable, "-c", script, *args], cwd=REPO, text=True,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "ready"
    return child


def _entries(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir())


def test_edge_remove_abandoned_removes_a_killed_build_and_keeps_a_live_one(tmp_path: Path) -> None:
    root = tmp_path / "index"
    backend = EdgeBackend(root)
    _build(backend, "v1", _chunks(5))
    backend.switch("v1")
    # The live build first: create() would clean up after the dead one.
    with _child(_BUILDER, str(root), "live") as live:
        with _child(_BUILDER, str(root), "dead") as dead:
            dead.kill()  # SIGKILL: no abort, no finally; the kernel drops its flock
            dead.wait()
        assert _entries(root) == [
            ".build-dead.lock", ".build-live.lock", ".building-dead", ".building-live", "CURRENT",
            "v1",
        ]
        assert backend.versions() == ["v1"]
        assert backend.remove_abandoned() == [".build-dead.lock", ".building-dead"]
        assert _entries(root) == [".build-live.lock", ".building-live", "CURRENT", "v1"]
        assert backend.remove_abandoned() == []
        with pytest.raises(StoreError, match="being built"):
            backend.create("live", dim=DIM)  # its lock is held by the live child
        out, _ = live.communicate("seal\n", timeout=60)
        assert out.strip() == "done" and live.returncode == 0
    assert _entries(root) == ["CURRENT", "live", "v1"]
    assert backend.versions() == ["live", "v1"]
    assert backend.current() == "v1"
    reader = backend.open("v1")
    try:
        assert reader.count() == 5
    finally:
        reader.close()


def test_edge_next_build_cleans_up_after_a_killed_one(tmp_path: Path) -> None:
    root = tmp_path / "index"
    backend = EdgeBackend(root)
    _build(backend, "v1", _chunks(5))
    backend.switch("v1")
    with _child(_BUILDER, str(root), "v2") as dead:
        dead.kill()
        dead.wait()
    (root / ".build-v0.lock").touch()  # a builder killed between its rename and its unlink
    assert ".building-v2" in _entries(root)
    _build(backend, "v3", _chunks(5, seed=3))
    assert _entries(root) == ["CURRENT", "v1", "v3"]
    assert backend.current() == "v1"
    # The dead build's id is free again.
    _build(backend, "v2", _chunks(4, seed=4))
    assert backend.versions() == ["v1", "v2", "v3"]


def test_edge_build_holds_its_lock_from_create_to_seal_or_abort(tmp_path: Path) -> None:
    root = tmp_path / "index"
    backend = EdgeBackend(root)
    for end in ("seal", "abort"):
        writer = backend.create(f"v-{end}", dim=DIM)
        writer.upsert(_chunks(3))
        lock = root / f".build-v-{end}.lock"
        # flock locks belong to an open file description: a second open here conflicts too.
        fd = os.open(lock, os.O_RDONLY)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            assert backend.remove_abandoned() == []
        finally:
            os.close(fd)
        getattr(writer, end)()
        assert not lock.exists()
        assert not (root / f".building-v-{end}").exists()
    assert _entries(root) == ["v-seal"]


def test_edge_building_dir_without_lock_file_counts_as_abandoned(tmp_path: Path) -> None:
    # As a build from before the lock files (or a hand-made copy) would leave it.
    root = tmp_path / "index"
    backend = EdgeBackend(root)
    (root / ".building-old" / "segments").mkdir(parents=True)
    assert backend.remove_abandoned() == [".building-old"]
    assert _entries(root) == []


def test_edge_leftover_switch_temp_file_is_ignored_then_cleaned(tmp_path: Path) -> None:
    root = tmp_path / "index"
    backend = EdgeBackend(root)
    _build(backend, "v1", _chunks(5))
    _build(backend, "v2", _chunks(5, seed=2))
    backend.switch("v1")
    # A switch killed after writing its temp file and before the rename over CURRENT.
    leftover = root / ".CURRENT.99999.1.tmp"
    leftover.write_text("v2\n", encoding="utf-8")
    assert backend.current() == "v1"
    assert backend.versions() == ["v1", "v2"]
    # While a switch holds the root lock, a temp file may be its own: it stays.
    with _child(_HOLDER, str(root)) as holder:
        assert backend.remove_abandoned() == []
        assert leftover.exists()
        holder.communicate("", timeout=30)
    assert backend.remove_abandoned() == [leftover.name]
    backend.switch("v2")
    assert backend.current() == "v2"
    assert _entries(root) == ["CURRENT", "v1", "v2"]


def test_edge_switch_waits_for_the_root_lock(tmp_path: Path) -> None:
    root = tmp_path / "index"
    backend = EdgeBackend(root)
    _build(backend, "v1", _chunks(5))
    with _child(_HOLDER, str(root)) as holder:
        done = threading.Event()
        thread = threading.Thread(target=lambda: (backend.switch("v1"), done.set()))
        thread.start()
        assert not done.wait(0.3)  # blocked behind the holder
        assert backend.current() is None
        holder.communicate("", timeout=30)
        thread.join(timeout=30)
    assert done.is_set() and backend.current() == "v1"


def test_edge_drop_never_leaves_a_half_deleted_version_listed(tmp_path: Path) -> None:
    root = tmp_path / "index"
    backend = EdgeBackend(root)
    _build(backend, "v1", _chunks(5))
    _build(backend, "v2", _chunks(5, seed=2))
    backend.switch("v2")
    backend.drop("v1")
    assert _entries(root) == ["CURRENT", "v2"]
    # A drop killed half-way through deleting: the files are out of sight, not a version.
    shutil.copytree(root / "v2", root / ".dropping-v1")
    (root / ".dropping-v1" / "edge_config.json").unlink()
    assert backend.versions() == ["v2"]
    assert backend.remove_abandoned() == [".dropping-v1"]
    assert _entries(root) == ["CURRENT", "v2"]


def test_server_remove_abandoned_removes_only_idle_building_collections(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from retrieval import server_store

    client = QdrantClient(":memory:")
    backend = ServerBackend(client)
    _build(backend, "v1", _chunks(5))
    backend.switch("v1")
    monkeypatch.setattr(server_store, "_HEARTBEAT_EVERY_S", 0.0)
    writer = backend.create("v2", dim=DIM)
    beat = client.get_collection("clearance_v2").config.metadata["clearance_heartbeat"]
    time.sleep(0.01)
    writer.upsert(_chunks(5, seed=2))
    assert client.get_collection("clearance_v2").config.metadata["clearance_heartbeat"] > beat
    # No heartbeat (built before them): its age cannot be told, so it is kept.
    client.create_collection(
        "clearance_v3",
        vectors_config=models.VectorParams(size=DIM, distance=models.Distance.COSINE),
        metadata={"clearance_state": "building", "clearance_version": "v3",
                  "clearance_prefix": "clearance"},
    )
    # Another deployment's prefix on the same server is never ours to clean.
    other = ServerBackend(client, prefix="other")
    other.create("v9", dim=DIM).upsert(_chunks(2))
    assert backend.remove_abandoned() == []  # the default: idle for over an hour
    time.sleep(0.01)
    assert backend.remove_abandoned(max_idle_s=0.0) == ["clearance_v2"]
    assert backend.versions() == ["v1"]
    assert backend.current() == "v1"
    assert {c.name for c in client.get_collections().collections} == {
        "clearance_v1", "clearance_v3", "other_v9"}
    with pytest.raises(StoreError):
        writer.seal()
    backend.close()
