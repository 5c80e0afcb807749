"""The leak suite's identity mode, run on a deployment the key mode has just checked (its
index is reused; only who the callers are and where memberships live differ): every caller
sends an OIDC access token, and some users' memberships are in their token's groups claim
instead of the policy (tests/leak/memberships.py). Checked as the key mode is, against the same
oracle: exhaustive agreement and random pairs; and on record, every answer names the issuer
and exactly the groups the token claimed."""

from __future__ import annotations

import random
import time
import unicodedata
from dataclasses import dataclass, field

from tests.leak.deploy import LeakDeployment
from tests.leak.harness import Caller, Checker, Tally, disagreements, make_pairs
from tests.leak.memberships import TokenClaims
from tests.leak.oracle import Oracle
from tests.leak.world import World


@dataclass
class IdentityRun:
    tally: Tally
    carried_users: int
    carried_lines: int
    policy_version: str = ""
    disagreed: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # the policy and the audit records
    elapsed: float = 0.0


def _nfc(value: str) -> str:
    return unicodedata.normalize("NFC", value)


def run_token_mode(deployed: LeakDeployment, claims: TokenClaims, world: World, oracle: Oracle,
                   rng: random.Random, pairs: int) -> IdentityRun:
    started = time.perf_counter()
    placement = claims.placement
    carried = {(m.member, _nfc(m.group), m.tenant) for ms in placement.carried.values()
               for m in ms}
    run = IdentityRun(Tally(f"{deployed.backend}, oidc tokens"), len(placement.carried),
                      len(carried))
    deployed.set_policy_text(placement.policy_text(world))
    policy = deployed.services.policy
    run.policy_version = policy.version  # the policy without the carried lines, in force now
    if policy.last_error:
        run.problems.append(f"the policy without the carried memberships: {policy.last_error}")
    still = [m for m in policy.policy.memberships if (m.member, m.group, m.tenant) in carried]
    if still:
        run.problems.append(f"{len(still)} carried memberships are still in the policy")

    caller = Caller(deployed, Checker(world, oracle, run.tally), bearer=claims.bearer)
    try:
        run.disagreed = disagreements(caller, world, oracle)
        results = list(caller.run(make_pairs(world, oracle, rng, pairs)))
    finally:
        caller.close()

    records = {r["request_id"]: r for r in deployed.audit_records()
               if r.get("action") in ("search", "chat") and r.get("outcome") != "refused"}
    for pair, data in results:
        if data is None:
            continue
        record = records.get(str(data["request_id"]))
        if record is None:
            run.problems.append(f"no audit record for {data['request_id']}")
            continue
        expected = claims.expected_claimed(pair.user)
        if (record.get("via"), set(record.get("claimed_groups", ()))) != (claims.via, expected):
            run.problems.append(f"audit {record['request_id']} ({pair.user}): via "
                                f"{record.get('via')!r}, claimed {record.get('claimed_groups')}"
                                f", expected {sorted(expected)}")
        if record.get("policy_version") != run.policy_version:
            run.problems.append(f"audit {record['request_id']}: policy version "
                                f"{record.get('policy_version')}, not {run.policy_version}")
    run.elapsed = time.perf_counter() - started
    return run
