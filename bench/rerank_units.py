"""Does a sentence-level reranker beat the default ranking on SciFact? (issue 16)

    .venv/bin/python bench/rerank_units.py [--workdir DIR] [--depth 30] [--out PATH]

The candidate reranker: the default ranking's (hybrid-dbsf) top `--depth` chunks, permission
filter unchanged before it, re-scored by a mix of the fused score and the best similarity of one
of the chunk's sentences to the query (the unit embeddings stored at ingest,
retrieval/unit_vectors.py, so it costs a matrix product at query time). Both scores are
standardised within the query's candidates; the mix weight `a` and the depth are chosen on
SciFact's *training* queries, then nDCG@10 is reported on the test queries beside the default's,
as the reader who may read everything (the nDCG line of issue 16 is for that reader).

--workdir keeps the ingested SciFact deployment (evaluation/answerability.py's open_scifact)
and reuses it. Writes bench/results/rerank_units.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from provenance import git_state  # noqa: E402

from answers.extractive import distinct_units, unit_similarities  # noqa: E402
from evaluation.answerability import open_scifact  # noqa: E402
from evaluation.metrics import ndcg_at_k  # noqa: E402
from retrieval.embedder import Embedder  # noqa: E402

READER = "reader-all"
DEPTHS = (10, 20, 30)
WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0)


class CachedEmbedder(Embedder):
    """The real embedder, each text embedded once per run: a version ingested before unit
    embeddings were stored has its units embedded here, and the same abstracts come back for
    many queries."""

    def __init__(self) -> None:
        super().__init__()
        self._seen: dict[str, np.ndarray] = {}

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        new = sorted({t for t in texts if t not in self._seen})
        if new:
            for t, v in zip(new, super().embed_documents(new), strict=True):
                self._seen[t] = v
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self._seen[t] for t in texts])


def candidates(root: Path, split: str, depth: int, embedder: Embedder) -> list[dict]:
    """Per query: the relevance judgements and the top `depth` chunks' document, fused score
    and best unit similarity."""
    deployment = open_scifact(REPO.parent / "shared" / "data" / "scifact", root, embedder,
                              split=split)
    paths = json.loads((root / "paths.json").read_text(encoding="utf-8"))
    rows = []
    try:
        data = deployment.dataset
        for query_id, text in data.queries.items():
            hits = deployment.retriever.search(text, scope=deployment.scopes[READER],
                                               top_k=depth).hits
            found = distinct_units(hits)
            best = np.full(len(hits), -1.0)
            if found:
                sims = unit_similarities(text, found, hits, embedder=embedder)
                for c, s in zip(found, sims, strict=True):
                    best[c.hit_index] = max(best[c.hit_index], float(s))
            rows.append({"qrels": data.qrels[query_id],
                         "docs": [paths.get(h.payload.doc_id.split(":", 1)[-1]) for h in hits],
                         "fused": [h.score for h in hits], "unit": best.tolist()})
    finally:
        deployment.close()
    return rows


def ndcg(rows: list[dict], depth: int, a: float) -> float:
    scores = []
    for r in rows:
        fused = np.array(r["fused"][:depth])
        unit = np.array(r["unit"][:depth])
        mixed = ((1 - a) * (fused - fused.mean()) / (fused.std() + 1e-9)
                 + a * (unit - unit.mean()) / (unit.std() + 1e-9))
        order = np.argsort(-mixed, kind="stable").tolist() + list(range(depth, len(r["docs"])))
        ranked: list[str] = []
        for k in order:
            d = r["docs"][k]
            if d is not None and d not in ranked:
                ranked.append(d)
        scores.append(ndcg_at_k(ranked, r["qrels"], 10))
    return float(np.mean(scores))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", type=Path, help="keep (and reuse) the SciFact deployment")
    parser.add_argument("--depth", type=int, default=max(DEPTHS))
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" /
                        "rerank_units.json")
    args = parser.parse_args()
    started = time.monotonic()
    embedder = CachedEmbedder()
    with tempfile.TemporaryDirectory(prefix="clearance-rerank-") as tmp:
        root = args.workdir or Path(tmp) / "scifact"
        train = candidates(root, "train", args.depth, embedder)
        test = candidates(root, "test", args.depth, embedder)
    grid = {(d, a): ndcg(train, d, a) for d in DEPTHS if d <= args.depth for a in WEIGHTS}
    depth, a = max(grid, key=lambda k: grid[k])
    default_test = ndcg(test, args.depth, 0.0)
    reranked_test = ndcg(test, depth, a)
    result = {
        "benchmark": "bench/rerank_units.py", "when": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                    time.gmtime()),
        "git": git_state(), "reader": READER, "train_queries": len(train),
        "test_queries": len(test),
        "train_grid": {f"depth={d},a={w}": round(v, 4) for (d, w), v in grid.items()},
        "chosen_on_train": {"depth": depth, "a": a, "ndcg@10_train": round(grid[depth, a], 4)},
        "test": {"default_ndcg@10": round(default_test, 4),
                 "reranked_ndcg@10": round(reranked_test, 4),
                 "unit_similarity_alone_ndcg@10": round(ndcg(test, depth, 1.0), 4)},
        "verdict": ("kept" if reranked_test > default_test + 0.005 else
                    "not kept: no gain over the default beyond 0.005 nDCG@10"),
        "seconds": round(time.monotonic() - started, 1),
    }
    args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
