"""End-to-end /v1/chat latency with the answerability decision on and off, side by side.

    .venv/bin/python bench/chat_latency.py [--size 10000] [--queries 200] [--out PATH]

One synthetic index version of `--size` chunks (bench/query_latency.py's corpus: SciFact words,
100 groups, topic-clustered vectors) is built twice, for two `clearance serve` processes that
differ only in `[answers] answerability`: "model" (the default, the decision of
answers/answerability.py) and "similarity" (answer whenever evidence reaches min_score, as
before the decision). `retrieval.min_score` is -1 in both, so every request reaches the
decision with all its hits as evidence (the vectors are synthetic, and their similarity to a
real query would otherwise stop most requests before it): the worst case for the decision's
cost. Requests are POST /v1/chat with a SciFact query (default top_k 5, no LLM: extractive),
as a caller reading ~5% of the chunks, round-robin between the two servers after a warm-up.

Acceptance (issue 16): /v1/chat p50 with the decision on <= 60 ms at 10k chunks on 2 cores.
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

LIMIT_MS = 60.0
MODES = ("model", "similarity")


def deployment(root: Path, size: int, text: ql.Text, mode: str) -> tuple[Path, str]:
    return ql.keyed_deployment(root, size, text, "\n[retrieval]\nmin_score = -1.0\n\n[answers]\n"
                               f'answerability = "{mode}"\n')


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--out", type=Path, default=BENCH / "results" / "chat_latency.json")
    args = parser.parse_args()
    text = ql.Text()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="clearance-chat-bench-") as tmp:
        servers = {}
        for mode in MODES:
            ql.log(f"building {args.size} chunks for answerability = {mode!r}")
            servers[mode] = deployment(Path(tmp) / mode, args.size, text, mode)
        with (ql.api_server("edge", servers["model"][0], Path(tmp) / "x", Path(tmp) / "on.log")
              as (url_on, _, _),
              ql.api_server("edge", servers["similarity"][0], Path(tmp) / "y",
                            Path(tmp) / "off.log") as (url_off, _, _),
              httpx.Client(timeout=600) as client):
            modes_seen: dict[str, dict[str, int]] = {m: {} for m in MODES}

            def variant(mode: str, url: str) -> ql.Variant:
                headers = {"Authorization": f"Bearer {servers[mode][1]}"}

                def run(qi: int) -> httpx.Response:
                    query = text.queries[qi % len(text.queries)]
                    return client.post(f"{url}/v1/chat", json={"message": query},
                                       headers=headers)

                def check(response: httpx.Response) -> tuple[int, bool, str | None]:
                    if response.status_code != 200:
                        raise RuntimeError(f"/v1/chat answered {response.status_code}: "
                                           f"{response.text[:300]}")
                    answer_mode = response.json()["mode"]
                    seen = modes_seen[mode]
                    seen[answer_mode] = seen.get(answer_mode, 0) + 1
                    return 0, False, None

                return ql.Variant({"answerability": mode}, run, check)

            variants = [variant("model", url_on), variant("similarity", url_off)]
            ql.measure(variants, args.queries, args.warmup, "chat")
    stats = {v.key["answerability"]: ql.summary(v.times) for v in variants}
    on, off = stats["model"], stats["similarity"]
    result: dict[str, Any] = {
        "benchmark": "bench/chat_latency.py",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_average_before": load_before, "load_average_after": os.getloadavg()},
        "git": git_state(),
        "chunks": args.size, "queries": args.queries, "warmup": args.warmup,
        "latency": stats, "answer_modes": modes_seen,
        "ratio_p50_on_off": round(on["p50_ms"] / off["p50_ms"], 3),
        "check": {"check": "/v1/chat p50 with the answerability decision on",
                  "value": on["p50_ms"], "limit": LIMIT_MS, "unit": "ms",
                  "verdict": "PASS" if on["p50_ms"] <= LIMIT_MS else "FAIL"},
    }
    args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=1))
    return 0 if on["p50_ms"] <= LIMIT_MS else 1


if __name__ == "__main__":
    raise SystemExit(main())
