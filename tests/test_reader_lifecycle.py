"""A server keeps one loaded version, not one per version it ever served.

The first test re-indexes 20 times under a real `clearance serve` in its own process and samples
that process's threads and RSS after each round, and what it maps and holds open under the
index directory. The second shows, in this process, that a search which started on a version
finishes on it while the index switches under it, and that the version is closed after.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from application.services import open_acl_overrides, open_catalog, open_document_access
from application.settings import Settings, load_settings
from control.keys import KeyStore
from ingest.jobs import build_lock
from ingest.pipeline import build_index_version
from retrieval.bm25 import Bm25Encoder
from retrieval.edge_store import EdgeBackend
from retrieval.embedder import Embedder
from retrieval.retriever import Retriever
from retrieval.scope import Scope
from retrieval.store import DENSE, Hit, Ranking, ReadFilter, SparseVector, VersionReader
from retrieval.versions import VersionCatalog
from tests.conftest import shared_parser
from tests.llm_world import USERS, write_world
from tests.processes import served

pytestmark = pytest.mark.e2e

REINDEXES = 20
KEEP_VERSIONS = 2
SEARCHES = ("When does the office close for the winter break?", "Who issues parking permits?",
            "How are travel expenses reimbursed?")


def world(root: Path) -> Path:
    config = write_world(root, llm_url=None)
    with config.open("a", encoding="utf-8") as f:
        f.write(f"\n[ingest]\nkeep_versions = {KEEP_VERSIONS}\n")
    return config


def reindex(settings: Settings, embedder: Embedder, round_: int) -> str:
    """What `clearance ingest` does, in this process: one changed file, build, switch, prune."""
    changed = settings.data_dir.parent / "docs" / "public" / "holidays.md"
    with changed.open("a", encoding="utf-8") as f:
        f.write(f"\nRevision {round_}: the canteen closes at {round_ % 12 + 1} pm.\n")
    with build_lock(settings.data_dir):
        catalog = open_catalog(settings)
        _, overrides = open_acl_overrides(settings).current()
        report = build_index_version(settings.sources, settings.ingest, catalog=catalog,
                                     embedder=embedder, acl_overrides=overrides,
                                     bm25=Bm25Encoder(settings.retrieval.bm25),
                                     parser=shared_parser())
        catalog.prune(settings.ingest.keep_versions)
    return report.version_id


def paths_under(pid: int, root: Path) -> tuple[set[str], set[str]]:
    """Files under `root` that process `pid` maps, and those it holds open."""
    prefix = str(root.resolve())
    with open(f"/proc/{pid}/maps", encoding="utf-8") as maps:
        mapped = {line.split(None, 5)[5].strip() for line in maps
                  if len(line.split(None, 5)) == 6 and prefix in line}
    held = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue  # closed meanwhile
        if prefix in target:
            held.add(target)
    return mapped, held


def version_of(path: str, root: Path) -> str:
    return Path(path.removesuffix(" (deleted)")).relative_to(root.resolve()).parts[0]


def test_twenty_reindexes_leave_threads_rss_and_mappings_flat(tmp_path: Path, embedder: Embedder):
    config = world(tmp_path)
    settings = load_settings(config)
    reindex(settings, embedder, 0)
    keys = {user: KeyStore(settings.keys_file).create(user) for user in USERS}
    index = settings.index_dir
    figures: list[dict[str, Any]] = []
    with served(config, tmp_path / "server.log") as (proc, url), httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {keys['dave']}"},
            timeout=60) as client:
        server = psutil.Process(proc.pid)

        def search_all(expected: str) -> None:
            for query in SEARCHES:
                response = client.post("/v1/search", json={"query": query, "top_k": 3})
                assert response.status_code == 200, response.text
                assert response.json()["index_version"] == expected
            assert client.get("/healthz").json()["status"] == "ok"

        for round_ in range(1, REINDEXES + 1):
            version = reindex(settings, embedder, round_)
            search_all(version)
            present = set(EdgeBackend(index).versions())
            assert len(present) == KEEP_VERSIONS and version in present
            mapped, held = paths_under(proc.pid, index)
            figures.append({"round": round_, "threads": server.num_threads(),
                            "rss_mb": server.memory_info().rss / 2**20,
                            "mapped": len(mapped), "versions": sorted(present)})
            print(f"re-index {round_:2d}: {figures[-1]['threads']} threads, "
                  f"RSS {figures[-1]['rss_mb']:.0f} MB, {len(mapped)} files mapped")
            # Only the version now served is loaded: nothing of a deleted or an older one.
            assert {version_of(p, index) for p in mapped} == {version}, sorted(mapped)[:5]
            assert not [p for p in mapped | held if "(deleted)" in p], sorted(mapped | held)
            assert {version_of(p, index) for p in held} <= {version}, sorted(held)
    first, last = figures[0], figures[-1]
    print(f"after re-index 1: {first['threads']} threads, {first['rss_mb']:.0f} MB; after "
          f"{REINDEXES}: {last['threads']} threads, {last['rss_mb']:.0f} MB")
    assert last["threads"] <= first["threads"] * 1.1, figures
    assert last["rss_mb"] <= first["rss_mb"] * 1.1, figures


class _GatedReader:
    """A real reader whose searches wait for `gate` once `entered` is set: a slow search."""

    def __init__(self, reader: VersionReader, entered: threading.Event,
                 gate: threading.Event) -> None:
        self._reader, self._entered, self._gate = reader, entered, gate
        self.closed = False

    def search(self, vector: Sequence[float], *, access: ReadFilter, limit: int,
               sparse: SparseVector | None = None, ranking: Ranking = DENSE) -> list[Hit]:
        self._entered.set()
        assert self._gate.wait(timeout=60), "the test never opened the gate"
        assert not self.closed, "the reader was closed during a search"
        return self._reader.search(vector, access=access, limit=limit, sparse=sparse,
                                   ranking=ranking)

    def close(self) -> None:
        self.closed = True
        self._reader.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._reader, name)


class _GatedBackend(EdgeBackend):
    """The real embedded backend, recording the readers it opens; the first one is gated."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.entered, self.gate = threading.Event(), threading.Event()
        self.opened: dict[str, _GatedReader] = {}

    def open(self, version_id: str) -> Any:
        gate = self.gate if not self.opened else _open_gate()
        reader = _GatedReader(super().open(version_id), self.entered, gate)
        self.opened[version_id] = reader
        return reader


