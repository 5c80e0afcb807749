"""Revocation latency: how long after an operator's change a caller stops getting a document.

    .venv/bin/python bench/revocation.py [--trials 20] [--server process|thread] [--out PATH]

Sets up the example deployment as tests/conftest.py `serve_example` does (a copy of examples/
under a temporary directory, the config pointing at it, one index version built with the real
embedder, API keys from KeyStore) and serves it over HTTP on loopback. By default the server
is a separate process (`python -m api.cli --config CFG serve --port P`), so every change made
here crosses a process boundary as an operator's would; `--server thread` serves
`api.app.create_app(...)` in a thread of this process instead (tests.conftest.LiveServer).

Then, round-robin over the kinds below, `--trials` times each, starting every trial from access
present (dave gets `handbook:welcome.md` in POST /v1/search, top_k 50):

- group_removal: rewrite the policy file without `g, user:dave, group:staff` (temp file +
  os.replace), then poll as dave until the document is gone. Restore the line, poll until it
  is back.
- scim_group_removal: the identity provider's request through SCIM, `PATCH /scim/v2/Groups/ID`
  removing sam from the provisioned group "staff" (sam is in no group of the policy file; a
  provisioning key), then poll as sam; restore with a PATCH adding sam again.
- acl_override_api: `AclOverrides(data_dir/document_acls.json).set(doc, ["user:root"])`, what
  `clearance acl set` calls; restore with `.clear(doc)`.
- acl_override_cli: the real CLI in a subprocess, `python -m api.cli --config CFG acl set DOC
  --allow user:root` (restore: `acl clear DOC`). Reports the CLI's wall time, the time from
  its exit to the first response without the document, and write-to-effect: from the
  override file's mtime (wall clock, as the CLI wrote it) to that response.
- config_acl_rule: rewrite the config (temp file + os.replace) with a first handbook rule
  `{ glob = "welcome.md", allow = ["user:root"] }`; restore the original text.

Latency = from the change returning (os.replace, set(), the SCIM response, or the CLI's exit) to
the receipt of
the first response without the document. Polls are back-to-back requests on one keep-alive
connection, so the resolution is one request (its latency is reported: idle, and for the
polls of the trials); `polls` = 1 means the very first request after the change already
reflected it. Restores are timed the same way and reported separately.

Prints a table and writes bench/results/revocation.json. Acceptance: group removal and
document ACL change, max over 20 trials, under 1 s each.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script: bench/ is sys.path[0], not the repository
    sys.path.insert(0, str(REPO))

import httpx  # noqa: E402
from provenance import git_state  # noqa: E402
from serving import clearance_serve, server_process  # noqa: E402

from application.services import open_catalog  # noqa: E402
from application.settings import Settings, load_settings  # noqa: E402
from control.acl_overrides import AclOverrides  # noqa: E402
from control.keys import KeyStore  # noqa: E402
from ingest.pipeline import build_index_version  # noqa: E402
from retrieval.embedder import Embedder  # noqa: E402
from tests.conftest import write_example_config  # noqa: E402

LIMIT_S = 1.0  # acceptance: a revocation is in effect in less than this
USER = "dave"
DOC = "handbook:welcome.md"
QUERY = "Welcome to Larkspur Instruments: your first days as a new employee"
TOP_K = 50
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
MEMBERSHIP = "g, user:dave, group:staff"
OLD_RULE = 'acl = [{ glob = "*", allow = ["group:staff"] }]'
NEW_RULE = ('acl = [{ glob = "welcome.md", allow = ["user:root"] }, '
            '{ glob = "*", allow = ["group:staff"] }]')
SCIM_USER = "sam"  # in no group of the policy file: only SCIM makes sam a member of staff
SCIM_GROUP = "staff"
KINDS = ("group_removal", "scim_group_removal", "acl_override_api", "acl_override_cli",
         "config_acl_rule")
ACCEPTANCE_KINDS = KINDS  # group removal and every way of changing a document's ACL


def replace_file(path: Path, text: str) -> None:
    """Rewrite `path` atomically as an operator's tool would: a temp file, then os.replace."""
    tmp = path.with_name(f".{path.name}.bench.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


@contextmanager
def served(config: Path, log_path: Path) -> Iterator[str]:
    """`clearance serve` in a child process; yields its URL once /healthz answers."""
    with server_process(clearance_serve(config), log_path, start_timeout_s=180) as (url, _):
        yield url


@contextmanager
def server_thread(settings: Settings, embedder: Embedder) -> Any:
    from api.app import create_app
    from application.services import build_services
    from tests.conftest import LiveServer

    app = create_app(settings, build_services(settings, embedder=embedder))
    with LiveServer(app) as url:
        yield url


@dataclass
class Poller:
    """Back-to-back searches as one user on one keep-alive connection."""

    client: httpx.Client
    request_s: list[float] = field(default_factory=list)

    def has_doc(self) -> bool:
        started = time.perf_counter()
        response = self.client.post("/v1/search", json={"query": QUERY, "top_k": TOP_K})
        self.request_s.append(time.perf_counter() - started)
        response.raise_for_status()
        return DOC in {r["doc_id"] for r in response.json()["results"]}

    def until(self, present: bool, since: float, timeout_s: float) -> tuple[float, int, float]:
        """(seconds from `since` to the first response with the document `present` or not,
        polls made, wall-clock time.time() at that response); inf seconds on timeout."""
        polls = 0
        while True:
            state = self.has_doc()
            polls += 1
            now = time.perf_counter()
            if state == present:
                return now - since, polls, time.time()
            if now - since > timeout_s:
                return float("inf"), polls, time.time()


def run_cli(config: Path, *args: str) -> float:
    """Seconds the `clearance` CLI takes, start to exit (it must succeed)."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "api.cli", "--config", str(config), *args],
                          cwd=REPO, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"clearance {' '.join(args)} failed: {done.stdout}{done.stderr}")
    return elapsed


def summary(values_s: Sequence[float]) -> dict[str, float]:
    ms = sorted(v * 1000 for v in values_s)
    p95 = ms[min(len(ms) - 1, max(0, round(0.95 * len(ms)) - 1))]  # nearest rank
    return {"n": len(ms), "median_ms": statistics.median(ms), "p95_ms": p95, "max_ms": ms[-1],
            "min_ms": ms[0]}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--server", choices=("process", "thread"), default="process",
                        help="serve from a child process (default) or a thread of this one")
    parser.add_argument("--timeout", type=float, default=30.0,
                        help="give up on one trial after this many seconds (counts as a fail)")
    parser.add_argument("--kinds", default=",".join(KINDS),
                        help=f"comma-separated subset of {','.join(KINDS)}")
    parser.add_argument("--out", type=Path,
                        default=REPO / "bench" / "results" / "revocation.json")
    parser.add_argument("--dir", type=Path, default=None,
                        help="deploy under this directory, kept (default: a temporary one)")
    args = parser.parse_args(argv)
    kinds = [k for k in args.kinds.split(",") if k]
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        parser.error(f"unknown kinds {unknown}")

    root = args.dir or Path(tempfile.mkdtemp(prefix="clearance-revocation-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        return bench(root, args, kinds)
    finally:
        if args.dir is None:
            shutil.rmtree(root, ignore_errors=True)


def bench(root: Path, args: argparse.Namespace, kinds: list[str]) -> int:
    started_all = time.perf_counter()
    config = write_example_config(root)
    settings = load_settings(config)
    embedder = Embedder()
    embedder.warm_up()
    report = build_index_version(settings.sources, settings.ingest,
                                 catalog=open_catalog(settings), embedder=embedder)
    keys = {u: KeyStore(settings.keys_file).create(u) for u in (USER, "root", SCIM_USER)}
    provisioning_key = KeyStore(settings.keys_file).create("idp", kind="provisioning",
                                                           scope="query")
    print(f"built index version {report.version_id}: {report.documents} documents, "
          f"{report.chunks} chunks", file=sys.stderr, flush=True)

    policy_path = settings.casbin_policy
    policy_text = policy_path.read_text(encoding="utf-8")
    assert sum(line.strip() == MEMBERSHIP for line in policy_text.splitlines()) == 1
    revoked_policy = "".join(line for line in policy_text.splitlines(keepends=True)
                             if line.strip() != MEMBERSHIP)
    config_text = config.read_text(encoding="utf-8")
    assert config_text.count(OLD_RULE) == 1, "the handbook rule is not where expected"
    revoked_config = config_text.replace(OLD_RULE, NEW_RULE)
    overrides_path = settings.data_dir / "document_acls.json"
    overrides = AclOverrides(overrides_path)

    results: dict[str, dict[str, list[float]]] = {
        k: {"latency": [], "restore": [], "polls": [], "restore_polls": [], "change": []}
        for k in kinds}
    cli_extra: dict[str, list[float]] = {"cli_set_wall": [], "cli_clear_wall": [],
                                         "write_to_effect": [], "restore_write_to_effect": []}

    with ExitStack() as stack:
        server: AbstractContextManager[str]
        if args.server == "process":
            server = served(config, root / "server.log")
        else:
            server = server_thread(settings, embedder)
        url = stack.enter_context(server)
        client = stack.enter_context(httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {keys[USER]}"}, timeout=60))
        root_client = stack.enter_context(httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {keys['root']}"}, timeout=60))
        poller = Poller(client)
        scim = stack.enter_context(httpx.Client(
            base_url=url + "/scim/v2", timeout=60,
            headers={"Authorization": f"Bearer {provisioning_key}",
                     "Content-Type": "application/scim+json"}))
        scim_poller = Poller(stack.enter_context(httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {keys[SCIM_USER]}"}, timeout=60)))
        sam = scim.post("/Users", json={"schemas": [USER_SCHEMA], "userName": SCIM_USER})
        sam.raise_for_status()
        staff = scim.post("/Groups", json={"schemas": [GROUP_SCHEMA], "displayName": SCIM_GROUP,
                                           "members": [{"value": sam.json()["id"]}]})
        staff.raise_for_status()
        scim_member = {"path": f"/Groups/{staff.json()['id']}", "id": sam.json()["id"]}
        pollers = {kind: scim_poller if kind.startswith("scim") else poller for kind in KINDS}
        for _ in range(5):  # warm up the connection, the reader and the caches
            assert poller.has_doc(), f"{USER} does not get {DOC} before any change"
            assert scim_poller.has_doc(), f"{SCIM_USER} does not get {DOC} before any change"
        poller.request_s.clear()
        for _ in range(50):
            poller.has_doc()
        idle_request_s = list(poller.request_s)
        poller.request_s.clear()
        scim_poller.request_s.clear()
        print(f"server ({args.server}) at {url}; idle search request: median "
              f"{statistics.median(idle_request_s) * 1000:.1f} ms", file=sys.stderr, flush=True)

        def root_sees_doc() -> bool:
            response = root_client.post("/v1/search", json={"query": QUERY, "top_k": TOP_K})
            response.raise_for_status()
            return DOC in {r["doc_id"] for r in response.json()["results"]}

        def scim_patch(op: str, path: str, value: Any) -> None:
            operation = {"op": op, "path": path, **({"value": value} if value else {})}
            response = scim.patch(scim_member["path"], json={
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [operation]})
            response.raise_for_status()

        def revoke(kind: str) -> float:
            """Make the change; returns perf_counter() when it returned (the latency's start)."""
            started = time.perf_counter()
            if kind == "group_removal":
                replace_file(policy_path, revoked_policy)
            elif kind == "scim_group_removal":
                scim_patch("remove", f'members[value eq "{scim_member["id"]}"]', None)
            elif kind == "acl_override_api":
                overrides.set(DOC, ["user:root"])
            elif kind == "acl_override_cli":
                cli_extra["cli_set_wall"].append(
                    run_cli(config, "acl", "set", DOC, "--allow", "user:root"))
            else:
                replace_file(config, revoked_config)
            done = time.perf_counter()
            results[kind]["change"].append(done - started)
            return done

        def restore(kind: str) -> float:
            if kind == "group_removal":
                replace_file(policy_path, policy_text)
            elif kind == "scim_group_removal":
                scim_patch("add", "members", [{"value": scim_member["id"]}])
            elif kind == "acl_override_api":
                assert overrides.clear(DOC)
            elif kind == "acl_override_cli":
                cli_extra["cli_clear_wall"].append(run_cli(config, "acl", "clear", DOC))
            else:
                replace_file(config, config_text)
            return time.perf_counter()

        def trial(kind: str, i: int, change: Callable[[str], float], present: bool) -> None:
            since = change(kind)
            latency, polls, wall = pollers[kind].until(present, since, args.timeout)
            key = "restore" if present else "latency"
            results[kind][key].append(latency)
            results[kind]["restore_polls" if present else "polls"].append(polls)
            if kind == "acl_override_cli":
                mtime = overrides_path.stat().st_mtime_ns / 1e9 if overrides_path.exists() else 0
                what = "restore_write_to_effect" if present else "write_to_effect"
                cli_extra[what].append(wall - mtime)
            if latency == float("inf"):
                raise RuntimeError(f"{kind} trial {i}: {DOC} still "
                                   f"{'absent' if present else 'present'} after {args.timeout} s")

        for i in range(args.trials):
            for kind in kinds:
                trial(kind, i, revoke, present=False)
                if i == 0 and "group_removal" not in kind:
                    assert root_sees_doc(), f"{kind}: user:root should still read {DOC}"
                trial(kind, i, restore, present=True)
            print(f"  trial {i + 1}/{args.trials}: " + ", ".join(
                f"{k} {results[k]['latency'][-1] * 1000:.1f} ms" for k in kinds),
                file=sys.stderr, flush=True)
        trial_request_s = list(poller.request_s) + list(scim_poller.request_s)

    kinds_out = {}
    for kind in kinds:
        r = results[kind]
        entry: dict[str, Any] = {
            "revoke": summary(r["latency"]),
            "restore": summary(r["restore"]),
            "change_itself": summary(r["change"]),
            "polls_max": max(r["polls"]),
            "polls_median": statistics.median(r["polls"]),
            "restore_polls_max": max(r["restore_polls"]),
            "under_1s": max(r["latency"]) < LIMIT_S,
            "revoke_ms": [round(v * 1000, 2) for v in r["latency"]],
        }
        if kind == "acl_override_cli":
            entry.update({
                "cli_acl_set_wall": summary(cli_extra["cli_set_wall"]),
                "cli_acl_clear_wall": summary(cli_extra["cli_clear_wall"]),
                "write_to_effect": summary(cli_extra["write_to_effect"]),
                "restore_write_to_effect": summary(cli_extra["restore_write_to_effect"]),
            })
        kinds_out[kind] = entry

    print(f"\nserver: {args.server} ({'child process: `python -m api.cli serve`' if args.server == 'process' else 'uvicorn thread in this process'}), "  # noqa: E501
          f"{args.trials} trials per kind, round-robin")
    print(f"{'kind':<20} {'n':>3} {'median ms':>10} {'p95 ms':>8} {'max ms':>8} "
          f"{'polls max':>9}  {'restore med/max ms':>19}  < 1 s")
    for kind, e in kinds_out.items():
        s, rs = e["revoke"], e["restore"]
        print(f"{kind:<20} {s['n']:>3} {s['median_ms']:>10.1f} {s['p95_ms']:>8.1f} "
              f"{s['max_ms']:>8.1f} {e['polls_max']:>9}  "
              f"{rs['median_ms']:>8.1f} / {rs['max_ms']:>8.1f}  "
              f"{'yes' if e['under_1s'] else 'NO'}")
    idle, polling = summary(idle_request_s), summary(trial_request_s)
    print(f"search request (the polling resolution): idle median {idle['median_ms']:.1f} ms "
          f"(p95 {idle['p95_ms']:.1f}); during trials median {polling['median_ms']:.1f} ms, "
          f"max {polling['max_ms']:.1f} ms")
    if "acl_override_cli" in kinds_out:
        e = kinds_out["acl_override_cli"]
        print(f"CLI `acl set` wall time: median {e['cli_acl_set_wall']['median_ms']:.0f} ms, max "
              f"{e['cli_acl_set_wall']['max_ms']:.0f} ms; its write (file mtime) to effect: "
              f"median {e['write_to_effect']['median_ms']:.1f} ms, max "
              f"{e['write_to_effect']['max_ms']:.1f} ms; launch to effect: median "
              f"{e['cli_acl_set_wall']['median_ms'] + e['revoke']['median_ms']:.0f} ms")
    for kind, e in kinds_out.items():
        print(f"{kind}: the change itself took median {e['change_itself']['median_ms']:.2f} ms")

    passed = all(kinds_out[k]["under_1s"] for k in ACCEPTANCE_KINDS if k in kinds_out)
    record = {
        "benchmark": "bench/revocation.py",
        "when": datetime.now(UTC).isoformat(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "git": git_state(),
        "server": args.server,
        "server_how": ("child process: python -m api.cli --config CFG serve"
                       if args.server == "process"
                       else "uvicorn thread in the bench process (tests.conftest.LiveServer)"),
        "user": USER, "document": DOC, "query": QUERY, "top_k": TOP_K,
        "trials": args.trials,
        "acceptance": f"group removal and document ACL change: max over {args.trials} trials "
                      f"under {LIMIT_S:.0f} s",
        "passed": passed,
        "latency_definition": "change returned (os.replace / set() / CLI exit) to receipt of the "
                              "first search response without the document; back-to-back polls",
        "search_request_idle": idle,
        "search_request_during_trials": polling,
        "kinds": kinds_out,
        "index": {"version": report.version_id, "documents": report.documents,
                  "chunks": report.chunks},
        "runtime_s": round(time.perf_counter() - started_all, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(f"{'PASS' if passed else 'FAIL'}: max revocation latency under {LIMIT_S:.0f} s for "
          f"every kind; wrote {args.out} ({record['runtime_s']} s)")
    return 0 if passed else 1



if __name__ == "__main__":
    sys.exit(main())
