"""Tenants, deny rules, name normalisation and policy edits, through the real Casbin model."""

from __future__ import annotations

import os
import unicodedata
from pathlib import Path

import pytest

from control.policy_store import policy_document
from policies import DEFAULT_MODEL
from policies.enforcer import PolicyEngine
from policies.policy_file import Membership, PolicyError, Rule, parse_policy
from policies.principals import split_token, token

POLICY = """\
# comment kept across edits
p, role:admin, *, *
p, user:bob, index, reindex, deny
p, group:contractors, source:finance, read, deny
p, group:hr, doc:hr:salary*, read, deny, acme
g, group:platform, group:engineering
g, group:engineering, group:staff
g, user:bob, group:platform
g, user:bob, role:admin
g, user:bob, group:contractors
g, user:root, role:admin
g, user:zed, group:hr, acme
g, user:zed, group:x, beta
g, group:x, group:hr, beta
"""


def _engine(tmp_path: Path, text: str = POLICY) -> PolicyEngine:
    path = tmp_path / "policy.csv"
    path.write_text(text, encoding="utf-8")
    return PolicyEngine(DEFAULT_MODEL, policy_document(path))


def test_tenants_keep_same_named_groups_apart(tmp_path: Path):
    zed = _engine(tmp_path).subject("zed")
    assert zed.tokens == {"acme/user:zed", "acme/group:hr", "beta/user:zed", "beta/group:x",
                          "beta/group:hr"}
    assert "group:hr" not in zed.tokens  # not the default tenant's hr
    assert _engine(tmp_path).subject("nobody").tokens == {"user:nobody"}
    assert split_token(token("acme", "group:hr")) == ("acme", "group:hr")
    assert split_token("group:a/b") == ("default", "group:a/b")


def test_denials_follow_the_tenant_where_the_subject_is_held(tmp_path: Path):
    engine = _engine(tmp_path)
    assert [d.pattern for d in engine.subject("bob").denials] == ["source:finance"]
    # zed holds group:hr in acme (deny applies) and in beta (the acme-only deny does not).
    assert [(d.pattern, d.tenant) for d in engine.subject("zed").denials] == [
        ("doc:hr:salary*", "acme")]
    assert engine.subject("root").denials == ()
    everything = _engine(tmp_path, POLICY + "p, user:root, *, *, deny\n").subject("root")
    assert [d.pattern for d in everything.denials] == ["*"]


def test_a_deny_overrides_an_admin_allow(tmp_path: Path):
    engine = _engine(tmp_path)
    assert engine.allows("root", "index", "reindex")
    assert not engine.allows("bob", "index", "reindex")  # role:admin, but denied
    assert engine.allows("bob", "index", "rollback")
    assert not engine.allows("zed", "index", "read")


def test_names_are_nfc_normalised_and_case_sensitive(tmp_path: Path):
    nfd = unicodedata.normalize("NFD", "group:café")
    engine = _engine(tmp_path, f"g, user:ana, {nfd}\ng, user:ben, group:Finance\n")
    assert "group:café" in engine.subject("ana").tokens  # NFC
    assert "group:finance" not in engine.subject("ben").tokens
    assert "group:Finance" in engine.subject("ben").tokens


@pytest.mark.parametrize(("line", "message"), [
    ("g, alice, group:hr", "'alice' is not a principal"),
    ("g, user:a, user:b", "only groups and roles have members"),
    ("g, user:a, group:b, Acme", "is not a tenant name"),
    ("p, group:staff, source:hr, read", "a document rule can only deny"),
    ("p, group:staff, source:hr, write, deny", "the only action on 'source:hr' is read"),
    ("p, group:staff, index, reindex, maybe", "must be allow or deny"),
    ("q, user:a, group:b", "starts with 'g,'"),
    ("g, user:a", "'g, MEMBER, GROUP[, TENANT]'"),
])
def test_bad_lines_are_refused_with_their_line_number(line: str, message: str):
    with pytest.raises(PolicyError, match="policy.csv:2: .*" + message.replace("[", r"\[")
                       .replace("]", r"\]").replace("(", r"\(")):
        parse_policy(f"# first\n{line}\n", "policy.csv")


def test_edits_keep_comments_refuse_bad_results_and_apply_at_once(tmp_path: Path):
    engine = _engine(tmp_path)
    version = engine.version
    added, removed = engine.change(add=[Membership("user:dave", "group:staff")],
                                   remove=[Membership("user:bob", "group:contractors")])
    assert (added, removed) == (1, 1)
    assert engine.version != version
    assert "group:staff" in engine.subject("dave").tokens
    assert engine.subject("bob").denials == ()
    text = (tmp_path / "policy.csv").read_text(encoding="utf-8")
    assert text.startswith("# comment kept across edits\n")
    assert engine.change(add=[Membership("user:dave", "group:staff")]) == (0, 0)  # no repeat
    assert engine.change(add=[Rule("user:dave", "index", "read", "deny", "acme")]) == (1, 0)
    text = (tmp_path / "policy.csv").read_text(encoding="utf-8")
    assert "p, user:dave, index, read, deny, acme" in text


def test_a_same_size_edit_that_keeps_the_mtime_is_still_seen(tmp_path: Path):
    engine = _engine(tmp_path, "g, user:dave, group:staff\n")
    assert "group:staff" in engine.subject("dave").tokens
    before = (tmp_path / "policy.csv").stat()
    tmp = tmp_path / "new.csv"
    tmp.write_text("g, user:dave, group:sales\n", encoding="utf-8")  # same length
    tmp.replace(tmp_path / "policy.csv")
    os.utime((tmp_path / "policy.csv"), ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (tmp_path / "policy.csv").stat().st_size == before.st_size
    assert engine.subject("dave").tokens == {"user:dave", "group:sales"}
