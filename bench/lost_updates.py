"""Lost updates under concurrent CLI and API edits, on each control-plane backend.

    .venv/bin/python bench/lost_updates.py [--rounds 500] [--workers 2] [--out PATH]

Sets up the example corpus as tests/conftest.py does (a copy under a temporary directory, one
index version built with the real parser and embedder), then for each backend (files under
data_dir, and a throwaway PostgreSQL 15 cluster from tests/postgres_server.py with the example
policy seeded) starts the real `clearance serve` in a child process and runs
tests/concurrent_edits.py: `--workers` CLI processes (each running real `clearance` commands
in turn) and `--workers` API threads (HTTP to the server), `--rounds` edits each, all at once,
over quarantine, pause, ACL overrides, keys and policy. A round is one CLI edit and one API
edit made at the same time, so a backend sees workers x rounds rounds (1,000 by default).

Counts, per backend: edits by kind, lost updates (a worker's own target no longer holding
what its last edit left), failed edits, wall time, and whether `clearance audit verify`
passes afterwards. Writes bench/results/lost_updates.json. Acceptance: 0 lost updates on
each backend.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script: bench/ is sys.path[0], not the repository
    sys.path.insert(0, str(REPO))

from api.cli import main as clearance  # noqa: E402
from application.services import close_databases, open_catalog, open_keys  # noqa: E402
from application.settings import load_settings  # noqa: E402
from control.pg_state import seed_document  # noqa: E402
from control.postgres import Database  # noqa: E402
from ingest.pipeline import build_index_version  # noqa: E402
from retrieval.embedder import Embedder  # noqa: E402
from tests.concurrent_edits import run_edits  # noqa: E402
from tests.conftest import shared_parser, write_example_config  # noqa: E402
from tests.postgres_server import postgres_server  # noqa: E402
from tests.processes import served  # noqa: E402
from tests.test_lost_updates import DOCS  # noqa: E402


def run(rounds: int, workers: int) -> dict[str, object]:
    results: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="lost-updates-") as tmp, postgres_server() as pg:
        root = Path(tmp)
        config = write_example_config(root)
        settings = load_settings(config)
        build_index_version(settings.sources, settings.ingest, catalog=open_catalog(settings),
                            embedder=Embedder(), parser=shared_parser())
        url = pg.create_migrated_database()
        db = Database(url, max_size=1)
        seed_document(db, "policy", (REPO / "examples" / "policy.csv").read_text("utf-8"))
        db.close()
        pg_config = root / "clearance-pg.toml"
        pg_config.write_text(f'database_url = "{url}"\n' + config.read_text("utf-8"), "utf-8")
        for backend, cfg in (("files", config), ("postgres", pg_config)):
            key = open_keys(load_settings(cfg)).create("root")
            with served(cfg, root / f"serve-{backend}.log") as (_, base):
                tally, elapsed = run_edits(cfg, base, key, DOCS, workers=workers,
                                           rounds=rounds)
            verified = clearance(["audit", "verify", "--config", str(cfg)]) == 0
            close_databases()
            edits = sum(tally.edits.values())
            results[backend] = {
                "rounds": workers * rounds, "edits": edits, "by_kind": tally.edits,
                "lost_updates": len(tally.lost), "failed_edits": len(tally.errors),
                "wall_s": round(elapsed, 1), "edits_per_s": round(edits / elapsed, 1),
                "audit_verify_ok": verified, "first_lost": tally.lost[:5],
                "first_errors": tally.errors[:5],
            }
            print(f"{backend:9} {workers * rounds} rounds, {edits} edits {tally.edits}: "
                  f"{len(tally.lost)} lost, {len(tally.errors)} failed, {elapsed:.1f} s, "
                  f"audit verify {'ok' if verified else 'BROKEN'}", flush=True)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=500, help="edits per worker")
    parser.add_argument("--workers", type=int, default=2, help="CLI processes, and API threads")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" /
                        "lost_updates.json")
    args = parser.parse_args()
    results = run(args.rounds, args.workers)
    args.out.write_text(json.dumps({
        "when": datetime.now(UTC).isoformat(timespec="seconds"), "machine": platform.node(),
        "cpus": __import__("os").cpu_count(), "workers": args.workers, "rounds": args.rounds,
        "backends": results}, indent=2) + "\n", encoding="utf-8")
    ok = all(r["lost_updates"] == 0 and r["failed_edits"] == 0  # type: ignore[index]
             for r in results.values())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
