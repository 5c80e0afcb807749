"""Rollback time of the Edge backend at 1k and 100k chunks, and the first search after it.

    .venv/bin/python -m bench.rollback [--sizes 1000,100000] [--rollbacks 20] [--out PATH]

For each size N: builds two sealed versions of N chunks straight through EdgeBackend (random
unit 384-dimension float32 vectors, as the embedder writes; a payload with acl (1 to 3 of 40
random group tokens), doc_id, source and a short text), records their manifests with
VersionCatalog and switches to the second. Then:

- rollback: `catalog.rollback(to=...)` 20 times, alternating between the two versions: the
  whole operator command less the interpreter start-up (listing versions and manifests,
  writing CURRENT with fsync, os.replace and a directory fsync);
- of which switch: `backend.switch()` alone, 20 times (CURRENT written with its fsyncs);
- first search, warm: after each switch, reading CURRENT and running one filtered search on a
  reader for that version opened before (what a server that has served it before does);
- first search, cold: after each switch, EdgeBackend.open() of the new current version plus its
  first filtered search (what a server does the first time it meets a version). The files are
  in the page cache by then (they were just written); a cold disk would add reading them.

Prints a table and writes bench/results/rollback.json. Acceptance: rollback under 1 s at 1k and
at 100k chunks.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script: bench/ is sys.path[0], not the repository
    sys.path.insert(0, str(REPO))

from qdrant_edge import EdgeShard  # noqa: E402

from retrieval.edge_store import EdgeBackend  # noqa: E402
from retrieval.store import ReadFilter, StoredChunk  # noqa: E402
from retrieval.versions import VersionCatalog, VersionInfo  # noqa: E402

DIM = 384
GROUPS = [f"group:g{i}" for i in range(40)]
BATCH = 1000
LIMIT_S = 1.0  # acceptance: a rollback takes less than this


def make_chunks(n: int, seed: int) -> list[StoredChunk]:
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(n, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    sizes = rng.integers(1, 4, size=n)
    chunks = []
    for i in range(n):
        acl = sorted(rng.choice(GROUPS, size=int(sizes[i]), replace=False).tolist())
        payload = {
            "acl": acl,
            "doc_id": f"bench:doc-{i // 20}.md",
            "source": "bench",
            "text": f"Chunk {i} of the rollback benchmark: a short sentence or two of text.",
        }
        point_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"bench-{seed}-{i}"))
        chunks.append(StoredChunk(point_id, vectors[i].tolist(), payload))
    return chunks


def build(backend: EdgeBackend, catalog: VersionCatalog, version_id: str, n: int, seed: int
          ) -> dict[str, float]:
    """Build and seal one version, record its manifest; seconds spent writing and sealing."""
    chunks = make_chunks(n, seed)
    started = time.perf_counter()
    writer = backend.create(version_id, dim=DIM)
    for start in range(0, n, BATCH):
        writer.upsert(chunks[start : start + BATCH])
    written = time.perf_counter()
    writer.seal()
    sealed = time.perf_counter()
    catalog.record(VersionInfo(
        id=version_id, created_at=datetime.now(UTC).isoformat(), embedder="bench-random",
        dim=DIM, documents=(n + 19) // 20, chunks=n, sources=["bench"],
    ))
    return {"upsert_s": written - started, "seal_s": sealed - written}


def summary(values_s: Sequence[float]) -> dict[str, float]:
    ms = [v * 1000 for v in values_s]
    return {"median_ms": statistics.median(ms), "max_ms": max(ms), "min_ms": min(ms)}


def bench_size(root: Path, n: int, rollbacks: int, seed: int) -> dict[str, object]:
    backend = EdgeBackend(root / "index")
    catalog = VersionCatalog(root / "versions", backend)
    a, b = f"bench-{n}-a", f"bench-{n}-b"
    builds = {a: build(backend, catalog, a, n, seed), b: build(backend, catalog, b, n, seed + 1)}
    print(f"  built 2 x {n} chunks: " + ", ".join(
        f"{v}: upsert {t['upsert_s']:.1f} s, seal {t['seal_s']:.1f} s" for v, t in builds.items()),
        file=sys.stderr, flush=True)
    catalog.switch(b)

    rng = np.random.default_rng(seed + 7)
    query = rng.normal(size=DIM).astype(np.float32)
    query = (query / np.linalg.norm(query)).tolist()
    principals = {"group:g1", "group:g2"}

    permitted = sum(1 for c in make_chunks(n, seed) if principals & set(c.payload["acl"])) / n
    probe = EdgeShard.load(str(root / "index" / a))  # is the HNSW graph built and in use?
    try:
        indexed = int(probe.info().indexed_vectors_count)
    finally:
        probe.close()

    readers = {v: backend.open(v) for v in (a, b)}
    for reader in readers.values():  # first searches of each reader happen before timing
        reader.search(query, access=ReadFilter(frozenset(principals)), limit=10)
    rollback_s, switch_s, warm_s, cold_open_s, cold_search_s = [], [], [], [], []
    try:
        for i in range(rollbacks):
            started = time.perf_counter()
            backend.switch(a if i % 2 == 0 else b)
            switch_s.append(time.perf_counter() - started)
        catalog.switch(b)
        for i in range(rollbacks):
            target = a if i % 2 == 0 else b
            started = time.perf_counter()
            assert catalog.rollback(to=target) == target
            rollback_s.append(time.perf_counter() - started)

            started = time.perf_counter()
            current = catalog.current()
            assert current == target
            hits = readers[current].search(query,
                access=ReadFilter(frozenset(principals)), limit=10)
            warm_s.append(time.perf_counter() - started)
            assert len(hits) == 10 and all(principals & set(h.payload["acl"]) for h in hits)

            started = time.perf_counter()
            reader = backend.open(catalog.current() or "")
            opened = time.perf_counter()
            cold_hits = reader.search(query, access=ReadFilter(frozenset(principals)), limit=10)
            searched = time.perf_counter()
            reader.close()
            cold_open_s.append(opened - started)
            cold_search_s.append(searched - opened)
            assert [h.point_id for h in cold_hits] == [h.point_id for h in hits]
    finally:
        for reader in readers.values():
            reader.close()
    cold_total = [o + s for o, s in zip(cold_open_s, cold_search_s, strict=True)]
    return {
        "chunks": n,
        "builds": builds,
        "rollback": summary(rollback_s),
        "switch_only": summary(switch_s),
        "first_search_warm": summary(warm_s),
        "cold_open": summary(cold_open_s),
        "cold_first_search": summary(cold_search_s),
        "cold_open_plus_search": summary(cold_total),
        "rollback_under_1s": max(rollback_s) < LIMIT_S,
        "rollbacks": rollbacks,
        "indexed_vectors": indexed,
        "permitted_fraction": round(permitted, 4),
        "index_bytes": sum(f.stat().st_size for f in (root / "index").rglob("*") if f.is_file()),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,100000",
                        help="comma-separated chunk counts (default: 1000,100000)")
    parser.add_argument("--rollbacks", type=int, default=20)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "rollback.json")
    parser.add_argument("--dir", type=Path, default=None,
                        help="build under this directory (default: a temporary one, removed)")
    args = parser.parse_args(argv)
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]

    base = args.dir or Path(tempfile.mkdtemp(prefix="clearance-rollback-"))
    results = []
    try:
        for n in sizes:
            root = base / f"n{n}"
            shutil.rmtree(root, ignore_errors=True)
            results.append(bench_size(root, n, args.rollbacks, args.seed))
    finally:
        if args.dir is None:
            shutil.rmtree(base, ignore_errors=True)

    header = (f"{'chunks':>8}  {'rollback med/max ms':>20}  {'switch med/max ms':>18}  "
              f"{'warm search med/max ms':>23}  "
              f"{'cold open med/max ms':>21}  {'cold 1st search med/max ms':>27}  < 1 s")
    print(header)
    for r in results:
        def cell(key: str, r: dict[str, object] = r) -> str:
            s = r[key]
            assert isinstance(s, dict)
            return f"{s['median_ms']:.2f} / {s['max_ms']:.2f}"
        print(f"{r['chunks']:>8}  {cell('rollback'):>20}  {cell('switch_only'):>18}  "
              f"{cell('first_search_warm'):>23}  "
              f"{cell('cold_open'):>21}  {cell('cold_first_search'):>27}  "
              f"{'yes' if r['rollback_under_1s'] else 'NO'}")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "benchmark": "bench/rollback.py",
        "when": datetime.now(UTC).isoformat(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "acceptance": f"rollback under {LIMIT_S:.0f} s at every size",
        "passed": all(r["rollback_under_1s"] for r in results),
        "sizes": results,
    }
    args.out.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    for r in results:
        print(f"{r['chunks']} chunks: HNSW-indexed vectors {r['indexed_vectors']}, the search's "
              f"principals may read {r['permitted_fraction']:.1%} of the chunks")
    print(f"wrote {args.out}")
    return 0 if record["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
