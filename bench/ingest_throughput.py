"""End-to-end ingestion throughput against the raw embedder's, side by side in one run.

    .venv/bin/python bench/ingest_throughput.py [--limit N] [--rounds R]

Writes the first N SciFact abstracts (default 600) as .txt files (as bench/incremental_reindex.py
does), loads the model and the parser once, then alternates, R times (default 2):

- ingest: a full build of a fresh index (`build_index_version`: discover, hash, parse with
  unstructured, chunk, embed, BM25-encode, write to embedded Qdrant, optimize, seal, switch),
  timed from the call to its return; chunks/s = chunks embedded / seconds;
- raw: the same chunk texts (read back from the version just built) through
  `Embedder.embed_documents` in one call, the embedder at its best (it sorts by length and
  batches by itself); chunks/s = chunks / seconds;
- raw + units: that, plus the chunks' sentences and table rows in one more call: the
  embedding work a build does since unit embeddings are stored (retrieval/unit_vectors.py).

Prints a table with the median of each and the ratios, and writes
bench/results/ingest_throughput.json. Acceptance: ingest / (raw + units), the pipeline's own
overhead over the embedding it must do, is at least 0.80; ingest / raw shows what storing unit
embeddings costs a build.
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
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from incremental_reindex import CORPUS, warm_up, write_corpus  # noqa: E402

from ingest.pipeline import build_index_version  # noqa: E402
from ingest.settings import IngestSettings, SourceSettings  # noqa: E402
from policies.acl_rules import AclRule  # noqa: E402
from retrieval.edge_store import EdgeBackend  # noqa: E402
from retrieval.embedder import Embedder  # noqa: E402
from retrieval.passages import split_units  # noqa: E402
from retrieval.versions import VersionCatalog  # noqa: E402

RESULTS = REPO / "bench" / "results" / "ingest_throughput.json"
TARGET = 0.80


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=600, help="the first N documents")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="clearance-throughput-"))
    rows: list[dict[str, object]] = []
    try:
        paths = write_corpus(CORPUS, tmp / "docs", args.limit)
        source = SourceSettings(name="scifact", path=tmp / "docs", owner="bench",
                                acl=[AclRule(glob="*", allow=["group:staff"])])
        embedder = Embedder()
        warm_up(embedder, tmp)
        print(f"{len(paths)} documents; {args.rounds} rounds of ingest then raw embedder",
              flush=True)
        for round_no in range(1, args.rounds + 1):
            catalog = VersionCatalog(tmp / f"versions-{round_no}",
                                     EdgeBackend(tmp / f"index-{round_no}"))
            report = build_index_version([source], IngestSettings(), catalog=catalog,
                                         embedder=embedder, reuse=False)
            rows.append({"round": round_no, "what": "ingest", "chunks": report.embedded_chunks,
                         "seconds": round(report.seconds, 3),
                         "chunks_per_s": round(report.embedded_chunks / report.seconds, 2)})
            reader = catalog.backend.open(report.version_id)
            try:
                texts = [str(c.payload["text"]) for c in reader.iter_chunks()]
            finally:
                reader.close()
            started = time.perf_counter()
            embedder.embed_documents(texts)
            seconds = time.perf_counter() - started
            rows.append({"round": round_no, "what": "raw embedder", "chunks": len(texts),
                         "seconds": round(seconds, 3),
                         "chunks_per_s": round(len(texts) / seconds, 2)})
            # What a build embeds besides: every chunk's sentences and table rows
            # (retrieval/unit_vectors.py), the same model's work on shorter texts.
            units = [u.text for t in texts for u in split_units(t)]
            started = time.perf_counter()
            embedder.embed_documents(units)
            both = seconds + time.perf_counter() - started
            rows.append({"round": round_no, "what": "raw + units", "chunks": len(texts),
                         "units": len(units), "seconds": round(both, 3),
                         "chunks_per_s": round(len(texts) / both, 2)})
            for row in rows[-3:]:
                print(f"  round {row['round']}: {row['what']:<13} {row['chunks']:>6} chunks "
                      f"in {row['seconds']:>7.2f} s = {row['chunks_per_s']:>6.2f} chunks/s",
                      flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    ingest = statistics.median(float(r["chunks_per_s"]) for r in rows  # type: ignore[arg-type]
                               if r["what"] == "ingest")
    raw = statistics.median(float(r["chunks_per_s"]) for r in rows  # type: ignore[arg-type]
                            if r["what"] == "raw embedder")
    both = statistics.median(float(r["chunks_per_s"]) for r in rows  # type: ignore[arg-type]
                             if r["what"] == "raw + units")
    # The pipeline's own overhead: against the raw embedder doing the same embedding work.
    ratio = ingest / both
    print()
    print("| what | median chunks/s |")
    print("|---|---:|")
    print(f"| ingest (end to end) | {ingest:.2f} |")
    print(f"| raw embedder, chunks only | {raw:.2f} |")
    print(f"| raw embedder, chunks and their units | {both:.2f} |")
    print(f"| ingest / raw chunks only | {ingest / raw:.2f} (what unit embeddings cost) |")
    print(f"| ingest / raw chunks and units | {ratio:.2f} (target >= {TARGET:.2f}: "
          f"{'PASS' if ratio >= TARGET else 'FAIL'}) |")
    result = {
        "benchmark": "ingest_throughput",
        "run_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "documents": len(paths),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "rounds": rows,
        "median_ingest_chunks_per_s": round(ingest, 2),
        "median_raw_chunks_per_s": round(raw, 2),
        "median_raw_with_units_chunks_per_s": round(both, 2),
        "ratio_to_raw_chunks_only": round(ingest / raw, 3),
        "ratio": round(ratio, 3),
        "acceptance": {"ratio_at_least_0.80": ratio >= TARGET},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out.relative_to(REPO) if args.out.is_relative_to(REPO) else args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
