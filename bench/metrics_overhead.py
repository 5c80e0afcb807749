"""/v1/search latency with metrics on and off, side by side.

    .venv/bin/python bench/metrics_overhead.py [--size 2000] [--queries 300] [--out PATH]

One synthetic index version of `--size` chunks (bench/query_latency.py's corpus) is built twice,
for two `clearance serve` processes that differ only in `[metrics] token` (on: every request
timed into data_dir/metrics, observability/metrics.py; off: no metrics middleware). Requests are
POST /v1/search with a SciFact query as a caller reading ~5% of the chunks, round-robin between
the two servers after a warm-up, so load on the machine falls on both alike: the ratio is the
figure, not the absolute times. A scrape of the server with metrics on at the end checks that
it counted every request.

Acceptance (issue 17): metrics add at most 5% to /v1/search p50 (ratio on/off <= 1.05).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

import httpx  # noqa: E402
import query_latency as ql  # noqa: E402
from provenance import git_state  # noqa: E402

from observability import metrics  # noqa: E402

LIMIT_RATIO = 1.05
TOKEN = "bench-metrics-token-" + "0" * 32


def deployment(root: Path, size: int, text: ql.Text, on: bool) -> tuple[Path, str]:
    return ql.keyed_deployment(root, size, text,
                               f'\n[metrics]\ntoken = "{TOKEN}"\n' if on else "")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=2_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--out", type=Path, default=BENCH / "results" / "metrics_overhead.json")
    args = parser.parse_args()
    text = ql.Text()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="clearance-metrics-bench-") as tmp:
        servers = {}
        for name, on in (("on", True), ("off", False)):
            ql.log(f"building {args.size} chunks for metrics {name}")
            servers[name] = deployment(Path(tmp) / name, args.size, text, on)
        with (ql.api_server("edge", servers["on"][0], Path(tmp) / "x", Path(tmp) / "on.log")
              as (url_on, _, _),
              ql.api_server("edge", servers["off"][0], Path(tmp) / "y", Path(tmp) / "off.log")
              as (url_off, _, _),
              httpx.Client(timeout=600) as client):

            def variant(name: str, url: str) -> ql.Variant:
                headers = {"Authorization": f"Bearer {servers[name][1]}"}

                def run(qi: int) -> httpx.Response:
                    query = text.queries[qi % len(text.queries)]
                    return client.post(f"{url}/v1/search", json={"query": query, "top_k": 10},
                                       headers=headers)

                def check(response: httpx.Response) -> tuple[int, bool, str | None]:
                    if response.status_code != 200:
                        raise RuntimeError(f"/v1/search answered {response.status_code}: "
                                           f"{response.text[:300]}")
                    return 0, False, None

                return ql.Variant({"metrics": name}, run, check)

            variants = [variant("on", url_on), variant("off", url_off)]
            ql.measure(variants, args.queries, args.warmup, "search")
            scrape = client.get(f"{url_on}/metrics",
                                headers={"Authorization": f"Bearer {TOKEN}"})
            counted = sum(v for labels, v in metrics.parse(scrape.text).get(
                "clearance_http_request_duration_seconds_count", [])
                if labels.get("route") == "/v1/search")
    stats = {v.key["metrics"]: ql.summary(v.times) for v in variants}
    ratio = round(stats["on"]["p50_ms"] / stats["off"]["p50_ms"], 3)
    result: dict[str, Any] = {
        "benchmark": "bench/metrics_overhead.py",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_average_before": load_before, "load_average_after": os.getloadavg()},
        "git": git_state(),
        "chunks": args.size, "queries": args.queries, "warmup": args.warmup,
        "latency": stats, "searches_counted_by_metrics": counted,
        "ratio_p50_on_off": ratio,
        "check": {"check": "/v1/search p50 with metrics on / off", "value": ratio,
                  "limit": LIMIT_RATIO, "verdict": "PASS" if ratio <= LIMIT_RATIO else "FAIL"},
    }
    args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=1))
    return 0 if ratio <= LIMIT_RATIO else 1


if __name__ == "__main__":
    raise SystemExit(main())
