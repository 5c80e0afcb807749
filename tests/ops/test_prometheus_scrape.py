"""A real Prometheus server scrapes a real Clearance over loopback, and its HTTP API answers a
query for one of Clearance's series with a value."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.ops.conftest import TOKEN, Monitored
from tests.processes import free_port

PROMETHEUS = shutil.which("prometheus")
pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(PROMETHEUS is None, reason="the prometheus binary is not "
                                 "installed (Debian's prometheus package; .ci/run installs it)")]


def test_prometheus_scrapes_clearance(monitored: Monitored, tmp_path: Path):
    assert PROMETHEUS is not None
    (tmp_path / "token").write_text(TOKEN)
    target = urlsplit(monitored.urls[0]).netloc
    (tmp_path / "prometheus.yml").write_text(f"""
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
scrape_configs:
  - job_name: clearance
    authorization: {{type: Bearer, credentials_file: {tmp_path / "token"}}}
    static_configs: [{{targets: ["{target}"]}}]
""")
    port = free_port()
    log = (tmp_path / "prometheus.log").open("wb")
    server = subprocess.Popen(
        [PROMETHEUS, f"--config.file={tmp_path / 'prometheus.yml'}",
         f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT)
    api = f"http://127.0.0.1:{port}/api/v1/query"
    try:
        # A deadline for a broken setup only: a healthy one answers within a few scrapes.
        deadline = time.monotonic() + 120
        result: list[dict[str, object]] = []
        while not result:
            assert server.poll() is None, (tmp_path / "prometheus.log").read_text()
            assert time.monotonic() < deadline, (tmp_path / "prometheus.log").read_text()
            try:
                answer = httpx.get(api, params={"query": "clearance_index_documents"}, timeout=5)
                if answer.status_code == 200:
                    result = answer.json()["data"]["result"]
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        assert float(result[0]["value"][1]) > 0  # type: ignore[index]
        up = httpx.get(api, params={"query": 'up{job="clearance"}'}, timeout=5).json()
        assert up["data"]["result"][0]["value"][1] == "1"
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
