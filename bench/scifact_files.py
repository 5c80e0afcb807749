"""`clearance ingest` of BEIR SciFact written one .txt per document, run N times (issue 13).

    .venv/bin/python bench/scifact_files.py [--runs N] [--limit K] [--out FILE]

Writes ../shared/data/scifact/corpus.jsonl (evaluation/beir.py's format: one JSON object per
line with `_id`, `title`, `text`) as one `<id>.txt` per document (the title, a newline, the
text) into a temporary directory, with a config declaring it as one source readable by
group:staff. Then runs the real CLI, `clearance ingest`, in a subprocess N times (default 5),
each into a fresh data directory, and prints per run: exit code, seconds, documents, chunks,
errors, and the peak RSS of the ingest process; at the end "N of N runs succeeded" (a run
succeeds when it exits 0 with every document ingested and no error). Before the
tokenizer fix (retrieval/embedder.py) 2 of 3 full runs failed with "Unable to create tensor".
`--limit K` uses the first K documents, for a quick check. A full run of 5 takes over 30
minutes on 2 cores. Writes the runs to bench/results/scifact_files.json (or --out).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))

from provenance import git_state  # noqa: E402

CORPUS = REPO.parent / "shared" / "data" / "scifact" / "corpus.jsonl"
RESULTS = REPO / "bench" / "results" / "scifact_files.json"
SUMMARY = re.compile(r"is now current: (\d+) documents .*?, (\d+) chunks .*?, (\d+) errors")


def write_corpus(corpus: Path, dest: Path, limit: int | None) -> int:
    """One .txt per document; returns how many were written."""
    dest.mkdir(parents=True)
    written = 0
    with corpus.open(encoding="utf-8") as lines:
        for line in lines:
            if limit is not None and written >= limit:
                break
            if not line.strip():
                continue
            doc = json.loads(line)
            name = re.sub(r"[^A-Za-z0-9_.-]", "_", str(doc["_id"]))
            text = f"{str(doc.get('title') or '').strip()}\n{str(doc.get('text') or '').strip()}\n"
            (dest / f"{name}.txt").write_text(text, encoding="utf-8")
            written += 1
    return written


def write_config(root: Path, data_dir: str) -> Path:
    config = root / f"{data_dir}.toml"
    config.write_text(
        f'data_dir = "{data_dir}"\n'
        f'casbin_model = "{REPO / "policies" / "model.conf"}"\n'
        f'casbin_policy = "{REPO / "examples" / "policy.csv"}"\n\n'
        '[[sources]]\nname = "scifact"\npath = "docs"\nowner = "bench"\n'
        'acl = [{ glob = "*", allow = ["group:staff"] }]\n',
        encoding="utf-8",
    )
    return config


def clearance_command() -> list[str]:
    """The installed `clearance` entry point beside this Python, else `python -m api.cli`."""
    script = Path(sys.executable).parent / "clearance"
    return [str(script)] if script.exists() else [sys.executable, "-m", "api.cli"]


def run_once(root: Path, number: int, timeout: float) -> dict[str, object]:
    config = write_config(root, f"data-{number}")
    out, err = root / f"run-{number}.out", root / f"run-{number}.err"
    started = time.perf_counter()
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen([*clearance_command(), "ingest", "--config", str(config)],
                                cwd=root, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL)
        timer = threading.Timer(timeout, proc.kill)  # a hang guard, not a measurement
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    text = out.read_text(encoding="utf-8", errors="replace")
    match = SUMMARY.search(text)
    error_lines = [line for line in text.splitlines() if line.startswith("error")]
    stderr_tail = err.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-3:]
    return {
        "run": number,
        "exit_code": proc.returncode,
        "seconds": round(seconds, 1),
        "documents": int(match.group(1)) if match else None,
        "chunks": int(match.group(2)) if match else None,
        "errors": int(match.group(3)) if match else None,
        "error_lines": error_lines[:20],
        "stderr_tail": stderr_tail if proc.returncode != 0 else [],
        "peak_rss_mib": round(usage.ru_maxrss / 1024),  # kilobytes on Linux
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--limit", type=int, default=None, help="only the first K documents")
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--timeout", type=float, default=3600, help="per run; a hang guard")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")

    root = Path(tempfile.mkdtemp(prefix="clearance-scifact-files-"))
    runs: list[dict[str, object]] = []
    try:
        documents = write_corpus(args.corpus, root / "docs", args.limit)
        print(f"{documents} documents written to {root / 'docs'}; {args.runs} run(s) of "
              f"`{' '.join(clearance_command())} ingest`", flush=True)
        print(f"{'run':>3} {'exit':>4} {'seconds':>8} {'documents':>9} {'chunks':>7} "
              f"{'errors':>6} {'peak RSS MiB':>12}", flush=True)
        for number in range(1, args.runs + 1):
            result = run_once(root, number, args.timeout)
            runs.append(result)
            print(f"{number:>3} {result['exit_code']:>4} {result['seconds']:>8} "
                  f"{result['documents']!s:>9} {result['chunks']!s:>7} {result['errors']!s:>6} "
                  f"{result['peak_rss_mib']:>12}", flush=True)
            for line in [*result["error_lines"], *result["stderr_tail"]]:  # type: ignore[misc]
                print(f"    {line}", flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    succeeded = sum(1 for r in runs
                    if r["exit_code"] == 0 and r["documents"] == documents and r["errors"] == 0)
    print(f"{succeeded} of {len(runs)} runs succeeded")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "git": git_state(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "corpus": str(args.corpus), "documents": documents, "runs": runs,
        "succeeded": succeeded,
    }, indent=2) + "\n", encoding="utf-8")
    return 0 if succeeded == len(runs) else 1


if __name__ == "__main__":
    sys.exit(main())
