"""Incremental re-index against a full build, on BEIR SciFact (5,183 abstracts).

    .venv/bin/python bench/incremental_reindex.py [--limit N] [--keep]

Writes each document of ../shared/data/scifact/corpus.jsonl as one .txt file (title on the first
line, then the text) into a temporary directory, declares it as one source readable by
group:staff, and then, in one process with one loaded embedder:

1. builds the first version (a full build: parse, chunk and embed every file);
2. builds again with nothing changed (every document should be reused, nothing embedded);
3. changes one file and builds again (only that file's chunks should be embedded).

Prints a table and the ratio full / incremental, and writes the figures to
bench/results/incremental_reindex.json. The model and the parser are loaded before any timing,
so the full build is not charged for start-up. Acceptance: the unchanged re-index is at least
20x faster than the full build, and the changed-file build embeds only that file's chunks.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from ingest.chunker import chunk_document  # noqa: E402
from ingest.parser import parse_document  # noqa: E402
from ingest.pipeline import IngestReport, build_index_version  # noqa: E402
from ingest.settings import IngestSettings, SourceSettings  # noqa: E402
from policies.acl_rules import AclRule  # noqa: E402
from retrieval.edge_store import EdgeBackend  # noqa: E402
from retrieval.embedder import Embedder  # noqa: E402
from retrieval.versions import VersionCatalog  # noqa: E402

CORPUS = REPO.parent / "shared" / "data" / "scifact" / "corpus.jsonl"
RESULTS = REPO / "bench" / "results" / "incremental_reindex.json"
TARGET_RATIO = 20.0
CHANGE = "\nThis sentence was appended by the incremental re-index benchmark.\n"


def write_corpus(corpus: Path, dest: Path, limit: int | None) -> list[Path]:
    """One .txt per document: the title, a newline, the text. Returns the paths in order."""
    dest.mkdir(parents=True)
    paths: list[Path] = []
    with corpus.open(encoding="utf-8") as lines:
        for line in lines:
            if limit is not None and len(paths) >= limit:
                break
            doc = json.loads(line)
            name = re.sub(r"[^A-Za-z0-9_.-]", "_", str(doc["_id"]))
            path = dest / f"{name}.txt"
            path.write_text(f"{doc['title'].strip()}\n{doc['text'].strip()}\n", encoding="utf-8")
            paths.append(path)
    return paths


def warm_up(embedder: Embedder, scratch: Path) -> None:
    """Load the model, unstructured with spaCy, and llama-index before anything is timed."""
    embedder.warm_up()
    sample = scratch / "warm-up.txt"
    sample.write_text("Warm up\nThe parser and the splitter load their models here.\n")
    chunk_document(parse_document(sample), tokenizer=embedder.token_ids)
    sample.unlink()


def row(name: str, report: IngestReport) -> dict[str, object]:
    return {
        "build": name,
        "version_id": report.version_id,
        "seconds": round(report.seconds, 3),
        "documents": report.documents,
        "chunks": report.chunks,
        "reused": report.reused,
        "embedded_chunks": report.embedded_chunks,
        "errors": len(report.errors),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=None, help="use the first N documents")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="clearance-incremental-"))
    try:
        paths = write_corpus(args.corpus, tmp / "docs", args.limit)
        source = SourceSettings(name="scifact", path=tmp / "docs", owner="bench",
                                acl=[AclRule(glob="*", allow=["group:staff"])])
        settings = IngestSettings()
        catalog = VersionCatalog(tmp / "versions", EdgeBackend(tmp / "index"))
        embedder = Embedder()
        warm_up(embedder, tmp)

        def build() -> IngestReport:
            return build_index_version([source], settings, catalog=catalog, embedder=embedder)

        print(f"{len(paths)} documents in {tmp / 'docs'}; full build ...", flush=True)
        full = build()
        print("incremental build, nothing changed ...", flush=True)
        unchanged = build()
        changed_path = paths[len(paths) // 2]
        with changed_path.open("a", encoding="utf-8") as handle:
            handle.write(CHANGE)
        print(f"incremental build, {changed_path.name} changed ...", flush=True)
        changed = build()

        changed_doc = f"scifact:{changed_path.name}"
        reader = catalog.backend.open(changed.version_id)
        try:
            changed_doc_chunks = sum(
                1 for c in reader.iter_chunks() if c.payload["doc_id"] == changed_doc
            )
        finally:
            reader.close()
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    rows = [row("full", full), row("incremental, unchanged", unchanged),
            row("incremental, 1 file changed", changed)]
    ratio = full.seconds / unchanged.seconds if unchanged.seconds else float("inf")
    only_changed = (
        changed.embedded_chunks == changed_doc_chunks
        and changed.reused == changed.documents - 1
    )
    header = (f"{'build':<28} {'seconds':>9} {'documents':>9} {'chunks':>7} {'reused':>7} "
              f"{'embedded':>8} {'errors':>6}")
    print()
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['build']:<28} {r['seconds']:>9.2f} {r['documents']:>9} {r['chunks']:>7} "
              f"{r['reused']:>7} {r['embedded_chunks']:>8} {r['errors']:>6}")
    print()
    print(f"full / incremental (unchanged): {ratio:.1f}x "
          f"(target >= {TARGET_RATIO:.0f}x: {'met' if ratio >= TARGET_RATIO else 'NOT met'})")
    verdict = "only that file" if only_changed else "NOT only that file"
    print(f"changed file {changed_doc}: {changed_doc_chunks} chunks in the new version, "
          f"{changed.embedded_chunks} embedded ({verdict})")

    result = {
        "benchmark": "incremental_reindex",
        "run_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "corpus": str(args.corpus.name if args.corpus == CORPUS else args.corpus),
        "documents": len(paths),
        "limit": args.limit,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "builds": rows,
        "ratio_full_over_unchanged": round(ratio, 2),
        "changed_doc": changed_doc,
        "changed_doc_chunks": changed_doc_chunks,
        "acceptance": {
            "ratio_at_least_20x": ratio >= TARGET_RATIO,
            "changed_file_embeds_only_its_chunks": only_changed,
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out.relative_to(REPO) if args.out.is_relative_to(REPO) else args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
