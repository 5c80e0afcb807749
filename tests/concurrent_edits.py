"""Concurrent CLI and API edits of the control plane, counting lost updates.

CLI workers are processes of their own (`python -m tests.concurrent_edits ...`), each running
real `clearance` commands (api.cli.main: settings loaded, stores opened, the change made and
audited) one after another; API workers are threads sending the same edits over HTTP to a
running `clearance serve`. Each round, every worker edits one kind of state (quarantine, pause,
ACL overrides, keys, policy, in turn), always a target only it edits:

- quarantine: its own document, added or released in turn;
- pause: CLI worker 0 owns "generation", API worker 0 "service" (the others edit overrides);
- ACL overrides: its own document, set to a new principal each time;
- keys: a key created for its own user;
- policy: a membership added for a new user of its own.

Before each edit the worker checks that its target still holds what its previous edit of that
kind left. Nobody else touches that target, so any difference is a lost update: another
writer's read-modify-write that started before this worker's change committed and overwrote
it. A final check after every worker is done counts the last edits too.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

KINDS = ("quarantine", "pause", "overrides", "keys", "policy")


@dataclass
class Tally:
    edits: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    lost: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def add(self, other: dict[str, Any]) -> None:
        for kind, n in other["edits"].items():
            self.edits[kind] += n
        self.lost += other["lost"]
        self.errors += other["errors"]


class Worker:
    """One worker's edits and checks; `edit(kind, args)` makes a change through its adapter,
    `state()` reads the shared state as it is now."""

    def __init__(self, side: str, index: int, docs: list[str], state: Callable[[], State],
                 edit: Callable[[str, dict[str, Any]], str | None]) -> None:
        self.side, self.index = side, index
        self.name = f"{side}{index}"
        self.doc = docs[(0 if side == "cli" else len(docs) // 2) + index]
        self.state = state
        self.edit = edit
        self.tally = Tally()
        self.quarantined = False
        self.paused = False
        self.acl: tuple[str, ...] | None = None
        self.keys = 0
        self.members = 0
        self.pause_target = ("generation" if side == "cli" else "service") if index == 0 else None

    def round(self, r: int) -> None:
        kind = KINDS[r % len(KINDS)]
        if kind == "pause" and self.pause_target is None:
            kind = "overrides"
        self.check(kind)
        if kind == "quarantine":
            args = {"doc": self.doc, "add": not self.quarantined}
        elif kind == "pause":
            args = {"target": self.pause_target, "pause": not self.paused}
        elif kind == "overrides":
            args = {"doc": self.doc, "allow": f"user:{self.name}-{r}"}
        elif kind == "keys":
            args = {"user": f"key-{self.name}"}
        else:
            args = {"line": f"g, user:member-{self.name}-{r}, group:staff"}
        error = self.edit(kind, args)
        if error is not None:
            self.tally.errors.append(f"{self.name} round {r} {kind}: {error}")
            return
        self.tally.edits[kind] += 1
        if kind == "quarantine":
            self.quarantined = not self.quarantined
        elif kind == "pause":
            self.paused = not self.paused
        elif kind == "overrides":
            self.acl = (str(args["allow"]),)
        elif kind == "keys":
            self.keys += 1
        else:
            self.members += 1

    def check(self, kind: str | None = None) -> None:
        """Count a lost update for each of this worker's targets that lost its last edit."""
        state = self.state()
        seen = {
            "quarantine": state.quarantined(self.doc) == self.quarantined,
            "pause": self.pause_target is None or state.paused(self.pause_target) == self.paused,
            "overrides": state.acl(self.doc) == self.acl,
            "keys": state.keys(f"key-{self.name}") == self.keys,
            "policy": state.members(f"user:member-{self.name}-") == self.members,
        }
        for what, ok in seen.items():
            if (kind is None or what == kind) and not ok:
                self.tally.lost.append(f"{self.name}: its last {what} edit is gone")


class State:
    """The shared state as the control plane holds it now, read through the real stores."""

    def __init__(self, config: Path) -> None:
        from application.services import (
            open_acl_overrides,
            open_keys,
            open_pause_switch,
            open_policy,
            open_quarantine,
        )
        from application.settings import load_settings

        settings = load_settings(config)
        self._q, self._p = open_quarantine(settings), open_pause_switch(settings)
        self._o, self._k = open_acl_overrides(settings), open_keys(settings)
        self._policy = open_policy(settings)

    def __call__(self) -> State:
        return self

    def quarantined(self, doc: str) -> bool:
        return doc in self._q.current().documents

    def paused(self, target: str) -> bool:
        return getattr(self._p.current(), target) is not None

    def acl(self, doc: str) -> tuple[str, ...] | None:
        return self._o.current()[1].get(doc)

    def keys(self, user: str) -> int:
        return self._k.active_keys(user)

    def members(self, prefix: str) -> int:
        return sum(1 for m in self._policy.policy.memberships if m.member.startswith(prefix))