def _open_gate() -> threading.Event:
    gate = threading.Event()
    gate.set()
    return gate


@pytest.fixture
def gated(tmp_path: Path, embedder: Embedder) -> Iterator[tuple[Settings, _GatedBackend]]:
    settings = load_settings(world(tmp_path))
    reindex(settings, embedder, 0)
    yield settings, _GatedBackend(settings.index_dir)


def test_a_search_finishes_on_its_version_which_is_closed_after(
        gated: tuple[Settings, _GatedBackend], embedder: Embedder):
    settings, backend = gated
    catalog = VersionCatalog(settings.data_dir / "versions", backend)
    retriever = Retriever(catalog, embedder, open_document_access(settings, catalog))
    scope = Scope(user="dave", principals=frozenset({"user:dave", "group:staff"}),
                  policy_version="test")
    first = catalog.current()
    assert first is not None
    results: list[Any] = []
    slow = threading.Thread(target=lambda: results.append(
        retriever.search(SEARCHES[0], scope=scope, top_k=3)))
    try:
        slow.start()
        assert backend.entered.wait(timeout=60)
        # While that search runs: two re-indexes, so its version is switched away and deleted.
        reindex(settings, embedder, 1)
        second = reindex(settings, embedder, 2)
        assert first not in backend.versions()
        quick = retriever.search(SEARCHES[1], scope=scope, top_k=3)
        assert quick.index_version == second
        assert retriever.open_versions() == sorted([first, second])
        assert not backend.opened[first].closed
        backend.gate.set()
        slow.join(timeout=60)
        assert not slow.is_alive()
        assert results[0].index_version == first and results[0].hits
        # The last search on the old version closed it; the current one stays open.
        assert backend.opened[first].closed
        assert retriever.open_versions() == [second]
    finally:
        backend.gate.set()
        slow.join(timeout=60)
        retriever.close()
    assert backend.opened[second].closed
