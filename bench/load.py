"""Load: throughput and latency under concurrent callers, how they scale, and what a flood of
idle connections does to them.

    .venv/bin/python bench/load.py                    # ~6 min after the ingest
    .venv/bin/python bench/load.py --duration 20 --sweep-duration 5 --flood 4000   # a quick try

Deploys a copy of the example corpus as tests/conftest.py `write_example_config` does (ingested
with `clearance ingest`, a key per example user) and serves it with the product's own
`clearance serve` in a child process (bench/serving.py), so the server runs with every limit of
api/server.py and api/connections.py at its default. The per-key and per-address rate limits
are on but set far above what the clients send (BENCH_SERVER below): they cost what they cost
and throttle nobody.

Phases, one after the other, on the same server:

1. main: `--clients` (32) threads for `--duration` (60) s, each on its own kept-alive
   connection (opened by one untimed request): 70% POST /v1/search, 30% POST /v1/chat,
   questions from examples/README.md, client i asking as USERS[i % 5] (alice, bob, carol,
   dave, erin). Prints req/s, p50, p95, p99, errors (any status but 200, or no response), and
   audit records against responses: the records in the audit log whose request_id a response
   carried, which must be exactly one per response. Meanwhile a probe opens a new connection
   for GET /healthz every second, and the server's descriptors and RSS are sampled.
2. sweep: 1, 2, 4, 8, 16, 32 clients, `--sweep-duration` (12) s each: req/s and p50
   (`--sweep ""` skips it).
3. flood: phase 1 again, and as its clients start, `--flood` (20,000) connections from
   `--flood-procs` (4) processes (bench/flood.py) connecting from `--flood-from` (127.0.0.2,
   another address than the clients' 127.0.0.1), each sending a partial request line and
   nothing more and reconnecting whenever the server closes it; only requests begun after
   `--ramp` (15) s count. Reports the same figures as phase 1 (the clients' errors and
   latency, the probe's new connections, descriptors, RSS), what the flood saw, the CPU time
   of the server and of the flood processes (they share the machine), and how much the server
   log grew and how many tracebacks it gained.

Writes bench/results/load.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script: bench/ is sys.path[0], not the repository
    sys.path.insert(0, str(REPO))

import httpx  # noqa: E402
import psutil  # noqa: E402
from provenance import git_state  # noqa: E402
from serving import clearance_serve, server_process  # noqa: E402

from application.settings import load_settings  # noqa: E402
from control.keys import KeyStore  # noqa: E402
from tests.conftest import write_example_config  # noqa: E402

USERS = ("alice", "bob", "carol", "dave", "erin")
SEARCH_SHARE = 0.7
PROBE_TIMEOUT_S = 30
QUESTIONS = (
    "Where is the office and when was the company founded?",
    "How many days of annual leave do we get?",
    "What is the daily meal limit when travelling?",
    "Where do I report phishing?",
    "What is the salary range of band L3?",
    "How much parental leave does each parent get?",
    "Who owns the telemetry ingest service?",
    "How long was the March 2026 telemetry ingest outage?",
    "What is the total Q3 2026 operating budget?",
    "How long does the NDA stay in force?",
)
# The connection limits are the defaults (1024 connections, 10 s for headers, 5 s keep-alive);
# rate limits on, far above what 32 clients can send: exercised, but they throttle nobody.
BENCH_SERVER = """
[server.rate_limits]
per_key_per_minute = 600000
per_key_burst = 10000
per_address_per_minute = 6000000
per_address_burst = 100000
"""


@dataclass
class Phase:
    """What the clients of one phase saw."""

    clients: int
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    request_ids: list[str] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    kinds: Counter[str] = field(default_factory=Counter)

    def summary(self) -> dict[str, Any]:
        done = len(self.latencies_ms)
        return {"clients": self.clients, "seconds": round(self.seconds, 1), "responses": done,
                "req_per_s": round(done / self.seconds, 2) if self.seconds else 0.0,
                **{f"p{q}_ms": percentile(self.latencies_ms, q) for q in (50, 95, 99)},
                "max_ms": round(max(self.latencies_ms), 1) if done else None,
                "errors": sum(self.errors.values()), "error_kinds": dict(self.errors),
                "kinds": dict(self.kinds)}


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile."""
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))], 1)


