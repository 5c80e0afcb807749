"""Two real `clearance serve` processes over one example deployment with metrics on, as an
operator runs them (replicas sharing data_dir, so their metrics share data_dir/metrics)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from application.services import open_catalog
from application.settings import load_settings
from control.keys import KeyStore
from ingest.pipeline import build_index_version
from observability import metrics
from retrieval.embedder import Embedder
from tests.conftest import shared_parser, write_example_config
from tests.processes import served

TOKEN = "metrics-token-" + "0123456789abcdef" * 2


@dataclass
class Monitored:
    config: Path
    data_dir: Path
    urls: tuple[str, str]
    keys: dict[str, str]

    def scrape(self, replica: int = 0) -> str:
        response = httpx.get(self.urls[replica] + "/metrics", timeout=30,
                             headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/plain")
        return response.text

    def samples(self, replica: int = 0) -> dict[str, list[tuple[dict[str, str], float]]]:
        return metrics.parse(self.scrape(replica))

    def call(self, user: str, method: str, path: str, replica: int = 0, **kw: object
             ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.keys[user]}"}
        return httpx.request(method, self.urls[replica] + path, headers=headers, timeout=120,
                             **kw)  # type: ignore[arg-type]


def value(samples: dict[str, list[tuple[dict[str, str], float]]], name: str,
          **labels: str) -> float:
    """The sum of `name`'s samples whose labels include `labels` (0 when none)."""
    return sum(v for got, v in samples.get(name, [])
               if all(got.get(k) == want for k, want in labels.items()))


@pytest.fixture(scope="module")
def monitored(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder
              ) -> Iterator[Monitored]:
    root = tmp_path_factory.mktemp("monitored")
    config = write_example_config(root)
    with config.open("a", encoding="utf-8") as out:
        out.write(f'\n[metrics]\ntoken = "{TOKEN}"\n')
    settings = load_settings(config)
    build_index_version(settings.sources, settings.ingest, catalog=open_catalog(settings),
                        embedder=embedder, parser=shared_parser())
    store = KeyStore(settings.keys_file)
    keys = {user: store.create(user) for user in ("alice", "dave")}
    with ExitStack() as stack:
        urls = tuple(stack.enter_context(served(config, root / f"serve-{i}.log"))[1]
                     for i in range(2))
        yield Monitored(config, settings.data_dir, (urls[0], urls[1]), keys)
