"""The randomized leak suite: random callers ask random questions over HTTP, on both store
backends, and every returned chunk, citation and snippet is checked against an oracle that
computes access from the generated world (tests/leak/oracle.py), independently of Casbin and of
the store. Every document carries a unique canary string, so a leak shows up even where a
response does not name the document it came from.

Per backend: an exhaustive agreement check (one top_k=50 search per user: the server must
return exactly what the oracle says the user may read), >= 1,000 (caller, query) pairs split
across /v1/search and /v1/chat, a stretch of them with a broken policy file in place (the last
good policy must stay in force, and the audit records must keep its version), and a recall
check (a readable document's canary finds that document), so the suite also fails when the
service hides what it should show.

On IDENTITY_BACKEND, then, the identity mode (tests/leak/identity_mode.py), on the same index:
every caller with an OIDC access token instead of an API key, and some users' memberships in
their token's groups claim instead of the policy; the same oracle, 0 leaks. On
PROVISIONING_BACKEND (two replicas over PostgreSQL), the provisioning mode
(tests/leak/provisioning_mode.py): some users' memberships provisioned through /scim/v2
instead of the policy, checked over HTTP and through the MCP server's tools.

CLEARANCE_LEAK_SEED and CLEARANCE_LEAK_PAIRS change the seed and the pair count per backend;
CLEARANCE_LEAK_TOKEN_PAIRS the identity mode's pair count, CLEARANCE_LEAK_SCIM_PAIRS the
provisioning mode's.
"""

from __future__ import annotations

import itertools
import os
import random
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from retrieval.embedder import Embedder
from tests.identity.signing_idp import SigningIdp
from tests.leak.deploy import BACKENDS, serve_world
from tests.leak.harness import (
    Caller,
    Checker,
    Pair,
    Tally,
    disagreements,
    make_pairs,
    request_ids,
)
from tests.leak.identity_mode import IdentityRun, run_token_mode
from tests.leak.memberships import TokenClaims, place
from tests.leak.oracle import Oracle
from tests.leak.provisioning_mode import (
    ProvisioningRun,
    run_provisioning_mode,
    scim_placement,
)
from tests.leak.world import World, generate

pytestmark = pytest.mark.e2e

SEED = int(os.environ.get("CLEARANCE_LEAK_SEED", "20260501"))
PAIRS_PER_BACKEND = int(os.environ.get("CLEARANCE_LEAK_PAIRS", "1000"))
TOKEN_PAIRS = int(os.environ.get("CLEARANCE_LEAK_TOKEN_PAIRS", "400"))
IDENTITY_BACKEND = "edge"  # the one deployment that also runs the identity mode
PROVISIONING_BACKEND = "edge-postgres"  # the one that also runs the provisioning mode (SCIM)
PROVISIONING_PAIRS = int(os.environ.get("CLEARANCE_LEAK_SCIM_PAIRS", "150"))
RECALL_FLOOR = 0.8

# --- the suite ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def world() -> World:
    return generate(SEED)


@pytest.fixture(scope="module")
def oracle(world: World) -> Oracle:
    return Oracle(world)


@pytest.fixture(scope="module")
def token_claims(world: World) -> Iterator[TokenClaims]:
    """The stand-in issuer the identity mode's deployment trusts, and the tokens' claims."""
    with SigningIdp() as idp:
        idp.add_key("k1")
        yield TokenClaims(place(world, "token"), idp)