def run_clients(url: str, keys: dict[str, str], clients: int, seconds: float, seed: int, *,
                lead_s: float = 0.0, on_start: Callable[[], object] | None = None) -> Phase:
    """`clients` threads asking search or chat as their user, each on its own kept-alive
    connection, opened with one request before the clock starts.

    They ask for `lead_s` + `seconds`; only requests begun after the first `lead_s` count (the
    flood ramps up meanwhile: `on_start` runs as they start asking).
    """
    phase = Phase(clients)
    lock = threading.Lock()
    start = threading.Barrier(clients + 1)
    window = [0.0, 0.0]  # counted from, until

    def ask(http: httpx.Client, rng: random.Random) -> None:
        question = rng.choice(QUESTIONS)
        search = rng.random() < SEARCH_SHARE
        path, body = (("/v1/search", {"query": question, "top_k": 5}) if search else
                      ("/v1/chat", {"message": question, "top_k": 5}))
        began = time.monotonic()
        counted = began >= window[0]
        try:
            response = http.post(path, json=body)
        except httpx.HTTPError as exc:
            if counted:
                with lock:
                    phase.errors[type(exc).__name__] += 1
            return
        elapsed_ms = (time.monotonic() - began) * 1000
        if not counted:
            return
        with lock:
            phase.kinds[path] += 1
            if "X-Request-ID" in response.headers:
                phase.request_ids.append(response.headers["X-Request-ID"])
            if response.status_code == 200:
                phase.latencies_ms.append(elapsed_ms)
            else:
                phase.errors[f"HTTP {response.status_code}"] += 1

    def client(i: int) -> None:
        rng = random.Random(seed * 1000 + i)
        user = USERS[i % len(USERS)]
        headers = {"Authorization": f"Bearer {keys[user]}"}
        with httpx.Client(base_url=url, headers=headers, timeout=120) as http:
            http.get("/healthz")  # connected before the clock starts
            start.wait()
            while time.monotonic() < window[1]:
                ask(http, rng)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    now = time.monotonic()
    window[:] = [now + lead_s, now + lead_s + seconds]
    start.wait()
    if on_start is not None:
        on_start()
    for thread in threads:
        thread.join()
    phase.seconds = time.monotonic() - window[0]
    return phase


def audit_check(audit_log: Path, phase: Phase) -> dict[str, Any]:
    """Records in the audit log for the phase's responses: exactly one each is the claim."""
    per_id: Counter[str] = Counter()
    with audit_log.open(encoding="utf-8") as f:
        for line in f:
            request_id = json.loads(line).get("request_id")
            if request_id:
                per_id[request_id] += 1
    ids = phase.request_ids
    records = sum(per_id[i] for i in ids)
    return {"responses": len(ids), "audit_records": records,
            "responses_without_a_record": sum(1 for i in ids if not per_id[i]),
            "equal": records == len(ids) and all(per_id[i] == 1 for i in ids)}


