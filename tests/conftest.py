"""Shared fixtures: the real embedder, the real parser process, and the example deployment
served over real HTTP."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from api.app import create_app
from api.server import Server, uvicorn_config
from application.services import build_services, close_databases, open_catalog
from application.settings import ServerSettings, Settings, load_settings
from control.keys import KeyStore
from ingest.pipeline import IngestReport, build_index_version
from ingest.sandbox import ParserSandbox
from retrieval.embedder import Embedder
from tests.postgres_server import PostgresServer, postgres_server

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_USERS = ("alice", "bob", "carol", "dave", "erin", "root")


_PARSER: ParserSandbox | None = None


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    """One real all-MiniLM-L6-v2 for the whole run: loading it takes seconds."""
    return Embedder()


def shared_parser() -> ParserSandbox:
    """One real parser process for the in-process builds of the whole run (starting one takes
    about 2 s); tests of the sandbox itself start their own. Stopped at the end of the run."""
    global _PARSER
    if _PARSER is None:
        _PARSER = ParserSandbox()
    return _PARSER


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _PARSER is not None:
        _PARSER.close()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One real PostgreSQL server for the run (tests/postgres_server.py), started on first use."""
    with postgres_server() as server:
        yield server
    close_databases()


@pytest.fixture
def database_url(postgres: PostgresServer) -> str:
    """A new database on the test server, migrated to this release's schema."""
    return postgres.create_migrated_database()


def write_example_config(root: Path) -> Path:
    """A copy of the example corpus and policy under `root`, with a config pointing at it."""
    shutil.copytree(REPO / "examples" / "docs", root / "docs")
    shutil.copy(REPO / "examples" / "policy.csv", root / "policy.csv")
    text = (REPO / "clearance.toml").read_text(encoding="utf-8")
    text = text.replace('"examples/docs/', '"docs/').replace('"examples/policy.csv"',
                                                            '"policy.csv"')
    text = text.replace('"policies/model.conf"', f'"{REPO / "policies" / "model.conf"}"')
    config = root / "clearance.toml"
    config.write_text(text, encoding="utf-8")
    return config


class LiveServer:
    """uvicorn serving an app on a free loopback port, in a thread of this process, with the
    protections `clearance serve` has (api.server: its Config and Server; the app's [server]
    settings unless others are given)."""

    def __init__(self, app: object, server: ServerSettings | None = None) -> None:
        if server is None:
            services = getattr(getattr(app, "state", None), "services", None)
            server = services.settings.server if services is not None else ServerSettings()
        self._server = Server(
            uvicorn_config(app, server, host="127.0.0.1", port=0, log_level="warning")
        )
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def __enter__(self) -> str:
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("test server did not start")
            time.sleep(0.02)
        port = self._server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


@dataclass
class Deployment:
    """The example corpus ingested, keys issued, and the API running over HTTP."""

    root: Path
    config: Path
    settings: Settings
    url: str
    keys: dict[str, str]
    first_report: IngestReport

    def client(self, user: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.keys[user]}"} if user else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)


@contextmanager
def serve_config(config: Path, embedder: Embedder, users: Sequence[str]
                 ) -> Iterator[Deployment]:
    """Ingest the sources of `config`, issue a key per user, and serve it over HTTP."""
    settings = load_settings(config)
    report = build_index_version(
        settings.sources, settings.ingest, catalog=open_catalog(settings), embedder=embedder,
        parser=shared_parser(),
    )
    store = KeyStore(settings.keys_file)
    keys = {user: store.create(user) for user in users}
    app = create_app(settings, build_services(settings, embedder=embedder))
    with LiveServer(app) as url:
        yield Deployment(config.parent, config, settings, url, keys, report)


@contextmanager
def serve_example(root: Path, embedder: Embedder) -> Iterator[Deployment]:
    """Ingest a copy of the example corpus under `root`, issue keys, and serve it over HTTP."""
    with serve_config(write_example_config(root), embedder, EXAMPLE_USERS) as deployed:
        yield deployed


@pytest.fixture(scope="session")
def deployment(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder
               ) -> Iterator[Deployment]:
    """The example deployment shared by read-only tests: do not change its data."""
    with serve_example(tmp_path_factory.mktemp("deployment"), embedder) as deployed:
        yield deployed
