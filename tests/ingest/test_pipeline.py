"""Building an index version from real files: tagging, per-file errors, and nothing half-built."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.errors import IngestError
from ingest.pipeline import build_index_version
from ingest.settings import IngestSettings, SourceSettings
from policies.acl_rules import AclRule, acl_for
from retrieval.edge_store import EdgeBackend
from retrieval.embedder import Embedder
from retrieval.versions import VersionCatalog

SECTION_TEXT = "Badge photos are taken on Mondays at the front desk by the facilities team."


def _source(root: Path, rules: list[AclRule]) -> SourceSettings:
    return SourceSettings(name="ops", path=root, owner="facilities", acl=rules)


def _catalog(tmp_path: Path) -> VersionCatalog:
    return VersionCatalog(tmp_path / "versions", EdgeBackend(tmp_path / "index"))


def test_acl_first_matching_rule_wins_and_unmatched_is_none():
    rules = [AclRule(glob="secret/*", allow=["user:carol"]),
             AclRule(glob="*.md", allow=["group:staff", "group:staff"])]
    assert acl_for(rules, "secret/plan.md") == ("user:carol",)
    assert acl_for(rules, "secret/deep/plan.md") == ("user:carol",)
    assert acl_for(rules, "notes/badges.md") == ("group:staff",)
    assert acl_for(rules, "notes/badges.txt") is None


def test_build_tags_chunks_reports_bad_files_and_skips_files_without_acl(
    tmp_path: Path, embedder: Embedder
):
    docs = tmp_path / "docs"
    (docs / "guides").mkdir(parents=True)
    (docs / "guides" / "badges.md").write_text(f"# Badges\n\n{SECTION_TEXT}\n")
    (docs / "guides" / "broken.pdf").write_bytes(b"this is not a pdf at all")
    (docs / "guides" / "empty.txt").write_text("")
    (docs / "private.csvx").write_text("no rule matches me")
    (docs / ".hidden.md").write_text("# Hidden\n\nnever read")
    catalog = _catalog(tmp_path)
    source = _source(docs, [AclRule(glob="guides/*", allow=["group:staff"])])

    report = build_index_version([source], IngestSettings(), catalog=catalog, embedder=embedder)

    assert report.documents == 1
    assert sorted(p.doc_id for p in report.errors) == ["ops:guides/broken.pdf",
                                                       "ops:guides/empty.txt"]
    assert all(p.reason for p in report.errors)
    assert [p.doc_id for p in report.no_acl] == ["ops:private.csvx"]
    assert catalog.current() == report.version_id

    reader = catalog.backend.open(report.version_id)
    try:
        chunks = list(reader.iter_chunks())
    finally:
        reader.close()
    assert len(chunks) == report.chunks == 1
    payload = chunks[0].payload
    assert payload["doc_id"] == "ops:guides/badges.md"
    assert payload["source"] == "ops" and payload["uri"] == "guides/badges.md"
    assert payload["title"] == "Badges" and payload["section"] == "Badges"
    assert payload["acl"] == ["group:staff"]
    assert len(payload["doc_version"]) == 64
    assert payload["index_version"] == report.version_id
    assert payload["source_modified_at"].endswith("+00:00")
    assert payload["ingested_at"].endswith("+00:00")
    assert payload["page"] is None
    assert SECTION_TEXT in payload["text"]
    assert payload["chunk_id"] == chunks[0].point_id


def test_nothing_ingestible_keeps_the_current_version_and_leaves_nothing_behind(
    tmp_path: Path, embedder: Embedder
):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "good.md").write_text(f"# Badges\n\n{SECTION_TEXT}\n")
    catalog = _catalog(tmp_path)
    first = build_index_version([_source(docs, [AclRule(glob="*", allow=["group:staff"])])],
                                IngestSettings(), catalog=catalog, embedder=embedder)
    (docs / "good.md").write_text("")

    with pytest.raises(IngestError, match="current index version is unchanged"):
        build_index_version([_source(docs, [AclRule(glob="*", allow=["group:staff"])])],
                            IngestSettings(), catalog=catalog, embedder=embedder)

    assert catalog.current() == first.version_id
    assert catalog.backend.versions() == [first.version_id]
    assert sorted(p.name for p in (tmp_path / "index").iterdir()) == ["CURRENT",
                                                                      first.version_id]


class FailingEmbedder(Embedder):
    """FAULT INJECTION around the real embedder: its `fail_on`-th batch raises."""

    def __init__(self, real: Embedder, fail_on: int) -> None:
        self._real, self._fail_on, self.calls = real, fail_on, 0

    def embed_documents(self, texts):  # type: ignore[no-untyped-def]
        self.calls += 1
        if self.calls == self._fail_on:
            raise RuntimeError("embedder out of memory (injected)")
        return self._real.embed_documents(texts)

    def token_ids(self, text: str) -> list[int]:
        return self._real.token_ids(text)


def test_an_embedding_error_in_the_worker_fails_the_build_and_keeps_the_current_version(
    tmp_path: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
):
    import threading

    import ingest.pipeline

    monkeypatch.setattr(ingest.pipeline, "EMBED_BATCH", 2)  # several batches from a few files
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(8):
        (docs / f"note-{i}.md").write_text(f"# Note {i}\n\n{SECTION_TEXT} Number {i}.\n")
    catalog = _catalog(tmp_path)
    source = _source(docs, [AclRule(glob="*", allow=["group:staff"])])
    first = build_index_version([source], IngestSettings(), catalog=catalog, embedder=embedder)
    assert first.chunks == 8
    for i in range(8):
        (docs / f"note-{i}.md").write_text(f"# Note {i}\n\nChanged text {i}. {SECTION_TEXT}\n")

    failing = FailingEmbedder(embedder, fail_on=2)
    with pytest.raises(RuntimeError, match="injected"):
        build_index_version([source], IngestSettings(), catalog=catalog, embedder=failing)

    assert failing.calls == 2  # the worker stopped at the failing batch
    assert catalog.current() == first.version_id
    assert catalog.backend.versions() == [first.version_id]
    assert sorted(p.name for p in (tmp_path / "index").iterdir()) == ["CURRENT",
                                                                      first.version_id]
    assert not [t for t in threading.enumerate() if t.name.startswith("ingest-embed")]
