"""Today's document ACLs against each version's: overrides, config rules, and failing closed."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import pytest

from application.config_watch import ConfigRules
from application.settings import load_settings
from control.acl_overrides import AclOverrides
from control.quarantine import Quarantine
from ingest.settings import SourceSettings
from policies.acl_rules import AclRule
from retrieval.access import DocumentAccess, SourceRules
from retrieval.edge_store import EdgeBackend
from retrieval.errors import StoreError
from retrieval.scope import Scope
from retrieval.versions import DocumentEntry, VersionCatalog
from tests.payloads import chunk_payload

DOCS = {
    "ops:a.md": DocumentEntry("ops", "a.md", ("group:staff",)),
    "ops:board/b.md": DocumentEntry("ops", "board/b.md", ("user:carol",)),
    "old:c.md": DocumentEntry("old", "c.md", ("group:staff",)),
}


class Rules:
    """A RulesProvider whose rules the test changes."""

    def __init__(self, rules: SourceRules) -> None:
        self.rules, self.generation = rules, 0

    def set(self, rules: SourceRules) -> None:
        self.rules, self.generation = rules, self.generation + 1

    def __call__(self) -> tuple[object, SourceRules]:
        return self.generation, self.rules


def _access(tmp_path: Path, rules: Rules) -> DocumentAccess:
    catalog = VersionCatalog(tmp_path / "versions", EdgeBackend(tmp_path / "index"))
    catalog.record_documents("v1", DOCS)
    return DocumentAccess(catalog, rules, AclOverrides(tmp_path / "document_acls.json"),
                          Quarantine(tmp_path / "quarantine.json"))


def _sources(**rules: list[AclRule]) -> SourceRules:
    return {name: SourceSettings(name=name, path=Path("/nonexistent"), owner="o", acl=r)
            for name, r in rules.items()}


STAFF = Scope("dave", frozenset({"user:dave", "group:staff"}), "p")
CAROL = Scope("carol", frozenset({"user:carol", "group:staff", "group:finance"}), "p")


def test_only_documents_whose_acl_differs_are_marked_changed(tmp_path: Path):
    rules = Rules(_sources(ops=[AclRule(glob="board/*", allow=["user:carol"]),
                           AclRule(glob="*", allow=["group:staff"])]))
    access = _access(tmp_path, rules).for_version("v1")
    # ops's rules give what the version was built with; "old" is no longer declared: nobody.
    assert access.changed == {"old:c.md": ()}
    assert access.read_filter(STAFF).acl_changed == {"old:c.md"}
    assert access.read_filter(STAFF).include_docs == frozenset()


def test_a_rule_change_moves_access_and_the_cache_follows(tmp_path: Path):
    rules = Rules(_sources(ops=[AclRule(glob="*", allow=["group:staff"])], old=[]))
    access = _access(tmp_path, rules)
    first = access.for_version("v1")
    assert first.changed == {"ops:board/b.md": ("group:staff",), "old:c.md": ()}
    assert first.read_filter(STAFF).include_docs == {"ops:board/b.md"}
    rules.set(_sources(ops=[AclRule(glob="*", allow=["user:carol"])], old=[]))
    second = access.for_version("v1")
    assert second.changed == {"ops:a.md": ("user:carol",), "old:c.md": ()}
    assert second.read_filter(STAFF).include_docs == frozenset()
    assert second.read_filter(CAROL).include_docs == {"ops:a.md"}
    # The re-check of a hit uses the ACL now, not the stored one.
    assert second.acl_now(chunk_payload(doc_id="ops:a.md", acl=("group:staff",))) == (
        "user:carol",)
    assert second.acl_now(chunk_payload(doc_id="ops:board/b.md", acl=("user:carol",))) == (
        "user:carol",)


def test_an_override_wins_over_the_rules_and_clear_restores_them(tmp_path: Path):
    rules = Rules(_sources(ops=[AclRule(glob="board/*", allow=["user:carol"]),
                           AclRule(glob="*", allow=["group:staff"])], old=[]))
    access = _access(tmp_path, rules)
    other_process = AclOverrides(tmp_path / "document_acls.json")
    other_process.set("ops:a.md", ["user:root"])
    assert access.for_version("v1").changed["ops:a.md"] == ("user:root",)
    assert other_process.clear("ops:a.md") is True
    assert other_process.clear("ops:a.md") is False
    assert "ops:a.md" not in access.for_version("v1").changed


def test_overrides_refuse_bad_principals(tmp_path: Path):
    overrides = AclOverrides(tmp_path / "document_acls.json")
    with pytest.raises(ValueError, match="not principals"):
        overrides.set("ops:a.md", ["dave"])
    with pytest.raises(ValueError, match="not principals"):
        overrides.set("ops:a.md", ["group:staff", ""])
    assert not (tmp_path / "document_acls.json").exists()


@pytest.mark.parametrize("content", ["{not json", '["ops:a.md"]', '{"ops:a.md": "group:staff"}',
                                     '{"ops:a.md": ["staff"]}'])
def test_an_unreadable_override_file_fails_queries_instead_of_opening_access(
    tmp_path: Path, content: str
):
    access = _access(tmp_path, Rules(_sources(ops=[AclRule(glob="*", allow=["group:staff"])])))
    (tmp_path / "document_acls.json").write_text(content)
    with pytest.raises(StoreError, match=r"document ACL overrides .* cannot be read"):
        access.for_version("v1")


def test_config_rules_reload_on_edit_and_keep_the_last_good_on_a_broken_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    config = tmp_path / "clearance.toml"
    (tmp_path / "docs").mkdir()
    body = '[[sources]]\nname = "ops"\npath = "docs"\nowner = "it"\nacl = [{{ glob = "*", ' \
           'allow = ["{who}"] }}]\n'
    config.write_text(body.format(who="group:staff"))
    rules = ConfigRules(load_settings(config))
    generation, current = rules()
    assert current["ops"].acl[0].allow == ["group:staff"]

    config.write_text(body.format(who="group:platform-team"))
    generation2, current = rules()
    assert generation2 != generation
    assert current["ops"].acl[0].allow == ["group:platform-team"]

    with caplog.at_level(logging.ERROR):
        config.write_text(body.format(who="not a principal"))
        generation3, current = rules()
    assert generation3 == generation2
    assert current["ops"].acl[0].allow == ["group:platform-team"]
    assert "the last good ACL rules stay in force" in caplog.text


def test_denials_and_quarantine_exclude_documents_in_the_filter_and_the_recheck(tmp_path: Path):
    rules = Rules(_sources(ops=[AclRule(glob="board/*", allow=["user:carol"]),
                                AclRule(glob="*", allow=["group:staff"])], old=[]))
    access = _access(tmp_path, rules)
    denied = Scope("carol", CAROL.principals, "p", denied=("doc:ops:board/*", "source:old"))
    f = access.for_version("v1").read_filter(denied)
    assert f.exclude_docs == {"ops:board/b.md"} and f.exclude_sources == {"old"}
    everything = Scope("carol", CAROL.principals, "p", denied=("*",))
    assert access.for_version("v1").read_filter(everything).exclude_docs == set(DOCS)

    Quarantine(tmp_path / "quarantine.json").add("document", "ops:a.md", by="root", reason="pii")
    version = access.for_version("v1")
    f = version.read_filter(CAROL)
    assert f.exclude_docs == {"ops:a.md"}
    payload = chunk_payload(doc_id="ops:a.md", source="ops", acl=("group:staff",))
    assert not version.admits(CAROL, payload, f)
    assert version.admits(CAROL, replace(payload, doc_id="ops:other.md"), f)
    Quarantine(tmp_path / "quarantine.json").release("document", "ops:a.md")
    assert access.for_version("v1").read_filter(CAROL).exclude_docs == frozenset()


def test_an_unreadable_quarantine_file_fails_queries(tmp_path: Path):
    access = _access(tmp_path, Rules(_sources(ops=[])))
    (tmp_path / "quarantine.json").write_text('{"entries": [{"kind": "document"}]}')
    with pytest.raises(StoreError, match=r"quarantine file .* cannot be read"):
        access.for_version("v1")


def test_tenant_sources_carry_tenant_tokens(tmp_path: Path):
    acme = SourceSettings(name="ops", path=Path("/x"), owner="o", tenant="acme",
                          acl=[AclRule(glob="*", allow=["group:staff"])])
    access = _access(tmp_path, Rules({"ops": acme}))
    changed = access.for_version("v1").changed
    # Built in the default tenant, served now as acme's: default staff lose it, acme staff get it.
    assert changed["ops:a.md"] == ("acme/group:staff",)
    f = access.for_version("v1").read_filter(STAFF)
    assert "ops:a.md" in f.acl_changed and "ops:a.md" not in f.include_docs