def cli_edit(config: Path) -> Callable[[str, dict[str, Any]], str | None]:
    from api.cli import main

    def edit(kind: str, args: dict[str, Any]) -> str | None:
        if kind == "quarantine":
            argv = (["quarantine", "add", "--doc", args["doc"], "--reason", "edits"]
                    if args["add"] else ["quarantine", "release", "--doc", args["doc"]])
        elif kind == "pause":
            argv = (["pause", args["target"], "--reason", "edits"] if args["pause"]
                    else ["resume", args["target"]])
        elif kind == "overrides":
            argv = ["acl", "set", args["doc"], "--allow", args["allow"]]
        elif kind == "keys":
            argv = ["keys", "create", args["user"]]
        else:
            argv = ["policy", "add", args["line"]]
        code = main([*argv, "--config", str(config)])
        return None if code == 0 else f"`clearance {' '.join(argv)}` exited {code}"

    return edit


def api_edit(client: httpx.Client) -> Callable[[str, dict[str, Any]], str | None]:
    def edit(kind: str, args: dict[str, Any]) -> str | None:
        if kind == "quarantine":
            path = "/quarantine" if args["add"] else "/quarantine/release"
            body: dict[str, Any] = {"kind": "document", "target": args["doc"]}
            if args["add"]:
                body["reason"] = "edits"
            response = client.post(path, json=body)
        elif kind == "pause":
            response = client.post("/pause" if args["pause"] else "/resume",
                                   json={"target": args["target"]})
        elif kind == "overrides":
            response = client.put(f"/documents/{args['doc']}/acl",
                                  json={"allow": [args["allow"]]})
        elif kind == "keys":
            response = client.post("/keys", json={"user": args["user"]})
        else:
            response = client.post("/policy/changes", json={"add": [args["line"]]})
        if response.status_code in (200, 201):
            return None
        return f"HTTP {response.status_code}: {response.text[:200]}"

    return edit


def run_edits(config: Path, url: str, admin_key: str, docs: list[str], *, workers: int,
              rounds: int) -> tuple[Tally, float]:
    """`workers` CLI processes and `workers` API threads, `rounds` edits each, all at once;
    the tally of every worker and the wall time."""
    from tests.conftest import REPO

    state = State(config)
    clients = [httpx.Client(base_url=url + "/v1/admin", timeout=60,
                            headers={"Authorization": f"Bearer {admin_key}"})
               for _ in range(workers)]
    api_workers = [Worker("api", i, docs, state, api_edit(clients[i])) for i in range(workers)]
    started = time.monotonic()
    procs = [subprocess.Popen(
        [sys.executable, "-m", "tests.concurrent_edits", "--config", str(config),
         "--worker", str(i), "--rounds", str(rounds), "--docs", ",".join(docs)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(workers)]

    def drive(worker: Worker) -> None:
        for r in range(rounds):
            worker.round(r)

    threads = [threading.Thread(target=drive, args=(w,)) for w in api_workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for client in clients:
        client.close()
    tally = Tally()
    for proc in procs:
        out, err = proc.communicate(timeout=3600)
        if proc.returncode != 0:
            tally.errors.append(f"CLI worker exited {proc.returncode}: {err[-2000:]}")
            continue
        tally.add(json.loads(out.strip().splitlines()[-1]))
    elapsed = time.monotonic() - started
    for worker in api_workers:
        worker.check()  # the last edits, now that nobody edits any more
        tally.add({"edits": worker.tally.edits, "lost": worker.tally.lost,
                   "errors": worker.tally.errors})
    return tally, elapsed


def _cli_worker(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--worker", type=int, required=True)
    parser.add_argument("--rounds", type=int, required=True)
    parser.add_argument("--docs", required=True)
    args = parser.parse_args(argv)
    import logging

    logging.disable(logging.WARNING)
    worker = Worker("cli", args.worker, args.docs.split(","), State(args.config),
                    cli_edit(args.config))
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        for r in range(args.rounds):
            worker.round(r)
    # The final check happens once every worker is done: the parent's API workers may still
    # be editing, but never this worker's targets, so checking now is as good.
    worker.check()
    print(json.dumps({"edits": worker.tally.edits, "lost": worker.tally.lost,
                      "errors": worker.tally.errors}))
    return 0


if __name__ == "__main__":
    sys.exit(_cli_worker(sys.argv[1:]))
