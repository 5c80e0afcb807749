"""Principals from Casbin: nested groups, reloads, and a broken file that opens nothing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from control.policy_store import policy_document
from policies import DEFAULT_MODEL
from policies.enforcer import PolicyEngine, PolicyError

POLICY = """\
p, role:admin, *, *
g, group:platform, group:engineering
g, group:engineering, group:staff
g, user:bob, group:platform
g, user:root, role:admin
"""


def _engine(tmp_path: Path, text: str = POLICY) -> tuple[PolicyEngine, Path]:
    policy = tmp_path / "policy.csv"
    policy.write_text(text)
    return PolicyEngine(DEFAULT_MODEL, policy_document(policy)), policy


def _rewrite(path: Path, text: str) -> None:
    path.write_text(text)
    stat = path.stat()  # make sure the change is seen even within one mtime tick
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))


def test_principals_follow_nested_groups(tmp_path: Path):
    engine, _ = _engine(tmp_path)
    assert engine.principals_for("bob") == {
        "user:bob", "group:platform", "group:engineering", "group:staff"}
    assert engine.principals_for("nobody") == {"user:nobody"}


def test_admin_actions_follow_roles(tmp_path: Path):
    engine, _ = _engine(tmp_path)
    assert engine.allows("root", "index", "rollback")
    assert not engine.allows("bob", "index", "rollback")


def test_an_edited_policy_applies_to_the_next_call(tmp_path: Path):
    engine, policy = _engine(tmp_path)
    before = engine.version
    _rewrite(policy, POLICY.replace("g, user:bob, group:platform\n", ""))
    assert engine.principals_for("bob") == {"user:bob"}
    assert engine.version != before


def test_a_broken_policy_keeps_the_last_good_one(tmp_path: Path):
    engine, policy = _engine(tmp_path)
    version = engine.version
    _rewrite(policy, POLICY + "g, bob-without-prefix, group:staff\n")
    assert engine.principals_for("bob") == {
        "user:bob", "group:platform", "group:engineering", "group:staff"}
    assert engine.version == version


def test_a_policy_that_never_loaded_refuses_to_start(tmp_path: Path):
    with pytest.raises(PolicyError, match=r"policy.csv:1: 'alice' is not a principal"):
        _engine(tmp_path, "g, alice, group:hr\n")
    with pytest.raises(PolicyError, match="cannot be read: there is none"):
        PolicyEngine(DEFAULT_MODEL, policy_document(tmp_path / "missing.csv"))