@pytest.mark.parametrize("backend", BACKENDS)
def test_no_leaks_over_http(
    backend: str,
    world: World,
    oracle: Oracle,
    embedder: Embedder,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    request: pytest.FixtureRequest,
) -> None:
    started = time.perf_counter()
    tally = Tally(backend)
    checker = Checker(world, oracle, tally)
    rng = random.Random(f"{SEED}/{backend}")
    pairs = make_pairs(world, oracle, rng, PAIRS_PER_BACKEND)
    first, broken, last = (pairs[: len(pairs) // 2], pairs[len(pairs) // 2: 3 * len(pairs) // 4],
                           pairs[3 * len(pairs) // 4:])

    marks = [("start", time.perf_counter())]
    database_url = request.getfixturevalue("database_url") if "postgres" in backend else None
    claims: TokenClaims | None = (request.getfixturevalue("token_claims")
                                  if backend == IDENTITY_BACKEND else None)
    identity: IdentityRun | None = None
    provisioning: ProvisioningRun | None = None
    with serve_world(world, backend, tmp_path, embedder, database_url,
                     claims.issuer_config() if claims else "") as deployed:
        marks.append(("deploy", time.perf_counter()))
        report = deployed.report
        indexed = {d.doc_id for d in world.docs if oracle.indexed(d)}
        assert {p.doc_id for p in report.no_acl} == {d.doc_id for d in world.docs} - indexed
        assert not report.errors
        # One chunk per document: a result's text must then carry its own document's canary.
        assert report.documents == report.chunks == len(indexed)
        caller = Caller(deployed, checker)
        request.addfinalizer(caller.close)
        policy = deployed.services.policy
        good_version = policy.version

        # 1. Agreement, both ways: each user gets exactly what the oracle says they may read.
        disagreed = disagreements(caller, world, oracle)

        marks.append(("exhaustive", time.perf_counter()))
        # 2. Random pairs under the good policy.
        list(caller.run(first))
        marks.append(("first", time.perf_counter()))

        # 3. A policy that does not parse: the last good policy stays in force.
        good_text = world.policy_text()
        deployed.set_policy_text(world.broken_policy_text())
        broken_results = list(caller.run(broken))
        broken_error, broken_version = policy.last_error, policy.version
        broken_ids = request_ids(broken_results)
        marks.append(("broken", time.perf_counter()))

        # 4. The good policy back: the same policy (and version) again.
        deployed.set_policy_text(good_text)
        last_results = list(caller.run(last))
        restored_error, restored_version = policy.last_error, policy.version
        last_ids = request_ids(last_results)
        marks.append(("last", time.perf_counter()))

        # 5. Recall: a readable document's canary finds it in the top 10.
        recall_pairs = []
        for user in world.users:
            readable = sorted(oracle.readable(user))
            for doc_id in rng.sample(readable, min(2, len(readable))):
                recall_pairs.append(Pair(user, "search", world.doc(doc_id).canary, 10,
                                         f"recall:{doc_id}"))
        found = 0
        for pair, data in caller.run(recall_pairs):
            if data is not None and pair.kind.removeprefix("recall:") in {
                r["doc_id"] for r in data["results"]
            }:
                found += 1
        recall = found / len(recall_pairs)
        marks.append(("recall", time.perf_counter()))

        # 6. The identity mode, on this index: access tokens, memberships partly in them.
        if claims is not None:
            identity = run_token_mode(deployed, claims, world, oracle,
                                      random.Random(f"{SEED}/{backend}/token"), TOKEN_PAIRS)
            marks.append(("oidc", time.perf_counter()))

        # 7. The provisioning mode, on this index: memberships through SCIM; HTTP and MCP.
        if backend == PROVISIONING_BACKEND:
            provisioning = run_provisioning_mode(
                deployed, scim_placement(world, place(world, "token")), world, oracle,
                random.Random(f"{SEED}/{backend}/scim"), PROVISIONING_PAIRS)
            marks.append(("scim+mcp", time.perf_counter()))

        records = deployed.audit_records()

    # The audit log: every answered query kept the good policy's version, and what it says
    # was returned is readable too.
    answered = [r for r in records if r.get("action") in ("search", "chat")
                and r.get("outcome") != "refused"]
    versions_broken = {r["policy_version"] for r in answered if r["request_id"] in broken_ids}
    versions_last = {r["policy_version"] for r in answered if r["request_id"] in last_ids}
    audit_leaks = [
        f"audit {r['request_id']}: {res['doc_id']} for {r['caller']}"
        for r in answered
        for res in r.get("results", [])
        if res["doc_id"] not in oracle.readable(str(r["caller"]).removeprefix("user:"))
    ]
    dropped = sum(int(r.get("dropped", 0)) for r in answered)

    elapsed = time.perf_counter() - started
    with capsys.disabled():
        print(f"\nleak suite [{backend}]: {tally.pairs} pairs checked, {len(tally.leaks)} leaks")
        print(f"  seed {SEED}; {dict(tally.by_endpoint)}; {tally.returned} results/citations "
              f"checked; {len(broken)} pairs under a broken policy file; canary recall "
              f"{found}/{len(recall_pairs)}; {dropped} hit(s) dropped by the re-check; "
              f"{elapsed:.1f} s (" + ", ".join(
                  f"{name} {t - prev:.1f}" for (_, prev), (name, t) in itertools.pairwise(marks)
              ) + ")")
        if identity is not None:
            _print_identity(identity)
        if provisioning is not None:
            _print_provisioning(provisioning)

    assert not tally.errors, f"{len(tally.errors)} failed requests:\n" + "\n".join(
        tally.errors[:20])
    assert not tally.leaks, f"{len(tally.leaks)} leaks:\n" + "\n".join(tally.leaks[:50])
    assert not audit_leaks, "\n".join(audit_leaks[:50])
    assert not disagreed, "server and oracle disagree:\n" + "\n".join(disagreed)
    assert broken_error is not None, "the broken policy file went unnoticed"
    assert restored_error is None, restored_error
    assert broken_version == restored_version == good_version
    assert len(broken_ids) == len(broken) and len(last_ids) == len(last)
    assert versions_broken == {good_version}, versions_broken
    assert versions_last == {good_version}, versions_last
    assert recall >= RECALL_FLOOR, f"canary recall {found}/{len(recall_pairs)}"
    assert tally.pairs >= PAIRS_PER_BACKEND  # 1,000 by default: >= 2,000 over both backends
    assert min(tally.by_endpoint["search"], tally.by_endpoint["chat"]) >= 0.3 * PAIRS_PER_BACKEND
    if identity is not None:
        _check_identity(identity)
    if provisioning is not None:
        _check_provisioning(provisioning)


def _print_identity(run: IdentityRun) -> None:
    t = run.tally
    print(f"leak suite [{t.backend}]: {t.pairs} pairs checked, {len(t.leaks)} leaks")
    print(f"  every caller by access token; the memberships of {run.carried_users} users "
          f"({run.carried_lines} lines) in their tokens' groups claim, the rest in the policy "
          f"{run.policy_version}; {dict(t.by_endpoint)}; {t.returned} results/citations "
          f"checked; {run.elapsed:.1f} s")


def _check_identity(run: IdentityRun) -> None:
    t = run.tally
    assert not t.errors, f"{len(t.errors)} failed requests:\n" + "\n".join(t.errors[:20])
    assert not t.leaks, f"{len(t.leaks)} leaks:\n" + "\n".join(t.leaks[:50])
    assert not run.disagreed, "server and oracle disagree:\n" + "\n".join(run.disagreed)
    assert not run.problems, "\n".join(run.problems[:20])
    assert run.carried_users >= 10 and t.pairs >= TOKEN_PAIRS


def _print_provisioning(run: ProvisioningRun) -> None:
    for t in (run.http, run.mcp):
        print(f"leak suite [{t.backend}]: {t.pairs} pairs checked, {len(t.leaks)} leaks")
    print(f"  {run.users} users and {run.groups} groups provisioned through /scim/v2 "
          f"({run.memberships} memberships, out of the policy file), policy "
          f"{run.policy_version}; over HTTP {dict(run.http.by_endpoint)}, through MCP "
          f"{run.mcp.pairs - run.fetches} searches and {run.fetches} fetches; "
          f"{run.http.returned + run.mcp.returned} results checked; {run.elapsed:.1f} s")


def _check_provisioning(run: ProvisioningRun) -> None:
    assert not run.problems, "\n".join(run.problems[:20])
    for t in (run.http, run.mcp):
        assert not t.errors, f"{len(t.errors)} failed requests:\n" + "\n".join(t.errors[:20])
        assert not t.leaks, f"{len(t.leaks)} leaks:\n" + "\n".join(t.leaks[:50])
    assert not run.disagreed, "server and oracle disagree:\n" + "\n".join(run.disagreed)
    assert run.users >= 10 and run.memberships >= 10 and run.fetches >= 40
    assert run.http.pairs >= PROVISIONING_PAIRS and run.mcp.pairs >= PROVISIONING_PAIRS // 2
    assert run.mcp.by_kind.get("fetch:readable", 0) >= 20
