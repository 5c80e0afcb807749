"""The oracle's own checks: on the edge cases, it says what the documented rules say.

No server here: these pin the oracle (and the generated world) down, so that the HTTP suite's
"0 leaks" and its exhaustive agreement check mean what they claim. Several seeds, since the
world is random around a fixed structure.
"""

from __future__ import annotations

import csv
import io
import unicodedata

import pytest

from tests.leak.oracle import Oracle, wildcard
from tests.leak.world import (
    BULK_GROUPS,
    CAFE,
    DEFAULT,
    FINANCE_LIGATURE,
    FINANCE_UPPER,
    NAIVE,
    TOPIC_QUESTIONS,
    TOPICS,
    World,
    generate,
    nfd,
)

SEEDS = (20260501, 1, 77)


@pytest.fixture(scope="module", params=SEEDS)
def world(request: pytest.FixtureRequest) -> World:
    return generate(request.param)


@pytest.fixture(scope="module")
def oracle(world: World) -> Oracle:
    return Oracle(world)


def _docs(world: World, oracle: Oracle, prefix: str) -> set[str]:
    """Indexed, unquarantined documents whose id starts with `prefix`."""
    return {d.doc_id for d in world.docs if d.doc_id.startswith(prefix) and oracle.indexed(d)
            and not oracle.quarantined(d)}


def test_world_is_big_enough_and_canaries_are_unique(world: World, oracle: Oracle) -> None:
    assert 100 <= len(world.docs) <= 150
    assert 35 <= len(world.users) <= 45
    canaries = [d.canary for d in world.docs] + [p.canary for p in world.planted]
    assert len(set(canaries)) == len(canaries)
    assert len({c.split("-")[1] for c in canaries}) == len(canaries)
    for doc in world.docs:
        assert doc.text.count(doc.canary) == 2  # title and first sentence
        assert doc.text.count("CANARY-") == 2
    not_indexed = [d for d in world.docs if not oracle.indexed(d)]
    assert len(not_indexed) >= 8  # files that match no rule
    assert {t for t in (s.tenant for s in world.sources)} == {DEFAULT, "acme", "globex"}
    two = [u for u in world.users if len(oracle.tenants(u)) == 2]
    assert len(two) >= 2


def test_a_user_without_groups_holds_only_themself(world: World, oracle: Oracle) -> None:
    assert oracle.tenants("nogroups") == [DEFAULT]
    assert oracle.held("nogroups") == {DEFAULT: frozenset({"user:nogroups"})}
    readable = oracle.readable("nogroups")
    assert _docs(world, oracle, "handbook:personal/nogroups-") <= readable
    # what they read, they read as user:nogroups (a rule, a random extra, or an override)
    assert all("user:nogroups" in oracle.acl_now(world.doc(d)) for d in readable)


def test_a_user_in_a_thousand_groups(world: World, oracle: Oracle) -> None:
    held = oracle.held("hoarder")[DEFAULT]
    assert sum(p.startswith("group:bulk-") for p in held) == BULK_GROUPS
    # bulk-0500 nests into engineering, which nests into staff
    assert {"group:engineering", "group:staff"} <= held
    readable = oracle.readable("hoarder")
    assert _docs(world, oracle, "handbook:bulk/") <= readable
    assert not readable & _docs(world, oracle, "handbook:eng/platform/")  # user deny
    assert not readable & _docs(world, oracle, "ledger:reports")  # deny via bulk-0777


def test_case_makes_different_principals(world: World, oracle: Oracle) -> None:
    lower, upper = oracle.held("dana")[DEFAULT], oracle.held("Dana")[DEFAULT]
    assert "group:finance" in lower and FINANCE_UPPER not in lower
    assert FINANCE_UPPER in upper and "group:finance" not in upper
    assert "user:dana" not in upper
    personal = _docs(world, oracle, "handbook:personal/dana-")
    assert personal and personal <= oracle.readable("dana")
    assert not personal & oracle.readable("Dana")
    # `p, user:Dana, doc:handbook:general/*, read, deny` takes nothing from dana
    general = _docs(world, oracle, "handbook:general/")
    assert not general & oracle.readable("Dana")
    assert general - {d for d in general if oracle.denied("dana", world.doc(d))} <= \
        oracle.readable("dana")
    # a user named like a group is not the group
    assert oracle.readable("staff") == _docs(world, oracle, "handbook:personal/staff-") | {
        d for d in _docs(world, oracle, "handbook:general/")
        if "user:staff" in (oracle.rule_acl(world.doc(d)) or ())}