class Sampler:
    """The server's open descriptors and RSS, and the probe's fresh connections, every second."""

    def __init__(self, url: str, pid: int) -> None:
        self.url = url
        self.process = psutil.Process(pid)
        self.fds: list[int] = []
        self.rss_mb: list[float] = []
        self.probe_ms: list[float] = []
        self.probe_errors: Counter[str] = Counter()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._sample),
                         threading.Thread(target=self._probe)]

    def __enter__(self) -> Sampler:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def _sample(self) -> None:
        while not self._stop.wait(1.0):
            self.fds.append(self.process.num_fds())
            self.rss_mb.append(self.process.memory_info().rss / 2**20)

    def _probe(self) -> None:
        probes = []
        while not self._stop.wait(1.0):
            # One a second, each on a new connection: callers arriving during the flood.
            probes.append(threading.Thread(target=self._probe_once))
            probes[-1].start()
        for probe in probes:
            probe.join()

    def _probe_once(self) -> None:
        began = time.perf_counter()
        try:
            response = httpx.get(f"{self.url}/healthz", timeout=PROBE_TIMEOUT_S,
                                 headers={"Connection": "close"})
        except httpx.HTTPError as exc:
            with self._lock:
                self.probe_errors[type(exc).__name__] += 1
            return
        with self._lock:
            if response.status_code == 200:
                self.probe_ms.append((time.perf_counter() - began) * 1000)
            else:
                self.probe_errors[f"HTTP {response.status_code}"] += 1

    def summary(self) -> dict[str, Any]:
        return {"server_fds_max": max(self.fds, default=None),
                "server_fds_median": percentile([float(f) for f in self.fds], 50),
                "server_rss_mb_max": round(max(self.rss_mb), 1) if self.rss_mb else None,
                "probe_new_connections": len(self.probe_ms) + sum(self.probe_errors.values()),
                "probe_ok": len(self.probe_ms), "probe_errors": dict(self.probe_errors),
                "probe_p50_ms": percentile(self.probe_ms, 50),
                "probe_p95_ms": percentile(self.probe_ms, 95),
                "probe_max_ms": round(max(self.probe_ms), 1) if self.probe_ms else None}


def log_growth(log_path: Path, since: int) -> dict[str, Any]:
    with log_path.open("rb") as f:
        f.seek(since)
        grown = f.read().decode("utf-8", errors="replace").splitlines()
    other = [line for line in grown if '"POST /v1/' not in line and '"GET /healthz' not in line]
    return {"bytes": sum(len(line) + 1 for line in grown), "lines": len(grown),
            "tracebacks": sum("Traceback" in line for line in grown),
            "lines_other_than_access": len(other), "sample_other": other[:10]}


