"""Filtered vs unfiltered search latency at 100k chunks, for callers with 5 and 1,000 principals.

    .venv/bin/python bench/filter_cost.py [--chunks 100000] [--queries 200] [--recall 50]
                                          [--vectors random,clustered]
                                          [--server-chunks 10000] [--out PATH]

Builds one sealed version of N chunks straight through EdgeBackend (the product's store layer,
default thresholds: HNSW m=16, ef_construct=100, keyword indexes on acl, doc_id and source).
Vectors are synthetic unit 384-dimension float32 (seeded numpy), not embeddings of text, in one
or both of two shapes (`--vectors`, default both, one build each):

- random: uniform random unit vectors, queries likewise. No neighbourhood structure: the
  classic worst case for HNSW, whose recall here is low with or without a filter;
- clustered: 1,000 random unit topic centres; every document picks a topic and its chunks are
  the centre plus Gaussian noise (norm ~0.8), renormalised; queries are a random topic's centre
  plus the same noise. Closer to real embeddings (related chunks near each other), so HNSW
  recall is meaningful and a filter that loses neighbours would show.

Chunks come 10 to a document and share its ACL: 1 to 3 tokens drawn uniformly from a pool of
2,000 principals (1,500 groups `group:gN`, 500 users `user:uN`). Payload: acl, doc_id, source,
a short text.

Variants, measured interleaved in one run (round-robin over the variants for every query, the
starting variant rotated per query, so they share the machine's noise):

- unfiltered: THE BENCH'S OWN BASELINE, not a product path (the product has no unfiltered
  search): the same shard directory loaded again with `qdrant_edge.EdgeShard.load` and queried
  with a QueryRequest that has no filter (payload returned and converted to Hits, as the
  product's reader does);
- filtered_5 / filtered_1000: `EdgeReader.search(v, access=ReadFilter(principals), limit=10)`
  for a caller holding 5 principals (1 user + 4 groups) or 1,000 (1 user + 999 groups);
- changed_5 / changed_1000: the same callers with the clauses the product adds once ACLs
  changed after the build (retrieval/access.py): acl_changed = 100 document ids,
  include_docs = 20 of them.

For each: median and p95 latency over --queries queries, the ratio to unfiltered (of medians,
and the median of per-query ratios), the fraction of chunks the filter permits, recall@10
against the exact top 10 among permitted chunks (numpy brute force) over the first --recall
queries, and hits the filter should not have let through (counted over every query).
`--server-chunks N` (0: skip) repeats this, labelled, for the qdrant-client `:memory:` backend
(retrieval.server_store.ServerBackend, brute force in Python) at a smaller size, with the
first `--vectors` shape.

Prints tables and writes bench/results/filter_cost.json.
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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script: bench/ is sys.path[0], not the repository
    sys.path.insert(0, str(REPO))

from provenance import git_state  # noqa: E402
from qdrant_edge import EdgeShard, Query, QueryRequest  # noqa: E402

from retrieval.edge_store import EdgeBackend, _read_filter  # noqa: E402
from retrieval.store import Hit, ReadFilter, StoredChunk  # noqa: E402

DIM = 384
N_GROUPS, N_USERS = 1500, 500
POOL = [f"group:g{i}" for i in range(N_GROUPS)] + [f"user:u{i}" for i in range(N_USERS)]
CHUNKS_PER_DOC = 10
TOPICS = 1000  # clustered vectors: topic centres
NOISE = 0.8  # clustered vectors: norm of the noise added to a centre
VECTOR_KINDS = ("random", "clustered")
BATCH = 1000
LIMIT = 10
VERSION = "filter-cost"
SOURCE = "bench"


@dataclass
class Corpus:
    vectors: np.ndarray  # (n, DIM) float32, unit rows
    doc_acls: list[list[str]]  # per document
    point_ids: list[str]  # per chunk
    kind: str = "random"
    topics: np.ndarray | None = None  # clustered: (TOPICS, DIM) unit centres

    @property
    def n(self) -> int:
        return int(self.vectors.shape[0])

    def doc_of(self, i: int) -> int:
        return i // CHUNKS_PER_DOC

    def chunks(self, start: int, stop: int) -> list[StoredChunk]:
        out = []
        for i in range(start, stop):
            d = self.doc_of(i)
            payload = {"acl": self.doc_acls[d], "doc_id": doc_id(d), "source": SOURCE,
                       "text": f"Chunk {i % CHUNKS_PER_DOC} of document {d}: a short sentence."}
            out.append(StoredChunk(self.point_ids[i], self.vectors[i].tolist(), payload))
        return out

    def permitted(self, access: ReadFilter | None) -> np.ndarray:
        """Boolean mask over chunks: what `access` lets through (None: everything)."""
        if access is None:
            return np.ones(self.n, dtype=bool)
        docs = np.array([bool(access.principals.intersection(acl)) for acl in self.doc_acls])
        ids = [doc_id(d) for d in range(len(self.doc_acls))]
        changed = np.array([i in access.acl_changed for i in ids])
        include = np.array([i in access.include_docs for i in ids])
        exclude = np.array([i in access.exclude_docs for i in ids])
        docs = ((docs & ~changed) | include) & ~exclude
        return docs[np.arange(self.n) // CHUNKS_PER_DOC]


def doc_id(d: int) -> str:
    return f"{SOURCE}:doc-{d}.md"


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=-1, keepdims=True)).astype(np.float32)


def noise(rng: np.random.Generator, count: int) -> np.ndarray:
    """Gaussian rows of expected norm ~NOISE."""
    return rng.normal(size=(count, DIM)).astype(np.float32) * (NOISE / np.sqrt(DIM))


def make_corpus(n: int, seed: int, kind: str) -> Corpus:
    rng = np.random.default_rng(seed)
    n_docs = (n + CHUNKS_PER_DOC - 1) // CHUNKS_PER_DOC
    sizes = rng.integers(1, 4, size=n_docs)
    doc_acls = [sorted(rng.choice(POOL, size=int(s), replace=False).tolist()) for s in sizes]
    point_ids = [str(uuid.uuid5(uuid.NAMESPACE_URL, f"filter-cost-{seed}-{i}")) for i in range(n)]
    topics = None
    if kind == "random":
        vectors = unit(rng.normal(size=(n, DIM)).astype(np.float32))
    else:
        topics = unit(rng.normal(size=(TOPICS, DIM)).astype(np.float32))
        doc_topic = rng.integers(0, TOPICS, size=n_docs)
        vectors = unit(topics[doc_topic[np.arange(n) // CHUNKS_PER_DOC]] + noise(rng, n))
    return Corpus(vectors, doc_acls, point_ids, kind, topics)


def make_accesses(n_docs: int, seed: int) -> dict[str, ReadFilter | None]:
    rng = np.random.default_rng(seed + 1)
    groups = [p for p in POOL if p.startswith("group:")]
    user = "user:u7"
    small = frozenset([user, *rng.choice(groups, size=4, replace=False).tolist()])
    large = frozenset([user, *rng.choice(groups, size=999, replace=False).tolist()])
    changed_docs = [doc_id(int(d)) for d in rng.choice(n_docs, size=min(100, n_docs),
                                                       replace=False)]
    changed = frozenset(changed_docs)
    include = frozenset(changed_docs[:20])
    return {
        "unfiltered": None,
        "filtered_5": ReadFilter(small),
        "filtered_1000": ReadFilter(large),
        "changed_5": ReadFilter(small, acl_changed=changed, include_docs=include),
        "changed_1000": ReadFilter(large, acl_changed=changed, include_docs=include),
    }


def make_queries(corpus: Corpus, count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed + 2)
    if corpus.topics is None:
        return unit(rng.normal(size=(count, DIM)).astype(np.float32))
    centres = corpus.topics[rng.integers(0, len(corpus.topics), size=count)]
    return unit(centres + noise(rng, count))


def exact_top(corpus: Corpus, query: np.ndarray, mask: np.ndarray, k: int) -> set[int]:
    scores = corpus.vectors @ query
    scores = np.where(mask, scores, -np.inf)
    k = min(k, int(mask.sum()))
    if k == 0:
        return set()
    top = np.argpartition(-scores, k - 1)[:k]
    return {int(i) for i in top}


def summary(values_s: Sequence[float]) -> dict[str, float]:
    ms = sorted(v * 1000 for v in values_s)
    p95 = ms[min(len(ms) - 1, max(0, round(0.95 * len(ms)) - 1))]  # nearest rank
    return {"n": len(ms), "median_ms": statistics.median(ms), "p95_ms": p95,
            "mean_ms": statistics.fmean(ms), "max_ms": ms[-1], "min_ms": ms[0]}


Search = Callable[[list[float]], list[Hit]]


def measure(corpus: Corpus, accesses: dict[str, ReadFilter | None],
            searches: dict[str, Search], queries: np.ndarray, recall_n: int,
            warmup: int) -> dict[str, dict[str, Any]]:
    """Round-robin timing of every variant, recall on the first `recall_n` queries."""
    names = list(searches)
    row_of = {pid: i for i, pid in enumerate(corpus.point_ids)}
    masks = {name: corpus.permitted(accesses[name]) for name in names}
    for q in queries[:warmup]:
        for name in names:
            searches[name](q.tolist())
    times: dict[str, list[float]] = {name: [] for name in names}
    recalls: dict[str, list[float]] = {name: [] for name in names}
    violations = {name: 0 for name in names}
    short = {name: 0 for name in names}
    for qi, q in enumerate(queries):
        vector = q.tolist()
        order = names[qi % len(names):] + names[:qi % len(names)]
        for name in order:
            started = time.perf_counter()
            hits = searches[name](vector)
            times[name].append(time.perf_counter() - started)
            rows = [row_of[h.point_id] for h in hits]
            mask = masks[name]
            violations[name] += sum(1 for r in rows if not mask[r])
            if len(hits) < min(LIMIT, int(mask.sum())):
                short[name] += 1
            if qi < recall_n:
                exact = exact_top(corpus, q, mask, LIMIT)
                recalls[name].append(len(exact & set(rows)) / len(exact) if exact else 1.0)
        if (qi + 1) % 50 == 0:
            print(f"  {qi + 1}/{len(queries)} queries", file=sys.stderr, flush=True)
    base = times[names[0]]
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        s = summary(times[name])
        b = summary(base)
        mask = masks[name]
        access = accesses[name]
        out[name] = {
            **s,
            "ratio_median_to_unfiltered": s["median_ms"] / b["median_ms"],
            "ratio_p95_to_unfiltered": s["p95_ms"] / b["p95_ms"],
            "paired_median_ratio": statistics.median(
                t / u for t, u in zip(times[name], base, strict=True)),
            "permitted_chunks": int(mask.sum()),
            "permitted_fraction": round(float(mask.mean()), 5),
            "principals": len(access.principals) if access else None,
            "acl_changed_docs": len(access.acl_changed) if access else 0,
            "include_docs": len(access.include_docs) if access else 0,
            f"recall_at_{LIMIT}": statistics.fmean(recalls[name]) if recalls[name] else None,
            f"recall_at_{LIMIT}_min": min(recalls[name]) if recalls[name] else None,
            "recall_queries": len(recalls[name]),
            "hits_not_permitted": violations[name],
            "queries_with_fewer_than_limit_hits": short[name],
        }
    return out


def filter_build_cost(accesses: dict[str, ReadFilter | None], repeat: int = 200
                      ) -> dict[str, float]:
    """Median ms to build the engine filter in Python (retrieval.edge_store._read_filter)."""
    out = {}
    for name, access in accesses.items():
        if access is None:
            continue
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            _read_filter(access)
            times.append(time.perf_counter() - started)
        out[name] = statistics.median(times) * 1000
    return out


def bench_edge(root: Path, n: int, queries: int, recall_n: int, seed: int, kind: str
               ) -> dict[str, Any]:
    print(f"edge: generating {n} chunks ({kind} vectors)", file=sys.stderr, flush=True)
    corpus = make_corpus(n, seed, kind)
    backend = EdgeBackend(root / "index")
    started = time.perf_counter()
    writer = backend.create(VERSION, dim=DIM)
    for start in range(0, n, BATCH):
        writer.upsert(corpus.chunks(start, min(n, start + BATCH)))
        if (start // BATCH + 1) % 10 == 0:
            print(f"  upserted {min(n, start + BATCH)}/{n} "
                  f"({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)
    upserted = time.perf_counter()
    print("  sealing (HNSW build)...", file=sys.stderr, flush=True)
    writer.seal()
    sealed = time.perf_counter()
    print(f"  built: upsert {upserted - started:.1f} s, seal {sealed - upserted:.1f} s",
          file=sys.stderr, flush=True)

    accesses = make_accesses(len(corpus.doc_acls), seed)
    reader = backend.open(VERSION)
    shard = EdgeShard.load(str(root / "index" / VERSION))  # the bench's own unfiltered baseline
    try:
        info = shard.info()
        indexed = int(info.indexed_vectors_count)

        def unfiltered(vector: list[float]) -> list[Hit]:
            request = QueryRequest(limit=LIMIT, query=Query.Nearest([float(x) for x in vector]),
                                   with_payload=True)
            points = shard.query(request)
            return [Hit(str(p.id), float(p.score), dict(p.payload or {})) for p in points]

        def filtered(access: ReadFilter) -> Search:
            return lambda vector: reader.search(vector, access=access, limit=LIMIT)

        searches: dict[str, Search] = {"unfiltered": unfiltered}
        for name, access in accesses.items():
            if access is not None:
                searches[name] = filtered(access)
        print(f"edge: timing {len(searches)} variants x {queries} queries, round-robin",
              file=sys.stderr, flush=True)
        variants = measure(corpus, accesses, searches, make_queries(corpus, queries, seed),
                           recall_n, warmup=20)
    finally:
        shard.close()
        reader.close()
    return {
        "backend": "edge (qdrant-edge-py, EdgeBackend defaults)",
        "vectors": kind,
        "chunks": n,
        "documents": len(corpus.doc_acls),
        "build": {"upsert_s": round(upserted - started, 2), "seal_s": round(sealed - upserted, 2)},
        "indexed_vectors": indexed,
        "index_bytes": sum(f.stat().st_size for f in (root / "index").rglob("*") if f.is_file()),
        "variants": variants,
        "python_filter_build_median_ms": filter_build_cost(accesses),
    }


def bench_server_memory(n: int, queries: int, recall_n: int, seed: int, kind: str
                        ) -> dict[str, Any]:
    from qdrant_client import QdrantClient

    from retrieval.server_store import ServerBackend

    print(f"server :memory: generating {n} chunks ({kind} vectors)", file=sys.stderr,
          flush=True)
    corpus = make_corpus(n, seed, kind)
    client = QdrantClient(":memory:")
    prefix = "bench"
    backend = ServerBackend(client, prefix)
    started = time.perf_counter()
    writer = backend.create(VERSION, dim=DIM)
    for start in range(0, n, BATCH):
        writer.upsert(corpus.chunks(start, min(n, start + BATCH)))
    writer.seal()
    built = time.perf_counter() - started
    accesses = make_accesses(len(corpus.doc_acls), seed)
    reader = backend.open(VERSION)
    collection = f"{prefix}_{VERSION}"  # ServerBackend's collection naming (server_store.py)

    def unfiltered(vector: list[float]) -> list[Hit]:
        response = client.query_points(collection, query=[float(x) for x in vector],
                                       limit=LIMIT, with_payload=True)
        return [Hit(str(p.id), float(p.score), dict(p.payload or {})) for p in response.points]

    def filtered(access: ReadFilter) -> Search:
        return lambda vector: reader.search(vector, access=access, limit=LIMIT)

    searches: dict[str, Search] = {"unfiltered": unfiltered}
    for name, access in accesses.items():
        if access is not None:
            searches[name] = filtered(access)
    print(f"server :memory:: timing {len(searches)} variants x {queries} queries",
          file=sys.stderr, flush=True)
    try:
        variants = measure(corpus, accesses, searches, make_queries(corpus, queries, seed),
                           recall_n, warmup=5)
    finally:
        reader.close()
        backend.close()
    return {
        "backend": "server_store.ServerBackend over QdrantClient(':memory:') (local mode: "
                   "brute force, filters evaluated in Python)",
        "vectors": kind,
        "chunks": n,
        "documents": len(corpus.doc_acls),
        "build_s": round(built, 2),
        "variants": variants,
    }


def print_table(title: str, variants: dict[str, dict[str, Any]]) -> None:
    print(f"\n{title}")
    print(f"{'variant':<14} {'permitted':>10} {'median ms':>10} {'p95 ms':>8} "
          f"{'x unfilt (med)':>14} {'x (paired)':>10} {'x (p95)':>8} {'recall@10':>9} "
          f"{'bad hits':>8}")
    for name, v in variants.items():
        print(f"{name:<14} {v['permitted_fraction']:>10.2%} {v['median_ms']:>10.2f} "
              f"{v['p95_ms']:>8.2f} {v['ratio_median_to_unfiltered']:>14.2f} "
              f"{v['paired_median_ratio']:>10.2f} {v['ratio_p95_to_unfiltered']:>8.2f} "
              f"{v['recall_at_10']:>9.3f} {v['hits_not_permitted']:>8}")



def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=lambda s: int(s.replace("_", "")), default=100_000)
    parser.add_argument("--queries", type=int, default=200, help="timed queries per variant")
    parser.add_argument("--recall", type=int, default=50,
                        help="queries (the first ones) whose recall@10 is computed")
    parser.add_argument("--server-chunks", type=lambda s: int(s.replace("_", "")),
                        default=10_000, help="size for the qdrant-client :memory: run (0: skip)")
    parser.add_argument("--server-queries", type=int, default=50)
    parser.add_argument("--vectors", default=",".join(VECTOR_KINDS),
                        help="comma-separated shapes of synthetic vectors: random, clustered")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--out", type=Path,
                        default=REPO / "bench" / "results" / "filter_cost.json")
    parser.add_argument("--dir", type=Path, default=None,
                        help="build under this directory, kept (default: a temporary one)")
    args = parser.parse_args(argv)
    kinds = [k for k in args.vectors.split(",") if k]
    if not kinds or set(kinds) - set(VECTOR_KINDS):
        parser.error(f"--vectors takes a comma-separated subset of {','.join(VECTOR_KINDS)}")

    started = time.perf_counter()
    base = args.dir or Path(tempfile.mkdtemp(prefix="clearance-filter-cost-"))
    edge: dict[str, dict[str, Any]] = {}
    try:
        for kind in kinds:
            root = base / f"n{args.chunks}-{kind}"
            shutil.rmtree(root, ignore_errors=True)
            edge[kind] = bench_edge(root, args.chunks, args.queries, args.recall, args.seed,
                                    kind)
            if args.dir is None:
                shutil.rmtree(root, ignore_errors=True)
    finally:
        if args.dir is None:
            shutil.rmtree(base, ignore_errors=True)
    server = None
    if args.server_chunks:
        server = bench_server_memory(args.server_chunks, args.server_queries,
                                     min(args.recall, args.server_queries), args.seed, kinds[0])

    for kind, e in edge.items():
        print_table(f"edge backend, {kind} vectors, {e['chunks']} chunks ({e['indexed_vectors']} "
                    f"in HNSW), {args.queries} queries per variant, limit {LIMIT}; unfiltered = "
                    "the bench's own baseline (raw EdgeShard, no filter)", e["variants"])
        print("Python filter build (retrieval.edge_store._read_filter), median: " + ", ".join(
            f"{k} {v:.3f} ms" for k, v in e["python_filter_build_median_ms"].items()))
    if server is not None:
        print_table(f"OPTIONAL: qdrant-client :memory: backend, {server['vectors']} vectors, "
                    f"{server['chunks']} chunks, {args.server_queries} queries per variant",
                    server["variants"])

    record = {
        "benchmark": "bench/filter_cost.py",
        "when": datetime.now(UTC).isoformat(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "git": git_state(),
        "acceptance": "Filter cost: filtered vs unfiltered search latency at 100k chunks for "
                      "callers holding 5 and 1,000 principals (a measurement, no threshold)",
        "data": {"vectors": {
                     "random": "uniform random unit 384-d float32 (numpy, seeded); queries "
                               "likewise",
                     "clustered": f"{TOPICS} random unit topic centres; chunk = its document's "
                                  f"centre + Gaussian noise of norm ~{NOISE}, renormalised; "
                                  "query = a random centre + the same noise"},
                 "seed": args.seed, "chunks_per_document": CHUNKS_PER_DOC,
                 "acl": f"1-3 tokens per document, uniform from {N_GROUPS} groups + "
                        f"{N_USERS} users",
                 "callers": {"5": "user:u7 + 4 groups", "1000": "user:u7 + 999 groups"},
                 "changed": "acl_changed 100 document ids, include_docs 20 of them"},
        "unfiltered_baseline": "the bench's own: EdgeShard.load of the same version, "
                               "QueryRequest without filter (no product path does this)",
        "limit": LIMIT,
        "edge": edge,
        "server_memory": server,
        "runtime_s": round(time.perf_counter() - started, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out} ({record['runtime_s']} s)")
    bad = sum(v["hits_not_permitted"] for e in edge.values() for v in e["variants"].values())
    if server is not None:
        bad += sum(v["hits_not_permitted"] for v in server["variants"].values())
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
