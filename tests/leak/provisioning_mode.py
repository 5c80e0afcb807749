"""The leak suite's provisioning mode, run on a deployment the key mode has just checked (its
index is reused): some users' memberships of the default tenant are left out of the policy and
provisioned through /scim/v2 instead (users, then groups with those users as members, with a
provisioning key), then the same oracle checks what each caller gets: over HTTP with API keys
(exhaustive agreement and random pairs, alternating between the replicas) and through the MCP
server's `search` and `fetch` tools with the official SDK client. On record, every answer
carries the policy version that includes the provisioned memberships."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import httpx2
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from application.services import open_keys
from tests.leak.deploy import LeakDeployment
from tests.leak.harness import Caller, Checker, Pair, Tally, disagreements, make_pairs
from tests.leak.memberships import Placement
from tests.leak.oracle import Oracle
from tests.leak.world import DEFAULT, Membership, World, nfc

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"


@dataclass
class ProvisioningRun:
    http: Tally
    mcp: Tally
    users: int = 0
    groups: int = 0
    memberships: int = 0
    fetches: int = 0
    policy_version: str = ""
    disagreed: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    elapsed: float = 0.0


def scim_placement(world: World, placement: Placement) -> Placement:
    """Of a placement's carried memberships, those SCIM can provision: users in groups of the
    default tenant (SCIM here provisions one tenant, and groups, not roles). A userName is
    unique whatever its case (RFC 7643: caseExact false), so of two users whose names differ
    only in case (Dana, dana) the second keeps its memberships in the policy file: SCIM
    refuses it with 409 uniqueness."""
    carried: dict[str, tuple[Membership, ...]] = {}
    for user, ms in sorted(placement.carried.items()):
        kept = tuple(m for m in ms if m.tenant == DEFAULT and m.group.startswith("group:"))
        if kept and user.casefold() not in {u.casefold() for u in carried}:
            carried[user] = kept
    return Placement("scim", carried)


def _provision(deployed: LeakDeployment, placement: Placement, run: ProvisioningRun) -> None:
    key = open_keys(deployed.settings).create("leak-idp", kind="provisioning", scope="query")
    members: dict[str, list[str]] = {}
    with httpx.Client(base_url=deployed.urls[-1] + "/scim/v2", timeout=60, headers={
            "Authorization": f"Bearer {key}", "Content-Type": "application/scim+json"}) as scim:
        for user, memberships in sorted(placement.carried.items()):
            created = scim.post("/Users", json={"schemas": [USER_SCHEMA], "userName": user})
            if created.status_code != 201:
                run.problems.append(f"SCIM user {user}: {created.status_code} {created.text}")
                continue
            run.users += 1
            for m in memberships:
                members.setdefault(nfc(m.group), []).append(created.json()["id"])
        for group, ids in sorted(members.items()):
            created = scim.post("/Groups", json={
                "schemas": [GROUP_SCHEMA], "displayName": group.removeprefix("group:"),
                "members": [{"value": i} for i in dict.fromkeys(ids)]})
            if created.status_code != 201:
                run.problems.append(f"SCIM group {group}: {created.status_code} {created.text}")
                continue
            run.groups += 1
            run.memberships += len(set(ids))


async def _mcp_user(url: str, key: str, calls: Sequence[tuple[str, dict[str, Any]]]
                    ) -> list[tuple[bool, str]]:
    """(is_error, the result as JSON text) of each tool call, in one session of the user."""
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"},
                                  timeout=60) as http, \
            streamable_http_client(url + "/mcp", http_client=http) as streams, \
            ClientSession(streams[0], streams[1]) as session:
        await session.initialize()
        out = []
        for name, arguments in calls:
            result = await session.call_tool(name, arguments)
            text = json.dumps(result.structured_content) if result.structured_content else \
                " ".join(getattr(c, "text", "") for c in result.content)
            out.append((bool(result.is_error), text))
        return out


def _check_over_mcp(deployed: LeakDeployment, world: World, oracle: Oracle,
                    rng: random.Random, pairs: list[Pair], run: ProvisioningRun) -> None:
    """Search pairs through the `search` tool, and `fetch` of a document each user may read
    and one they may not, each result checked as the HTTP ones are."""
    checker = Checker(world, oracle, run.mcp)
    by_user: dict[str, list[tuple[str, dict[str, Any], Pair]]] = {}
    for pair in pairs:
        by_user.setdefault(pair.user, []).append(
            ("search", {"query": pair.query, "top_k": pair.top_k}, pair))
    for user in world.users:
        readable = sorted(oracle.readable(user))
        unreadable = sorted(d.doc_id for d in world.docs if d.doc_id not in readable)
        for doc_id in rng.sample(readable, min(1, len(readable))):
            by_user.setdefault(user, []).append(
                ("fetch", {"doc_id": doc_id}, Pair(user, "search", doc_id, 1, "fetch:readable")))
        for doc_id in rng.sample(unreadable, min(1, len(unreadable))):
            by_user.setdefault(user, []).append(
                ("fetch", {"doc_id": doc_id}, Pair(user, "search", doc_id, 1,
                                                   "fetch:unreadable")))

    async def everyone() -> list[list[tuple[bool, str]]]:
        return await asyncio.gather(*(
            _mcp_user(deployed.urls[i % len(deployed.urls)], deployed.keys[user],
                      [(name, args) for name, args, _ in calls])
            for i, (user, calls) in enumerate(sorted(by_user.items()))))

    for (user, calls), results in zip(sorted(by_user.items()), asyncio.run(everyone()),
                                      strict=True):
        for (name, _, pair), (is_error, text) in zip(calls, results, strict=True):
            if name == "search":
                if is_error:
                    run.mcp.errors.append(f"[mcp] {user} search {pair.query!r}: {text[:200]}")
                else:
                    checker.check(pair, 200, text)
                continue
            run.fetches += 1
            if pair.kind == "fetch:readable" and is_error:
                run.mcp.errors.append(f"[mcp] {user} cannot fetch readable {pair.query}: "
                                      f"{text[:200]}")
                continue
            if is_error:  # refused like an unknown document: checked as an empty result
                checker.check(pair, 200, json.dumps({"results": []}))
                if "that you can read" not in text:
                    run.mcp.errors.append(f"[mcp] {user} fetch {pair.query}: {text[:200]}")
                continue
            data = json.loads(text)
            checker.check(pair, 200, json.dumps({"results": [
                {"doc_id": data["doc_id"], "source": data["source"], "text": data["text"]}]}))


def run_provisioning_mode(deployed: LeakDeployment, placement: Placement, world: World,
                          oracle: Oracle, rng: random.Random, pairs: int) -> ProvisioningRun:
    started = time.perf_counter()
    run = ProvisioningRun(Tally(f"{deployed.backend}, scim groups"),
                          Tally(f"{deployed.backend}, scim groups, mcp"))
    deployed.set_policy_text(placement.policy_text(world))
    _provision(deployed, placement, run)
    policy = deployed.services.policy
    run.policy_version = policy.version
    provisioned = {(m.member, m.group) for m in policy.policy.memberships}
    expected = {(m.member, nfc(m.group)) for ms in placement.carried.values() for m in ms}
    if missing := expected - provisioned:
        run.problems.append(f"{len(missing)} provisioned memberships are not in force: "
                            f"{sorted(missing)[:5]}")

    caller = Caller(deployed, Checker(world, oracle, run.http))
    try:
        run.disagreed = disagreements(caller, world, oracle)
        results = list(caller.run(make_pairs(world, oracle, rng, pairs)))
    finally:
        caller.close()
    search_pairs = [p for p in make_pairs(world, oracle, rng, pairs)
                    if p.endpoint == "search"][: pairs * 2 // 3]
    _check_over_mcp(deployed, world, oracle, rng, search_pairs, run)

    records = {r["request_id"]: r for r in deployed.audit_records()
               if r.get("action") in ("search", "chat") and r.get("outcome") != "refused"}
    for _, data in results:
        if data is None:
            continue
        record = records.get(str(data["request_id"]))
        if record is None or record.get("policy_version") != run.policy_version:
            run.problems.append(f"audit {data['request_id']}: policy version "
                                f"{record and record.get('policy_version')}, not "
                                f"{run.policy_version}")
    run.elapsed = time.perf_counter() - started
    return run
