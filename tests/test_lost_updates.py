"""Concurrent CLI and API edits of quarantine, pause, ACL overrides, keys and policy lose no
update, on the file control plane and on PostgreSQL (tests/concurrent_edits.py says how a lost
update is counted). A short run here; bench/lost_updates.py runs 1,000 rounds per backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from api.cli import main
from application.services import close_databases, open_catalog, open_keys
from application.settings import load_settings
from control.pg_state import seed_document
from control.postgres import Database
from ingest.pipeline import build_index_version
from retrieval.embedder import Embedder
from tests.concurrent_edits import run_edits
from tests.conftest import REPO, shared_parser, write_example_config
from tests.postgres_server import PostgresServer
from tests.processes import served

pytestmark = pytest.mark.e2e

DOCS = ["handbook:welcome.md", "handbook:it-security.txt", "hr:parental-leave.md",
        "hr:onboarding-checklist.txt"]


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Path:
    """The example corpus indexed once; each backend's run gets its own control plane."""
    root = tmp_path_factory.mktemp("edits")
    config = write_example_config(root)
    settings = load_settings(config)
    build_index_version(settings.sources, settings.ingest, catalog=open_catalog(settings),
                        embedder=embedder, parser=shared_parser())
    return config


@pytest.fixture(params=["files", "postgres"])
def deployment(request: pytest.FixtureRequest, indexed: Path) -> Iterator[tuple[Path, str]]:
    config = indexed
    if request.param == "postgres":
        server: PostgresServer = request.getfixturevalue("postgres")
        url = server.create_migrated_database()
        db = Database(url, max_size=1)
        # The policy only: the files run's edits stay behind in its files.
        seed_document(db, "policy", (REPO / "examples" / "policy.csv").read_text("utf-8"))
        db.close()
        config = indexed.with_name("clearance-pg.toml")
        config.write_text(f'database_url = "{url}"\n' + indexed.read_text("utf-8"), "utf-8")
    yield config, request.param
    close_databases()


def test_concurrent_cli_and_api_edits_lose_nothing(deployment: tuple[Path, str],
                                                    capsys: pytest.CaptureFixture[str]):
    config, backend = deployment
    key = open_keys(load_settings(config)).create("root")
    with served(config, config.parent / f"serve-{backend}.log") as (_, url):
        tally, elapsed = run_edits(config, url, key, DOCS, workers=2, rounds=20)
    with capsys.disabled():
        print(f"\nconcurrent edits [{backend}]: {sum(tally.edits.values())} edits "
              f"{tally.edits}, {len(tally.lost)} lost, {len(tally.errors)} errors, "
              f"{elapsed:.1f} s")
    assert tally.errors == []
    assert tally.lost == []
    assert sum(tally.edits.values()) == 2 * 2 * 20
    assert main(["audit", "verify", "--config", str(config)]) == 0
