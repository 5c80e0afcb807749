"""The child process of a re-index job: `python -m application.build_job --config C --job ID`."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path

from control.jobs import Job, now
from ingest.jobs import BuildRunning, build_lock

# The job record is rewritten at most this often while files are processed.
PROGRESS_EVERY_S = 0.5


def run_job(config: Path, job_id: str, source: str | None) -> int:
    # Imported here so that `--help` and a lock refusal stay fast.
    from application.services import open_acl_overrides, open_catalog, open_job_store
    from application.settings import load_settings
    from ingest.pipeline import build_index_version
    from retrieval.bm25 import Bm25Encoder
    from retrieval.embedder import Embedder

    settings = load_settings(config)
    store = open_job_store(settings)
    job = store.load(job_id) or Job(id=job_id, source=source)
    started = time.monotonic()
    try:
        with build_lock(settings.data_dir):
            job.state, job.started_at = "running", now()
            store.save(job)
            last_save = 0.0

            def progress(done: int, total: int) -> None:
                nonlocal last_save
                job.documents_done, job.documents_total = done, total
                if time.monotonic() - last_save >= PROGRESS_EVERY_S or done == total:
                    store.save(job)
                    last_save = time.monotonic()

            catalog = open_catalog(settings)
            _, overrides = open_acl_overrides(settings).current()
            report = build_index_version(
                settings.sources, settings.ingest, catalog=catalog, embedder=Embedder(),
                progress=progress, only_source=source, acl_overrides=overrides,
                bm25=Bm25Encoder(settings.retrieval.bm25),
            )
            info = catalog.get(report.version_id)
            if info is not None:  # the manifest names the job that built it
                catalog.record(replace(info, job_id=job.id))
            catalog.prune(settings.ingest.keep_versions)
    except BuildRunning as exc:
        job.state, job.error = "failed", str(exc)
    except Exception as exc:  # the job record is the only place a caller can see it
        job.state, job.error = "failed", f"{type(exc).__name__}: {exc}"
    else:
        job.state, job.version_id = "succeeded", report.version_id
        job.chunks = report.chunks
        job.errors = [asdict(p) for p in report.errors + report.no_acl + report.skipped]
    job.finished_at = now()
    job.timings = {"total_s": round(time.monotonic() - started, 3)}
    store.save(job)
    return 0 if job.state == "succeeded" else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m application.build_job", description=__doc__)
    parser.add_argument("--config", required=True, type=Path)
    parser.add_argument("--job", required=True)
    parser.add_argument("--source", default=None)
    args = parser.parse_args(argv)
    return run_job(args.config, args.job, args.source)


if __name__ == "__main__":
    sys.exit(main())