def flood_phase(url: str, keys: dict[str, str], pid: int, log_path: Path, work: Path,
                args: argparse.Namespace) -> dict[str, Any]:
    port = url.rsplit(":", 1)[1]
    per = -(-args.flood // args.flood_procs)
    outs = [work / f"flood-{i}.json" for i in range(args.flood_procs)]
    since = log_path.stat().st_size
    workers: list[subprocess.Popen[bytes]] = []

    def start_flood() -> None:
        workers.extend(subprocess.Popen([sys.executable, str(REPO / "bench" / "flood.py"),
                                         "--port", port, "--connections", str(per),
                                         "--source", args.flood_from, "--out", str(out)])
                       for out in outs)

    server = psutil.Process(pid)
    with ExitStack() as stack:
        stack.callback(_stop_all, workers)
        sampler = stack.enter_context(Sampler(url, pid))
        server_cpu = sum(server.cpu_times()[:2])
        phase = run_clients(url, keys, args.clients, args.duration, seed=3, lead_s=args.ramp,
                            on_start=start_flood)
        cpu = {"server_s": round(sum(server.cpu_times()[:2]) - server_cpu, 1),
               "flood_processes_s": round(sum(sum(psutil.Process(w.pid).cpu_times()[:2])
                                              for w in workers), 1)}
    flood = [json.loads(out.read_text()) for out in outs if out.exists()]
    totals = {k: sum(f[k] for f in flood) for k in
              ("connects", "connect_errors", "closed_by_server", "answered_then_closed",
               "idle_open_at_end", "target")}
    return {"phase": phase, "server": sampler.summary(), "cpu": cpu,
            "flood": {"processes": len(workers), **totals, "per_process": flood},
            "log": log_growth(log_path, since)}


def _stop_all(workers: list[subprocess.Popen[bytes]]) -> None:
    for worker in workers:
        worker.send_signal(signal.SIGTERM)
    for worker in workers:
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def deploy(root: Path) -> tuple[Path, dict[str, str]]:
    config = write_example_config(root)
    config.write_text(config.read_text(encoding="utf-8") + BENCH_SERVER, encoding="utf-8")
    subprocess.run([sys.executable, "-m", "api.cli", "--config", str(config), "ingest"],
                   cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    store = KeyStore(load_settings(config).keys_file)
    return config, {user: store.create(user) for user in USERS}


def row(name: str, s: dict[str, Any]) -> str:
    return (f"| {name} | {s['clients']} | {s['responses']} | {s['req_per_s']} | {s['p50_ms']} "
            f"| {s['p95_ms']} | {s['p99_ms']} | {s['errors']} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--duration", type=float, default=60)
    parser.add_argument("--sweep", default="1,2,4,8,16,32")
    parser.add_argument("--sweep-duration", type=float, default=12)
    parser.add_argument("--flood", type=int, default=20_000)
    parser.add_argument("--flood-procs", type=int, default=4)
    parser.add_argument("--flood-from", default="127.0.0.2",
                        help="the flood's address; the clients' is 127.0.0.1")
    parser.add_argument("--ramp", type=float, default=15)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "load.json")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="clearance-load-") as tmp:
        work = Path(tmp)
        config, keys = deploy(work)
        audit_log = load_settings(config).audit_log
        log_path = work / "server.log"
        with server_process(clearance_serve(config), log_path, start_timeout_s=300) as (url, pid):
            run_clients(url, keys, len(USERS), 5, seed=0)  # warm: every user, both kinds
            with Sampler(url, pid) as quiet:  # the same measures as the flood's, without it
                main_phase = run_clients(url, keys, args.clients, args.duration, seed=1)
            main_audit = audit_check(audit_log, main_phase)
            sweep = [run_clients(url, keys, n, args.sweep_duration, seed=2).summary()
                     for n in (int(x) for x in args.sweep.split(",") if x.strip())]
            flooded = flood_phase(url, keys, pid, log_path, work, args) if args.flood else None
            flood_audit = audit_check(audit_log, flooded["phase"]) if flooded else None

    result: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(), "git": git_state(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "note": "a shared machine: other work ran at the same time"},
        "config": {"server": BENCH_SERVER.strip(), "users": USERS,
                   "search_share": SEARCH_SHARE, **vars(args) | {"out": str(args.out)}},
        "main": {**main_phase.summary(), "audit": main_audit, "server": quiet.summary()},
        "sweep": sweep,
    }
    if flooded:
        result["flood"] = {"clients": {**flooded["phase"].summary(), "audit": flood_audit},
                           "server": flooded["server"], "cpu": flooded["cpu"],
                           "flood": flooded["flood"],
                           "log": flooded["log"]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")

    print("| phase | clients | responses | req/s | p50 ms | p95 ms | p99 ms | errors |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    print(row("main", result["main"]))
    if flooded:
        print(row(f"with {args.flood:,} idle connections", result["flood"]["clients"]))
    print(f"audit records / responses: main {main_audit['audit_records']} / "
          f"{main_audit['responses']}" + (f", flooded {flood_audit['audit_records']} / "
                                          f"{flood_audit['responses']}" if flood_audit else ""))
    print("\n| clients | req/s | p50 ms |\n|---:|---:|---:|")
    for level in sweep:
        print(f"| {level['clients']} | {level['req_per_s']} | {level['p50_ms']} |")
    if flooded:
        print(f"\nflood: {json.dumps(result['flood']['flood'] | {'per_process': '...'})}")
        print(f"server, no flood: {json.dumps(result['main']['server'])}")
        print(f"server, flooded: {json.dumps(result['flood']['server'])}")
        print(f"cpu seconds in the flooded phase: {json.dumps(result['flood']['cpu'])}")
        print(f"log: {json.dumps(result['flood']['log'])}")
    print(f"\nwrote {args.out}")
    ok = main_audit["equal"] and (flood_audit is None or flood_audit["equal"])
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
