"""Query latency: store-only and end-to-end search, Edge vs qdrant-client local mode, 10k and 100k.

    .venv/bin/python bench/query_latency.py [--sizes 10000,100000] [--backends edge,local]
                                            [--rankings dense,hybrid] [--quick] [--out PATH]
                                            [--plot PATH] [--dir DIR] [--local-dir DIR]

For every corpus size and backend, one index version of synthetic chunks is written through
the product's own API into a generated deployment (config, Casbin policy, API keys), and then:

1. store-only: `reader.search(vector, access=ReadFilter(principals), limit=10, sparse=...,
   ranking=...)` on the reader the backend opens, in this process, for each ranking (dense, and
   hybrid = `RetrievalSettings().ranking()`, the configured default; `--rankings` may
   add sparse) and each caller:
   - filtered: `user:bench-few` + 5 of the 100 groups: ~5% of the chunks;
   - unfiltered: `user:bench-all` + `group:all`, which every chunk's ACL holds. The store has no
     unfiltered search path (by design), so this is a filter that lets everything through.
2. end-to-end: `POST /v1/search` (top_k 10) with a real SciFact query text, as each caller, with
   its API key, against a real server in a child process: `python -m api.cli --config CFG serve`
   for Edge; `bench/serve_local_mode.py` (the same app, its backend being
   `ServerBackend(QdrantClient(path=...))`) for local mode. The request embeds the query with
   all-MiniLM-L6-v2, asks Casbin for the caller's principals, searches, re-checks every hit and
   appends the audit record. Requests omit the ranking field (the configured mode) and, if the
   server's SearchRequest has one (`mode` or `search_mode`, read from its /openapi.json), also ask
   for "dense". The ranking actually used is read from each response (`search_mode`).
3. the server's peak RSS (VmHWM in /proc/PID/status) after its requests.

Variants are timed round-robin per query (starting variant rotated), after a warm-up, so they
share the machine's noise. qdrant-client local mode is brute force in Python (~2 s per dense and
~6 s per hybrid search at 100k here), so it gets far fewer queries than Edge (printed beside
each figure; with 10 queries p95 is the maximum).

Synthetic data (embedding 100k real chunks takes over an hour on 2 cores): 10 chunks per
document; each document in one of 100 groups (`g<K>/doc-<d>.txt` in source `bench`, ACL
`group:g<K>` + `group:all` from the config's rule for `g<K>/*`, so the document table matches
today's ACL and no document counts as changed); chunk text = 60-100 consecutive words from a
random position in the SciFact abstracts (../shared/data/scifact/corpus.jsonl); dense vector =
its document's topic centre (1,000 random unit centres) + Gaussian noise of norm ~0.8,
renormalised (as bench/filter_cost.py "clustered"); sparse vector =
`Bm25Encoder().encode_document(text)`; payload = `ingest.tagging.chunk_payload(...)`, stored
with `.to_payload()`. Written with
`catalog.backend.create(id, dim=384, sparse=True)`, `upsert`, `record_documents`, `record(
VersionInfo(... sparse=Bm25Encoder().name))`, `seal` (Edge builds HNSW here) and `switch`, so
the server serves it unchanged. Edge versions live in the deployment's data_dir on disk, as in
production; local-mode collections (a SQLite file that local mode loads whole into memory) in
/dev/shm by default, since writing 100k points to SQLite on this machine's disk takes ~10 min.
Store-only query vectors: a random centre + the same noise; their sparse vectors: SciFact query
texts. The e2e query embeddings are real, and unrelated to the synthetic chunk vectors: fine for
latency, meaningless for relevance.

Acceptance (printed PASS/FAIL, at 100,000 chunks): Edge store-only filtered p50 <= 5 ms, Edge
store-only filtered/unfiltered p50 <= 1.5 (each ranking), Edge e2e /v1/search p50 <= 50 ms
(each caller and requested ranking). Prints markdown tables, writes
bench/results/query_latency.json and a plot of p50 against corpus size
(bench/results/query_latency.png; log axes; one panel per ranking, one line per backend, path
and caller). Exit status 1 if a target fails or any result was not permitted to its caller.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script: bench/ is sys.path[0], not the repository
    sys.path.insert(0, str(REPO))

import httpx  # noqa: E402
from provenance import git_state  # noqa: E402
from serving import clearance_serve, server_process  # noqa: E402

from application.services import open_catalog  # noqa: E402
from application.settings import Settings, load_settings  # noqa: E402
from control.keys import KeyStore  # noqa: E402
from ingest.chunker import TextChunk  # noqa: E402
from ingest.sources import SourceFile  # noqa: E402
from ingest.tagging import chunk_payload, point_id  # noqa: E402
from retrieval.bm25 import Bm25Encoder  # noqa: E402
from retrieval.embedder import Embedder  # noqa: E402
from retrieval.passages import split_units  # noqa: E402
from retrieval.settings import RetrievalSettings  # noqa: E402
from retrieval.store import (  # noqa: E402
    Hit,
    Ranking,
    ReadFilter,
    SearchMode,
    SparseVector,
    StoredChunk,
)
from retrieval.unit_vectors import encode_unit_vectors  # noqa: E402
from retrieval.versions import DocumentEntry, VersionCatalog, VersionInfo, new_version_id  # noqa: E402

SCIFACT = REPO.parent / "shared" / "data" / "scifact"
DIM = 384
TOPICS, NOISE = 1000, 0.8  # clustered vectors, as bench/filter_cost.py
CHUNKS_PER_DOC = 10
N_GROUPS, FEW_GROUPS = 100, 5  # the filtered caller holds FEW_GROUPS of N_GROUPS: ~5%
WORDS = (60, 100)  # words per chunk, uniform
BATCH = 1000
LIMIT = 10  # store-only limit and e2e top_k
SOURCE = "bench"
FEW_USER, ALL_USER, ALL_GROUP = "bench-few", "bench-all", "group:all"
CALLERS = ("filtered", "unfiltered")
BACKENDS = ("edge", "local")
BACKEND_NAMES = {"edge": "Qdrant Edge (EdgeBackend)",
                 "local": "qdrant-client local mode (ServerBackend(QdrantClient(path=...)))"}
LOCAL_PREFIX = "clearance"  # ServerBackend's default, as bench/serve_local_mode.py uses
RANKINGS = {"dense": Ranking(), "sparse": Ranking(SearchMode.SPARSE),
            "hybrid": RetrievalSettings().ranking(SearchMode.HYBRID)}
DEFAULT_RANKINGS = ("dense", "hybrid")
TARGET_STORE_MS, TARGET_RATIO, TARGET_E2E_MS, TARGET_SIZE = 5.0, 1.5, 50.0, 100_000


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=-1, keepdims=True)).astype(np.float32)


def noise(rng: np.random.Generator, count: int) -> np.ndarray:
    return rng.normal(size=(count, DIM)).astype(np.float32) * (NOISE / np.sqrt(DIM))


def few_groups() -> list[str]:
    return [f"group:g{k}" for k in range(FEW_GROUPS)]


def caller_principals(caller: str) -> frozenset[str]:
    """The principals Casbin gives each bench user (see write_deployment's policy)."""
    if caller == "filtered":
        return frozenset([f"user:{FEW_USER}", *few_groups()])
    return frozenset([f"user:{ALL_USER}", ALL_GROUP])


class Text:
    """SciFact abstracts as one stream of words, and their titles."""

    def __init__(self) -> None:
        self.words: list[str] = []
        self.titles: list[str] = []
        with (SCIFACT / "corpus.jsonl").open(encoding="utf-8") as f:
            for line in f:
                doc = json.loads(line)
                self.titles.append(doc["title"])
                self.words.extend(f"{doc['title']} {doc['text']}".split())
        with (SCIFACT / "queries.jsonl").open(encoding="utf-8") as f:
            self.queries = [json.loads(line)["text"] for line in f]


@dataclass
class Corpus:
    """n synthetic chunks, CHUNKS_PER_DOC per document, made batch by batch (seeded)."""

    n: int
    seed: int
    text: Text
    bm25: Bm25Encoder
    topics: np.ndarray = field(init=False)
    doc_topic: np.ndarray = field(init=False)
    doc_group: np.ndarray = field(init=False)
    doc_title: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        rng = np.random.default_rng(self.seed)
        self.topics = unit(rng.normal(size=(TOPICS, DIM)).astype(np.float32))
        self.doc_topic = rng.integers(0, TOPICS, size=self.n_docs)
        self.doc_group = rng.integers(0, N_GROUPS, size=self.n_docs)
        self.doc_title = rng.integers(0, len(self.text.titles), size=self.n_docs)

    @property
    def n_docs(self) -> int:
        return (self.n + CHUNKS_PER_DOC - 1) // CHUNKS_PER_DOC

    @staticmethod
    def uri(d: int, group: int) -> str:
        return f"g{group}/doc-{d:06d}.txt"

    def acl(self, d: int) -> tuple[str, ...]:
        return (f"group:g{self.doc_group[d]}", ALL_GROUP)

    def documents(self) -> dict[str, DocumentEntry]:
        out = {}
        for d in range(self.n_docs):
            uri = self.uri(d, int(self.doc_group[d]))
            out[f"{SOURCE}:{uri}"] = DocumentEntry(SOURCE, uri, self.acl(d))
        return out

    def permitted_fraction(self, caller: str) -> float:
        if caller == "unfiltered":
            return 1.0
        docs = np.repeat(self.doc_group < FEW_GROUPS, CHUNKS_PER_DOC)[: self.n]
        return float(docs.mean())

    def chunks(self, start: int, stop: int, version_id: str, now: datetime) -> list[StoredChunk]:
        rng = np.random.default_rng([self.seed, start])
        rows = np.arange(start, stop)
        docs = rows // CHUNKS_PER_DOC
        vectors = unit(self.topics[self.doc_topic[docs]] + noise(rng, len(rows)))
        offsets = rng.integers(0, len(self.text.words) - WORDS[1], size=len(rows))
        lengths = rng.integers(WORDS[0], WORDS[1] + 1, size=len(rows))
        out = []
        for i, row in enumerate(rows):
            d = int(docs[i])
            file = SourceFile(SOURCE, Path(self.uri(d, int(self.doc_group[d]))),
                              self.uri(d, int(self.doc_group[d])),
                              now - timedelta(days=d % 365), self.acl(d))
            text = " ".join(self.text.words[offsets[i]:offsets[i] + lengths[i]])
            payload = chunk_payload(
                file, TextChunk(int(row % CHUNKS_PER_DOC), text, None, None),
                title=self.text.titles[self.doc_title[d]],
                doc_version=hashlib.sha256(f"{self.seed}:{d}".encode()).hexdigest(),
                ingested_at=now, index_version=version_id)
            # Stored unit embeddings as ingest writes them (retrieval/unit_vectors.py), made
            # synthetic like the chunk's own: near the chunk's vector, one per unit.
            units = len(split_units(text))
            if units:
                rows_u = unit(vectors[i] + noise(rng, units))
                payload = replace(payload, unit_vectors=encode_unit_vectors(rows_u))
            out.append(StoredChunk(point_id(file.doc_id, int(row % CHUNKS_PER_DOC)),
                                   vectors[i].tolist(), payload.to_payload(),
                                   self.bm25.encode_document(text)))
        return out

    def query_vectors(self, count: int) -> np.ndarray:
        rng = np.random.default_rng(self.seed + 2)
        return unit(self.topics[rng.integers(0, TOPICS, size=count)] + noise(rng, count))


def write_deployment(root: Path) -> Path:
    """Config (source `bench`, one ACL rule per group), policy and docs dir; the config path."""
    (root / "docs").mkdir(parents=True, exist_ok=True)
    policy = "".join(f"g, user:{FEW_USER}, {g}\n" for g in few_groups())
    policy += f"g, user:{ALL_USER}, {ALL_GROUP}\n"
    (root / "policy.csv").write_text(policy, encoding="utf-8")
    rules = ",\n  ".join(f'{{ glob = "g{k}/*", allow = ["group:g{k}", "{ALL_GROUP}"] }}'
                         for k in range(N_GROUPS))
    config = root / "clearance.toml"
    config.write_text(
        f'data_dir = "data"\ncasbin_policy = "policy.csv"\n\n[[sources]]\nname = "{SOURCE}"\n'
        f'path = "docs"\nowner = "bench"\nacl = [\n  {rules},\n]\n', encoding="utf-8")
    return config


def keyed_deployment(root: Path, size: int, text: Text, extra_config: str = ""
                     ) -> tuple[Path, str]:
    """A deployment with one built version of `size` synthetic chunks, `extra_config` appended
    to its config, and a key for FEW_USER: what a two-server side-by-side bench serves.
    Returns (config path, key)."""
    config = write_deployment(root)
    if extra_config:
        config.write_text(config.read_text(encoding="utf-8") + extra_config, encoding="utf-8")
    settings = load_settings(config)
    key = KeyStore(settings.keys_file).create(FEW_USER)
    catalog = open_bench_catalog(settings, "edge", root / "unused")
    try:
        build_version(catalog, Corpus(size, 11, text, Bm25Encoder()))
    finally:
        catalog.backend.close()
    return config, key


def open_bench_catalog(settings: Settings, backend: str, local_path: Path) -> VersionCatalog:
    if backend == "edge":
        return open_catalog(settings)  # the product default: EdgeBackend under data_dir/index
    from qdrant_client import QdrantClient

    from retrieval.server_store import ServerBackend

    return open_catalog(settings, backend=ServerBackend(QdrantClient(path=str(local_path)),
                                                        LOCAL_PREFIX))


def build_version(catalog: VersionCatalog, corpus: Corpus) -> tuple[str, dict[str, float]]:
    """One sealed, current version of the corpus, written as ingest/pipeline.py writes one."""
    version_id = new_version_id()
    now = datetime.now(UTC)
    started = time.perf_counter()
    writer = catalog.backend.create(version_id, dim=DIM, sparse=True)
    try:
        for start in range(0, corpus.n, BATCH):
            writer.upsert(corpus.chunks(start, min(corpus.n, start + BATCH), version_id, now))
            if (start // BATCH + 1) % 20 == 0:
                log(f"    upserted {min(corpus.n, start + BATCH)}/{corpus.n} "
                    f"({time.perf_counter() - started:.0f} s)")
        upserted = time.perf_counter()
        catalog.record_documents(version_id, corpus.documents())
        catalog.record(VersionInfo(
            id=version_id, created_at=now.isoformat(), embedder=Embedder.name, dim=Embedder.dim,
            documents=corpus.n_docs, chunks=corpus.n, sources=[SOURCE],
            chunking="bench/query_latency.py synthetic", sparse=corpus.bm25.name))
        writer.seal()
    except BaseException:
        writer.abort()
        raise
    sealed = time.perf_counter()
    catalog.switch(version_id)
    return version_id, {"upsert_s": round(upserted - started, 2),
                        "seal_s": round(sealed - upserted, 2)}


@dataclass
class Variant:
    """One timed thing: `run(query_index)` returns what `check` turns into (bad hits, short)."""

    key: dict[str, Any]  # backend, size, path, ranking, caller
    run: Callable[[int], Any]
    check: Callable[[Any], tuple[int, bool, str | None]]  # (not permitted, short, mode used)
    times: list[float] = field(default_factory=list)
    bad: int = 0
    short: int = 0
    used: dict[str, int] = field(default_factory=dict)


def measure(variants: list[Variant], count: int, warmup: int, label: str) -> None:
    """Round-robin over the variants for every query, the starting variant rotated."""
    for qi in range(warmup):
        for v in variants:
            v.run(qi)
    started = time.perf_counter()
    for qi in range(count):
        k = qi % len(variants)
        for v in variants[k:] + variants[:k]:
            t0 = time.perf_counter()
            result = v.run(warmup + qi)
            v.times.append(time.perf_counter() - t0)
            bad, short, used = v.check(result)
            v.bad += bad
            v.short += short
            if used is not None:
                v.used[used] = v.used.get(used, 0) + 1
        if count >= 10 and (qi + 1) % max(1, count // 5) == 0:
            log(f"    {label}: {qi + 1}/{count} queries ({time.perf_counter() - started:.0f} s)")


def summary(values_s: Sequence[float]) -> dict[str, float]:
    ms = sorted(v * 1000 for v in values_s)
    p95 = ms[min(len(ms) - 1, max(0, round(0.95 * len(ms)) - 1))]  # nearest rank
    return {"n": len(ms), "p50_ms": round(statistics.median(ms), 3), "p95_ms": round(p95, 3),
            "mean_ms": round(statistics.fmean(ms), 3), "min_ms": round(ms[0], 3),
            "max_ms": round(ms[-1], 3)}


def hits_check(caller: str) -> Callable[[list[Hit]], tuple[int, bool, str | None]]:
    principals = caller_principals(caller)

    def check(hits: list[Hit]) -> tuple[int, bool, str | None]:
        bad = sum(1 for h in hits if not principals.intersection(h.payload.get("acl") or ()))
        return bad, len(hits) < LIMIT, None
    return check


def store_variants(reader: Any, corpus: Corpus, text: Text, key: dict[str, Any],
                   count: int, rankings: Sequence[str]) -> list[Variant]:
    vectors = [v.tolist() for v in corpus.query_vectors(count)]
    sparse: list[SparseVector] = [corpus.bm25.encode_query(text.queries[i % len(text.queries)])
                                  for i in range(count)]
    out = []
    for ranking_name in rankings:
        ranking = RANKINGS[ranking_name]
        for caller in CALLERS:
            access = ReadFilter(caller_principals(caller))

            def run(qi: int, access: ReadFilter = access, ranking: Ranking = ranking) -> list[Hit]:
                hits: list[Hit] = reader.search(vectors[qi], access=access, limit=LIMIT,
                                                sparse=sparse[qi], ranking=ranking)
                return hits
            out.append(Variant({**key, "path": "store", "ranking": ranking_name,
                                "caller": caller}, run, hits_check(caller)))
    return out


@contextmanager
def api_server(backend: str, config: Path, local_path: Path, log_path: Path
               ) -> Iterator[tuple[str, int, float]]:
    """The API in a child process; yields (url, pid, seconds to the first healthy /healthz)."""
    if backend == "edge":  # the product's own `clearance serve`
        command = clearance_serve(config)
    else:
        def command(port: int) -> list[str]:
            return [sys.executable, str(REPO / "bench" / "serve_local_mode.py"), "--config",
                    str(config), "--qdrant-path", str(local_path), "--port", str(port)]
    started = time.perf_counter()
    with server_process(command, log_path, start_timeout_s=900) as (url, pid):
        yield url, pid, time.perf_counter() - started


def proc_memory(pid: int) -> dict[str, float]:
    """VmHWM (peak resident set) and VmRSS of a process, in MiB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmHWM", "VmRSS"):
            out[name] = round(int(value.split()[0]) / 1024, 1)  # kB
    return out


def mode_field(client: httpx.Client, key: str) -> tuple[str | None, list[str], str | None]:
    """The SearchRequest field that picks the ranking, if the server has one and it takes
    "dense" (one probe request); its fields; and what went wrong with it, if anything."""
    schema = client.get("/openapi.json").json()
    props = schema.get("components", {}).get("schemas", {}).get("SearchRequest", {}).get(
        "properties", {})
    name = next((n for n in ("mode", "search_mode") if n in props), None)
    if name is None:
        return None, sorted(props), None
    probe = client.post("/v1/search", json={"query": "probe", "top_k": 1, name: "dense"},
                        headers={"Authorization": f"Bearer {key}"})
    if probe.status_code != 200:
        return None, sorted(props), (f'{{"{name}": "dense"}} answered {probe.status_code}: '
                                     f"{probe.text[:300]}")
    return name, sorted(props), None


def e2e_variants(client: httpx.Client, keys: dict[str, str], text: Text, key: dict[str, Any],
                 field_name: str | None) -> list[Variant]:
    requested: list[str | None] = [None] + (["dense"] if field_name else [])
    out = []
    for mode in requested:
        for caller in CALLERS:
            headers = {"Authorization": f"Bearer {keys[caller]}"}
            extra = {field_name: mode} if field_name and mode else {}
            allowed = few_groups() if caller == "filtered" else None

            def run(qi: int, headers: dict[str, str] = headers, extra: dict[str, Any] = extra
                    ) -> httpx.Response:
                body = {"query": text.queries[qi % len(text.queries)], "top_k": LIMIT, **extra}
                return client.post("/v1/search", json=body, headers=headers)

            def check(response: httpx.Response, allowed: list[str] | None = allowed
                      ) -> tuple[int, bool, str | None]:
                if response.status_code != 200:
                    raise RuntimeError(f"/v1/search answered {response.status_code}: "
                                       f"{response.text[:500]}")
                body = response.json()
                results = body["results"]
                bad = 0
                if allowed is not None:  # uri g<K>/...: the document's group
                    bad = sum(1 for r in results if f"group:{r['uri'].split('/')[0]}"
                              not in allowed)
                used = body.get("search_mode") or body.get("mode")
                return bad, len(results) < LIMIT, str(used) if used else "(not reported)"
            out.append(Variant({**key, "path": "e2e", "ranking": mode or "default",
                                "caller": caller}, run, check))
    return out


@dataclass
class Plan:
    sizes: list[int]
    backends: list[str]
    store_queries: dict[str, int]
    e2e_queries: dict[str, int]
    warmup: dict[str, int]
    rankings: list[str]
    local_dir: Path  # where local-mode stores go (its sqlite file; see --local-dir)


def bench_one(root: Path, backend: str, size: int, text: Text, plan: Plan, seed: int
              ) -> tuple[list[Variant], dict[str, Any]]:
    config = write_deployment(root)
    settings = load_settings(config)
    local_path = plan.local_dir / f"{backend}-{size}"
    keys = {"filtered": KeyStore(settings.keys_file).create(FEW_USER),
            "unfiltered": KeyStore(settings.keys_file).create(ALL_USER)}
    corpus = Corpus(size, seed, text, Bm25Encoder())
    key = {"backend": backend, "chunks": size}
    info: dict[str, Any] = {**key, "documents": corpus.n_docs,
                            "store_path": str(local_path if backend == "local"
                                              else settings.index_dir),
                            "permitted_fraction": {c: round(corpus.permitted_fraction(c), 4)
                                                   for c in CALLERS}}

    log(f"[{backend} {size}] building the index version")
    catalog = open_bench_catalog(settings, backend, local_path)
    try:
        version_id, info["build"] = build_version(catalog, corpus)
        log(f"    built {version_id}: {info['build']}")
        info["version"] = version_id
        if backend == "edge":
            from qdrant_edge import EdgeShard

            shard = EdgeShard.load(str(settings.index_dir / version_id))
            try:
                info["indexed_vectors"] = int(shard.info().indexed_vectors_count)
            finally:
                shard.close()
        reader = catalog.backend.open(version_id)
        try:
            store = store_variants(reader, corpus, text, key,
                                   plan.warmup[backend] + plan.store_queries[backend],
                                   plan.rankings)
            log(f"[{backend} {size}] store-only: {len(store)} variants x "
                f"{plan.store_queries[backend]} queries (+{plan.warmup[backend]} warm-up)")
            measure(store, plan.store_queries[backend], plan.warmup[backend], "store")
            info["load_average_1min"] = {"after_store_only": round(os.getloadavg()[0], 2)}
        finally:
            reader.close()
    finally:
        catalog.backend.close()  # local mode: frees its directory for the server process

    log(f"[{backend} {size}] end-to-end: starting the server")
    with (api_server(backend, config, local_path, root / "server.log") as (url, pid, up_s),
          httpx.Client(base_url=url, timeout=600) as client):
        memory = proc_memory(pid)
        field_name, fields, problem = mode_field(client, keys["filtered"])
        info["server"] = {"startup_s": round(up_s, 1), "search_request_fields": fields,
                          "mode_field": field_name, "mode_field_problem": problem,
                          "memory_after_start_mib": memory}
        log(f"    up in {up_s:.1f} s; SearchRequest fields {fields}"
            + (f"; PROBLEM: {problem}" if problem else ""))
        e2e = e2e_variants(client, keys, text, key, field_name)
        log(f"[{backend} {size}] end-to-end: {len(e2e)} variants x "
            f"{plan.e2e_queries[backend]} queries (+{plan.warmup[backend]} warm-up)")
        measure(e2e, plan.e2e_queries[backend], plan.warmup[backend], "e2e")
        info["server"]["memory_after_queries_mib"] = proc_memory(pid)
        info["load_average_1min"]["after_e2e"] = round(os.getloadavg()[0], 2)
    return store + e2e, info


def variant_record(v: Variant) -> dict[str, Any]:
    return {**v.key, **summary(v.times), "hits_not_permitted": v.bad,
            "queries_with_fewer_than_limit_hits": v.short,
            **({"ranking_used": v.used} if v.used else {}),
            "latencies_ms": [round(t * 1000, 3) for t in v.times]}


def used_mode(r: dict[str, Any]) -> str:
    """The ranking a result ran with: as requested (store), as the server said (e2e)."""
    if r["path"] == "store":
        return str(r["ranking"])
    used: dict[str, int] = r.get("ranking_used") or {}
    return max(used, key=lambda mode: used[mode]) if used else str(r["ranking"])


def find(results: list[dict[str, Any]], **key: Any) -> dict[str, Any] | None:
    return next((r for r in results if all(r.get(k) == v for k, v in key.items())), None)


def ratio_rows(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Filtered vs unfiltered, per backend, size, path and ranking."""
    rows = []
    for r in results:
        if r["caller"] != "filtered":
            continue
        u = find(results, backend=r["backend"], chunks=r["chunks"], path=r["path"],
                 ranking=r["ranking"], caller="unfiltered")
        if u is None:
            continue
        rows.append({k: r[k] for k in ("backend", "chunks", "path", "ranking")} | {
            "ranking_used": used_mode(r), "n": r["n"],
            "filtered": {"p50_ms": r["p50_ms"], "p95_ms": r["p95_ms"]},
            "unfiltered": {"p50_ms": u["p50_ms"], "p95_ms": u["p95_ms"]},
            "ratio_p50": round(r["p50_ms"] / u["p50_ms"], 3),
            "ratio_p95": round(r["p95_ms"] / u["p95_ms"], 3)})
    return rows


def backend_ratio_rows(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """local mode p50 / Edge p50, per size, path, ranking and caller."""
    rows = []
    for r in results:
        if r["backend"] != "local":
            continue
        e = find(results, backend="edge", chunks=r["chunks"], path=r["path"],
                 ranking=r["ranking"], caller=r["caller"])
        if e is not None:
            rows.append({k: r[k] for k in ("chunks", "path", "ranking", "caller")} | {
                "edge_p50_ms": e["p50_ms"], "local_p50_ms": r["p50_ms"],
                "local_over_edge_p50": round(r["p50_ms"] / e["p50_ms"], 1)})
    return rows


def acceptance(results: list[dict[str, Any]], ratios: list[dict[str, Any]]
               ) -> list[dict[str, Any]]:
    checks = []

    def add(what: str, value: float | None, limit: float, unit_: str) -> None:
        verdict = "SKIP" if value is None else ("PASS" if value <= limit else "FAIL")
        checks.append({"check": what, "value": value, "limit": limit, "unit": unit_,
                       "verdict": verdict})

    at = {"backend": "edge", "chunks": TARGET_SIZE}
    measured = [name for name in RANKINGS if find(results, path="store", ranking=name)]
    for name in measured:
        r = find(results, **at, path="store", ranking=name, caller="filtered")
        add(f"Edge store-only filtered p50 at {TARGET_SIZE:,}, {name}",
            r["p50_ms"] if r else None, TARGET_STORE_MS, "ms")
    for name in measured:
        q = next((x for x in ratios if x["backend"] == "edge" and x["chunks"] == TARGET_SIZE
                  and x["path"] == "store" and x["ranking"] == name), None)
        add(f"Edge store-only filtered/unfiltered p50 at {TARGET_SIZE:,}, {name}",
            q["ratio_p50"] if q else None, TARGET_RATIO, "x")
    e2e = [r for r in results if r["backend"] == "edge" and r["chunks"] == TARGET_SIZE
           and r["path"] == "e2e"]
    for r in e2e:
        add(f"Edge e2e /v1/search p50 at {TARGET_SIZE:,}, {r['ranking']} "
            f"(ran {used_mode(r)}), {r['caller']}", r["p50_ms"], TARGET_E2E_MS, "ms")
    if not e2e:
        add(f"Edge e2e /v1/search p50 at {TARGET_SIZE:,}", None, TARGET_E2E_MS, "ms")
    return checks


def ranking_label(r: dict[str, Any]) -> str:
    if r["path"] == "store":
        return str(r["ranking"])
    return f"{r['ranking']} ({r['ranking_used']})" if r["ranking"] == "default" else str(
        r["ranking"])


def print_report(results: list[dict[str, Any]], ratios: list[dict[str, Any]],
                 by_backend: list[dict[str, Any]], runs: list[dict[str, Any]],
                 checks: list[dict[str, Any]], plan: Plan) -> None:
    print("\n### Latency (ms): filtered caller ~5% of chunks, unfiltered caller every chunk\n")
    print("| chunks | backend | path | ranking | n | filtered p50 | filtered p95 | "
          "unfiltered p50 | unfiltered p95 | filtered / unfiltered p50 |")
    print("|---:|---|---|---|---:|---:|---:|---:|---:|---:|")
    for q in ratios:
        print(f"| {q['chunks']:,} | {q['backend']} | {q['path']} | "
              f"{ranking_label(q) if q['path'] == 'e2e' else q['ranking']} | {q['n']} | "
              f"{q['filtered']['p50_ms']:.2f} | {q['filtered']['p95_ms']:.2f} | "
              f"{q['unfiltered']['p50_ms']:.2f} | {q['unfiltered']['p95_ms']:.2f} | "
              f"{q['ratio_p50']:.2f} |")
    if by_backend:
        print("\n### local mode / Edge (p50)\n")
        print("| chunks | path | ranking | caller | Edge p50 ms | local p50 ms | local / Edge |")
        print("|---:|---|---|---|---:|---:|---:|")
        for b in by_backend:
            print(f"| {b['chunks']:,} | {b['path']} | {b['ranking']} | {b['caller']} | "
                  f"{b['edge_p50_ms']:.2f} | {b['local_p50_ms']:.1f} | "
                  f"{b['local_over_edge_p50']:.0f}x |")
    print("\n### Builds and servers\n")
    print("| chunks | backend | upsert s | seal s | server start s | server RSS after start MiB "
          "| server peak RSS (VmHWM) MiB | load avg after store-only / e2e |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|")
    for run in runs:
        s = run.get("server", {})
        print(f"| {run['chunks']:,} | {run['backend']} | {run['build']['upsert_s']:.1f} | "
              f"{run['build']['seal_s']:.1f} | {s.get('startup_s', float('nan')):.1f} | "
              f"{s.get('memory_after_start_mib', {}).get('VmRSS', float('nan')):.0f} | "
              f"{s.get('memory_after_queries_mib', {}).get('VmHWM', float('nan')):.0f} | "
              f"{run['load_average_1min']['after_store_only']:.1f} / "
              f"{run['load_average_1min'].get('after_e2e', float('nan')):.1f} |")
    print("\nQueries per variant: " + "; ".join(
        f"{b} store-only {plan.store_queries[b]}, e2e {plan.e2e_queries[b]} "
        f"(+{plan.warmup[b]} warm-up)" for b in plan.backends)
          + ". qdrant-client local mode is brute force in Python: far fewer queries, so its p95 "
            "is close to its maximum.")
    fields = {run.get("server", {}).get("mode_field") for run in runs}
    problems = {p for run in runs if (p := run.get("server", {}).get("mode_field_problem"))}
    if fields == {None}:
        print("SearchRequest has no usable ranking field: end to end, only the configured "
              "default was measured" + (f" ({'; '.join(sorted(problems))})." if problems
                                        else "."))
    else:
        print(f"SearchRequest ranking field `{', '.join(str(f) for f in fields)}`: end to end, "
              "requests omit it (the configured default) or ask for \"dense\".")
    bad = sum(r["hits_not_permitted"] for r in results)
    short = sum(r["queries_with_fewer_than_limit_hits"] for r in results)
    print(f"Results not permitted to their caller: {bad}; queries with fewer than {LIMIT} "
          f"results: {short}.")
    print("\n### Acceptance\n")
    for c in checks:
        value = "-" if c["value"] is None else f"{c['value']:.2f} {c['unit']}"
        print(f"- {c['verdict']}: {c['check']}: {value} (target <= {c['limit']:g} {c['unit']})")


def plot(results: list[dict[str, Any]], path: Path) -> str | None:
    """p50 against corpus size, log axes, one panel per ranking used; None if not written."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import NullFormatter
    except ImportError as exc:
        return f"matplotlib is not importable ({exc}); no plot written"
    panels = sorted({used_mode(r) for r in results}, key=lambda m: list(RANKINGS).index(m)
                    if m in RANKINGS else 99)
    colours = {("edge", "store"): "tab:blue", ("edge", "e2e"): "tab:cyan",
               ("local", "store"): "tab:red", ("local", "e2e"): "tab:orange"}
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 5.6), squeeze=False,
                             sharey=True)
    sizes = sorted({r["chunks"] for r in results})
    handles: dict[str, Any] = {}
    for ax, mode in zip(axes[0], panels, strict=True):
        series: dict[tuple[str, str, str], list[tuple[int, float]]] = {}
        requested = set()
        for r in results:
            if used_mode(r) == mode:
                series.setdefault((r["backend"], r["path"], r["caller"]), []).append(
                    (r["chunks"], r["p50_ms"]))
                if r["path"] == "e2e":
                    requested.add("search_mode omitted (default)" if r["ranking"] == "default"
                                  else f"{r['ranking']} asked for")
        for (backend, path_, caller), points in sorted(series.items()):
            points.sort()
            label = (f"{backend}, {'store-only' if path_ == 'store' else 'e2e /v1/search'}, "
                     f"{caller}")
            (line,) = ax.plot([p[0] for p in points], [p[1] for p in points],
                              color=colours.get((backend, path_), "gray"),
                              linestyle="-" if caller == "filtered" else ":",
                              marker="o" if caller == "filtered" else "s", label=label)
            handles.setdefault(label, line)
        for target, colour, what in ((TARGET_STORE_MS, "tab:blue", "store-only"),
                                     (TARGET_E2E_MS, "tab:cyan", "e2e")):
            ax.axhline(target, color=colour, linewidth=0.8, linestyle="--", alpha=0.6)
            ax.text(sizes[0], target * 1.08, f"{what} target {target:g} ms (Edge, 100k)",
                    fontsize=7, color=colour)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(sizes)
        ax.set_xticklabels([f"{s:,}" for s in sizes])
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("corpus size (chunks)")
        e2e_note = f"; e2e requests: {', '.join(sorted(requested))}" if requested else ""
        ax.set_title(f"ranking used: {mode}{e2e_note}", fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].set_ylabel("p50 latency (ms)")
    fig.suptitle("Clearance search latency, p50 (filtered: caller reads ~5% of chunks; "
                 "unfiltered: every chunk)", fontsize=11)
    fig.legend(list(handles.values()), list(handles), loc="lower center", ncol=4, fontsize=8)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None



def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=None,
                        help="comma-separated corpus sizes in chunks (default 10000,100000; "
                             "--quick: 2000,10000)")
    parser.add_argument("--backends", default=",".join(BACKENDS),
                        help=f"comma-separated subset of {','.join(BACKENDS)}")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: small sizes and few queries")
    parser.add_argument("--edge-queries", type=int, default=None,
                        help="timed queries per variant for Edge, store-only (default 300)")
    parser.add_argument("--edge-e2e-queries", type=int, default=None,
                        help="timed requests per variant for Edge, e2e (default 200)")
    parser.add_argument("--local-queries", type=int, default=None,
                        help="timed queries per variant for local mode, store-only and e2e "
                             "(default 10)")
    parser.add_argument("--rankings", default=",".join(DEFAULT_RANKINGS),
                        help=f"store-only rankings, a comma-separated subset of "
                             f"{','.join(RANKINGS)}")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--out", type=Path, default=None,
                        help="the JSON record (default bench/results/query_latency.json; "
                             "--quick: query_latency-quick.json in the system temp directory, "
                             "so a smoke run never replaces the committed record)")
    parser.add_argument("--plot", type=Path, default=None,
                        help="the PNG (default: --out with .png)")
    parser.add_argument("--dir", type=Path, default=None,
                        help="deploy under this directory, kept (default: a temporary one)")
    parser.add_argument("--local-dir", type=Path, default=None,
                        help="put local-mode stores here, kept (default: a temporary directory "
                             "in /dev/shm: local mode persists every point to SQLite, which "
                             "takes ~10 min for 100k chunks on this machine's disk; it loads "
                             "them all into memory to search, so where they lie does not "
                             "change its query latency)")
    args = parser.parse_args(argv)
    if args.out is None:
        args.out = (Path(tempfile.gettempdir()) / "query_latency-quick.json" if args.quick
                    else REPO / "bench" / "results" / "query_latency.json")
    sizes_arg = args.sizes or ("2000,10000" if args.quick else "10000,100000")
    sizes = sorted({int(s.replace("_", "")) for s in sizes_arg.split(",") if s})
    backends = [b for b in args.backends.split(",") if b]
    if not backends or set(backends) - set(BACKENDS):
        parser.error(f"--backends takes a comma-separated subset of {','.join(BACKENDS)}")
    rankings = [r for r in args.rankings.split(",") if r]
    if not rankings or set(rankings) - set(RANKINGS):
        parser.error(f"--rankings takes a comma-separated subset of {','.join(RANKINGS)}")
    local_n = args.local_queries or (3 if args.quick else 10)
    plan = Plan(sizes, backends,
                store_queries={"edge": args.edge_queries or (40 if args.quick else 300),
                               "local": local_n},
                e2e_queries={"edge": args.edge_e2e_queries or (30 if args.quick else 200),
                             "local": local_n},
                warmup={"edge": 5 if args.quick else 20, "local": 1}, rankings=rankings,
                local_dir=Path())

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up as on Ctrl-C
    started = time.perf_counter()
    load_before = os.getloadavg()
    text = Text()
    base = args.dir or Path(tempfile.mkdtemp(prefix="clearance-query-latency-"))
    shm = Path("/dev/shm")
    plan.local_dir = args.local_dir or Path(tempfile.mkdtemp(
        prefix="clearance-query-latency-local-", dir=shm if shm.is_dir() else None))
    variants: list[Variant] = []
    runs: list[dict[str, Any]] = []
    try:
        for size in sizes:
            for backend in backends:
                root, local = base / f"{backend}-{size}", plan.local_dir / f"{backend}-{size}"
                for path in (root, local):
                    shutil.rmtree(path, ignore_errors=True)
                root.mkdir(parents=True)
                done, info = bench_one(root, backend, size, text, plan, args.seed)
                variants += done
                runs.append(info)
                if args.dir is None:
                    shutil.rmtree(root, ignore_errors=True)
                if args.local_dir is None:
                    shutil.rmtree(local, ignore_errors=True)
    finally:
        if args.dir is None:
            shutil.rmtree(base, ignore_errors=True)
        if args.local_dir is None:
            shutil.rmtree(plan.local_dir, ignore_errors=True)

    results = [variant_record(v) for v in variants]
    ratios = ratio_rows(results)
    by_backend = backend_ratio_rows(results)
    checks = acceptance(results, ratios)
    print_report(results, ratios, by_backend, runs, checks, plan)
    print(f"Load average (1 min) before / after the run: {load_before[0]:.1f} / "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (other work on the machine "
          "shares them).")
    plot_path = args.plot or args.out.with_suffix(".png")
    plot_problem = plot(results, plot_path)
    print(f"\n{plot_problem}" if plot_problem else f"\nwrote {plot_path}")

    bad = sum(r["hits_not_permitted"] for r in results)
    passed = all(c["verdict"] != "FAIL" for c in checks) and not bad
    record = {
        "benchmark": "bench/query_latency.py",
        "when": datetime.now(UTC).isoformat(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform(),
                    "load_average_1_5_15_min": {"before": load_before,
                                                "after": os.getloadavg()}},
        "git": git_state(),
        "argv": sys.argv[1:] if argv is None else list(argv),
        "acceptance": f"at {TARGET_SIZE:,} chunks: Edge store-only filtered p50 <= "
                      f"{TARGET_STORE_MS:g} ms; Edge store-only filtered/unfiltered p50 <= "
                      f"{TARGET_RATIO:g}; Edge e2e /v1/search p50 <= {TARGET_E2E_MS:g} ms",
        "checks": checks,
        "passed": passed,
        "backends": {b: BACKEND_NAMES[b] for b in backends},
        "queries_per_variant": {"store": plan.store_queries, "e2e": plan.e2e_queries,
                                "warmup": plan.warmup},
        "data": {"chunks_per_document": CHUNKS_PER_DOC, "groups": N_GROUPS,
                 "acl": f"group:g<K> (one of {N_GROUPS}, uniform) + {ALL_GROUP}",
                 "callers": {"filtered": sorted(caller_principals("filtered")),
                             "unfiltered": sorted(caller_principals("unfiltered"))},
                 "vectors": f"{TOPICS} random unit topic centres; chunk = its document's centre "
                            f"+ Gaussian noise of norm ~{NOISE}, renormalised (seed {args.seed})",
                 "text": f"{WORDS[0]}-{WORDS[1]} consecutive words of the SciFact abstracts",
                 "sparse": Bm25Encoder().name, "limit": LIMIT,
                 "rankings": {k: str(RANKINGS[k]) for k in rankings}},
        "runs": runs,
        "filtered_vs_unfiltered": ratios,
        "local_vs_edge": by_backend,
        "results": results,
        "plot": None if plot_problem else str(plot_path.relative_to(REPO))
        if plot_path.is_relative_to(REPO) else str(plot_path),
        "runtime_s": round(time.perf_counter() - started, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(f"{'PASS' if passed else 'FAIL'}; wrote {args.out} ({record['runtime_s']} s)")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