def test_unicode_normal_forms_are_one_principal(world: World, oracle: Oracle) -> None:
    policy = world.policy_text()
    assert nfd(CAFE) in policy and nfd(CAFE) != CAFE  # cami's membership is written NFD
    assert any(nfd(NAIVE) in r.allow for s in world.sources for r in s.rules)  # ACL in NFD
    assert CAFE in oracle.held("cami")[DEFAULT]
    cafe = _docs(world, oracle, "handbook:cafe/")
    assert oracle.readable("cami") & cafe == {d for d in cafe if not d.endswith("-2.md")}
    assert _docs(world, oracle, "handbook:naive/") <= oracle.readable("nils")
    # ... but a compatibility character is not folded: ﬁnance is not finance
    assert FINANCE_LIGATURE in oracle.held("fiona")[DEFAULT]
    assert "group:finance" not in oracle.held("fiona")[DEFAULT]
    assert unicodedata.normalize("NFKC", FINANCE_LIGATURE) == "group:finance"
    assert not oracle.readable("fiona") & _docs(world, oracle, "ledger:reports/")


def test_tenants_keep_same_named_groups_apart(world: World, oracle: Oracle) -> None:
    assert oracle.tenants("morgan") == ["acme", "globex"]
    readable = oracle.readable("morgan")
    default_sources = {s.name for s in world.sources if s.tenant == DEFAULT}
    assert not {d for d in readable if d.split(":")[0] in default_sources}
    assert {d for d in _docs(world, oracle, "acme-wiki:all/")
            if not oracle.denied("morgan", world.doc(d))} <= readable
    # `p, group:staff, source:handbook, read, deny, globex`: globex staff lose the handbook
    for user in world.users:
        if "group:staff" in oracle.held(user).get("globex", ()):
            assert not {d for d in oracle.readable(user) if d.startswith("handbook:")}


def test_deny_everything_and_depth(world: World, oracle: Oracle) -> None:
    assert oracle.readable("bo") == frozenset()
    assert {"group:sre", "group:platform", "group:engineering", "group:staff"} <= \
        oracle.held("deepa")[DEFAULT]
    assert _docs(world, oracle, "handbook:eng/platform/") <= oracle.readable("deepa")


def test_acl_less_quarantined_and_overridden_documents(world: World, oracle: Oracle) -> None:
    everyone = set().union(*(oracle.readable(u) for u in world.users))
    not_indexed = {d.doc_id for d in world.docs if not oracle.indexed(d)}
    assert not everyone & not_indexed
    assert not everyone & set(world.quarantined_docs)
    assert not {d for d in everyone if d.split(":")[0] in world.quarantined_sources}
    nobody = [d for d, acl in world.live_overrides.items() if not acl]
    assert nobody and not everyone & set(nobody)
    # an override on a file that was never indexed does not bring it in
    assert any(d in not_indexed for d in world.live_overrides)


def test_the_policy_file_parses_as_the_oracle_reads_it(world: World) -> None:
    """Count lines by kind in the written file (a plain CSV read, not our parser)."""
    rows = [next(csv.reader([line], skipinitialspace=True))
            for line in io.StringIO(world.policy_text()) if line.strip()
            and not line.lstrip().startswith("#")]
    kinds = [row[0].strip() for row in rows]
    assert kinds.count("g") == len(world.memberships)
    assert kinds.count("p") == len(world.denies) + len(world.admin_lines)
    broken = world.broken_policy_text()
    assert "deny" not in broken and "alice-without-prefix" in broken


@pytest.mark.parametrize(("pattern", "text", "expected"), [
    ("handbook:*-2.md", "handbook:cafe/x-2.md", True),
    ("handbook:*-2.md", "handbook:cafe/x-12.md", False),
    ("handbook:*-2.md", "handbook:cafe/x-2.txt", False),
    ("acme-*", "acme-wiki", True),
    ("acme-*", "acme", False),
    ("ledger:reports*", "ledger:reports-eu/a.md", True),
    ("a*b*c", "abc", True),
    ("a*b*c", "acb", False),
    ("x", "x", True),
    ("x", "xx", False),
    ("*", "", True),
])
def test_wildcard(pattern: str, text: str, expected: bool) -> None:
    assert wildcard(pattern, text) is expected


def test_every_topic_has_questions() -> None:
    assert set(TOPIC_QUESTIONS) == set(TOPICS)
