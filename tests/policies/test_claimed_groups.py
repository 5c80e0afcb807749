"""Groups an access token claims, held for one call as if the policy had the memberships:
what they nest into, in their tenant, with the denials on them; the policy is not changed."""

from __future__ import annotations

from pathlib import Path

import pytest

from control.policy_store import policy_document
from policies import DEFAULT_MODEL
from policies.enforcer import PolicyEngine
from retrieval.scope import scope_for

POLICY = """\
p, role:admin, *, *
p, group:temps, source:hr, read, deny
p, group:interns, doc:wiki:ops/*, read, deny, acme
g, group:platform, group:engineering
g, group:engineering, group:staff
g, group:temps, group:staff
g, group:ops, group:staff, acme
g, group:sec, role:auditor
g, user:bob, group:platform
"""


@pytest.fixture
def engine(tmp_path: Path) -> PolicyEngine:
    path = tmp_path / "policy.csv"
    path.write_text(POLICY, encoding="utf-8")
    return PolicyEngine(DEFAULT_MODEL, policy_document(path))


def test_a_claimed_group_brings_what_the_policy_nests_it_in(engine: PolicyEngine):
    zoe = engine.subject("zoe", claimed=("group:platform", "group:sec"))
    assert zoe.tokens == {"user:zoe", "group:platform", "group:engineering", "group:staff",
                          "group:sec", "role:auditor"}
    assert zoe.denials == ()
    # For that call only: the policy knows nothing of it afterwards.
    assert engine.subject("zoe").tokens == {"user:zoe"}
    assert not engine.knows("zoe")


def test_claimed_groups_join_the_policys_memberships(engine: PolicyEngine):
    bob = engine.subject("bob", claimed=("group:sec",))
    assert {"group:platform", "group:staff", "group:sec", "role:auditor"} <= bob.tokens


def test_a_claimed_group_is_held_in_its_tenant_only(engine: PolicyEngine):
    zoe = engine.subject("zoe", claimed=("acme/group:ops",))
    # acme only: no default-tenant principal at all, as with a policy membership in acme.
    assert zoe.by_tenant == {"acme": frozenset({"user:zoe", "group:ops", "group:staff"})}
    assert zoe.tokens == {"acme/user:zoe", "acme/group:ops", "acme/group:staff"}
    both = engine.subject("zoe", claimed=("acme/group:ops", "group:ops"))
    assert both.by_tenant["default"] == {"user:zoe", "group:ops"}  # default's ops nests nowhere


def test_denials_on_a_claimed_group_apply(engine: PolicyEngine):
    temp = engine.subject("tim", claimed=("group:temps",))
    assert [d.pattern for d in temp.denials] == ["source:hr"]
    scope = scope_for(engine, "tim", claimed=("group:temps",))
    assert scope.denied == ("source:hr",) and scope.claimed == ("group:temps",)
    # The acme-only deny follows the tenant the group is claimed in.
    assert engine.subject("ivy", claimed=("group:interns",)).denials == ()
    assert [d.pattern for d in engine.subject("ivy", claimed=("acme/group:interns",)).denials
            ] == ["doc:wiki:ops/*"]


def test_a_claim_never_yields_a_user_or_a_malformed_principal(engine: PolicyEngine):
    mallory = engine.subject("mallory", claimed=("user:bob", "acme/user:bob", "group:bad name",
                                                 "Acme/group:ops", "group:", "nonsense"))
    assert mallory.tokens == {"user:mallory"}


def test_claimed_names_are_compared_in_nfc(engine: PolicyEngine, tmp_path: Path):
    path = tmp_path / "nfc.csv"
    path.write_text("g, group:caf\u00e9, group:staff\n", encoding="utf-8")
    nfc = PolicyEngine(DEFAULT_MODEL, policy_document(path))
    assert "group:staff" in nfc.subject("ana", claimed=("group:cafe\u0301",)).tokens
