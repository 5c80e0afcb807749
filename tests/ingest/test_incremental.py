"""Incremental re-index: unchanged documents reuse the current version's chunks and vectors."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pytest

from ingest.errors import IngestError
from ingest.pipeline import IngestReport, build_index_version
from ingest.settings import IngestSettings, SourceSettings
from policies.acl_rules import AclRule
from retrieval.edge_store import EdgeBackend
from retrieval.embedder import Embedder
from retrieval.passages import split_units
from retrieval.store import ReadFilter, StoredChunk
from retrieval.versions import VersionCatalog
from tests.conftest import shared_parser

DOCS = {
    "badges.md": "# Badges\n\nBadge photos are taken on Mondays at the front desk.\n",
    "parking.md": "# Parking\n\nThe visitor car park is behind building C; ask reception.\n",
    "kitchen.md": "# Kitchen\n\nThe third-floor kitchen is cleaned every Friday afternoon.\n",
    "printers.md": "# Printers\n\nThe colour printer on floor two needs a badge to release jobs.\n",
}
NEW_TEXT = "Badge photos are now taken on Thursdays in the security office on floor four."


class CountingEmbedder:
    """A counting wrapper around the real embedder: counts the texts given to embed_documents."""

    def __init__(self, inner: Embedder) -> None:
        self._inner = inner
        self.name = inner.name
        self.dim = inner.dim
        self.embedded = 0

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        self.embedded += len(texts)
        return self._inner.embed_documents(texts)

    def embed_query(self, text: str) -> np.ndarray:
        return self._inner.embed_query(text)

    def token_ids(self, text: str) -> list[int]:
        return self._inner.token_ids(text)


def _texts(chunks: Iterable[StoredChunk]) -> int:
    """The texts a build embeds for these chunks: each chunk's, and its sentences' and rows'
    (stored with it, retrieval/unit_vectors.py)."""
    return sum(1 + len(split_units(str(c.payload["text"]))) for c in chunks)


@pytest.fixture
def counting(embedder: Embedder) -> CountingEmbedder:
    return CountingEmbedder(embedder)


def _write_docs(root: Path) -> Path:
    root.mkdir()
    for name, text in DOCS.items():
        (root / name).write_text(text)
    return root


def _source(root: Path, rules: list[AclRule] | None = None) -> SourceSettings:
    rules = rules or [AclRule(glob="*", allow=["group:staff"])]
    return SourceSettings(name="ops", path=root, owner="facilities", acl=rules)


def _build(tmp_path: Path, source: SourceSettings, embedder: object) -> IngestReport:
    catalog = VersionCatalog(tmp_path / "versions", EdgeBackend(tmp_path / "index"))
    return build_index_version([source], IngestSettings(), catalog=catalog,
                               parser=shared_parser(), embedder=embedder)  # type: ignore[arg-type]


def _chunks(tmp_path: Path, version_id: str) -> dict[str, StoredChunk]:
    reader = EdgeBackend(tmp_path / "index").open(version_id)
    try:
        return {c.point_id: c for c in reader.iter_chunks()}
    finally:
        reader.close()


def _search(tmp_path: Path, version_id: str, embedder: Embedder, query: str) -> list[str]:
    reader = EdgeBackend(tmp_path / "index").open(version_id)
    try:
        hits = reader.search(embedder.embed_query(query).tolist(),
                             access=ReadFilter(frozenset({"group:staff"})), limit=1)
    finally:
        reader.close()
    return [str(h.payload["text"]) for h in hits]


def test_unchanged_corpus_reuses_every_document_and_embeds_nothing(
    tmp_path: Path, counting: CountingEmbedder
):
    source = _source(_write_docs(tmp_path / "docs"))
    first = _build(tmp_path, source, counting)
    assert (first.reused, first.documents) == (0, 4)
    assert first.embedded_chunks == first.chunks
    assert counting.embedded == _texts(_chunks(tmp_path, first.version_id).values())
    assert first.seconds > 0
    counting.embedded = 0

    second = _build(tmp_path, source, counting)

    assert second.version_id != first.version_id
    assert (second.documents, second.reused, second.chunks) == (4, 4, first.chunks)
    assert second.embedded_chunks == counting.embedded == 0
    old, new = _chunks(tmp_path, first.version_id), _chunks(tmp_path, second.version_id)
    assert old.keys() == new.keys()
    for chunk_id, before in old.items():
        after = new[chunk_id]
        assert np.allclose(after.vector, before.vector, atol=1e-6, rtol=0)
        assert after.payload["index_version"] == second.version_id
        assert before.payload["index_version"] == first.version_id
        assert ({k: v for k, v in after.payload.items() if k != "index_version"}
                == {k: v for k, v in before.payload.items() if k != "index_version"})


def test_changed_file_alone_is_embedded_again_and_found(
    tmp_path: Path, counting: CountingEmbedder, embedder: Embedder
):
    docs = _write_docs(tmp_path / "docs")
    source = _source(docs)
    first = _build(tmp_path, source, counting)
    (docs / "badges.md").write_text(f"# Badges\n\n{NEW_TEXT}\n")
    counting.embedded = 0

    second = _build(tmp_path, source, counting)

    new = _chunks(tmp_path, second.version_id)
    badges = [c for c in new.values() if c.payload["doc_id"] == "ops:badges.md"]
    assert badges and second.embedded_chunks == len(badges)
    assert counting.embedded == _texts(badges)
    assert (second.documents, second.reused) == (4, 3)
    old_badges = {c.payload["doc_version"] for c in _chunks(tmp_path, first.version_id).values()
                  if c.payload["doc_id"] == "ops:badges.md"}
    assert {c.payload["doc_version"] for c in badges}.isdisjoint(old_badges)
    assert NEW_TEXT in _search(tmp_path, second.version_id, embedder,
                               "Where are badge photos taken now?")[0]


def test_deleted_file_is_gone_from_the_new_version(tmp_path: Path, counting: CountingEmbedder):
    docs = _write_docs(tmp_path / "docs")
    source = _source(docs)
    first = _build(tmp_path, source, counting)
    (docs / "parking.md").unlink()
    counting.embedded = 0

    second = _build(tmp_path, source, counting)

    doc_ids = {c.payload["doc_id"] for c in _chunks(tmp_path, second.version_id).values()}
    assert doc_ids == {"ops:badges.md", "ops:kitchen.md", "ops:printers.md"}
    assert (second.documents, second.reused, second.embedded_chunks) == (3, 3, 0)
    assert counting.embedded == 0
    assert "ops:parking.md" in {c.payload["doc_id"]
                                for c in _chunks(tmp_path, first.version_id).values()}


def test_acl_change_rewrites_the_acl_without_embedding(
    tmp_path: Path, counting: CountingEmbedder
):
    docs = _write_docs(tmp_path / "docs")
    first = _build(tmp_path, _source(docs), counting)
    counting.embedded = 0
    rules = [AclRule(glob="kitchen.md", allow=["group:facilities", "user:erin"]),
             AclRule(glob="*", allow=["group:staff"])]

    second = _build(tmp_path, _source(docs, rules), counting)

    assert (second.reused, second.embedded_chunks, counting.embedded) == (4, 0, 0)
    old, new = _chunks(tmp_path, first.version_id), _chunks(tmp_path, second.version_id)
    for chunk_id, after in new.items():
        if after.payload["doc_id"] == "ops:kitchen.md":
            assert after.payload["acl"] == ["group:facilities", "user:erin"]
        else:
            assert after.payload["acl"] == ["group:staff"]
        assert old[chunk_id].payload["ingested_at"] == after.payload["ingested_at"]
        assert np.allclose(after.vector, old[chunk_id].vector, atol=1e-6, rtol=0)
    reader = EdgeBackend(tmp_path / "index").open(second.version_id)
    try:
        vector = next(iter(new.values())).vector
        staff = {h.payload["doc_id"] for h in
                 reader.search(vector, access=ReadFilter(frozenset({"group:staff"})), limit=10)}
        erin = {h.payload["doc_id"] for h in
                reader.search(vector, access=ReadFilter(frozenset({"user:erin"})), limit=10)}
    finally:
        reader.close()
    assert "ops:kitchen.md" not in staff and len(staff) == 3
    assert erin == {"ops:kitchen.md"}


def test_another_embedder_in_the_manifest_means_a_full_build(
    tmp_path: Path, counting: CountingEmbedder
):
    source = _source(_write_docs(tmp_path / "docs"))
    first = _build(tmp_path, source, counting)
    counting.embedded = 0
    counting.name = "some/other-model"

    second = _build(tmp_path, source, counting)

    assert second.reused == 0
    assert second.embedded_chunks == first.chunks
    assert counting.embedded == _texts(_chunks(tmp_path, second.version_id).values())


def test_reuse_false_parses_and_embeds_everything(tmp_path: Path, counting: CountingEmbedder):
    docs = _write_docs(tmp_path / "docs")
    catalog = VersionCatalog(tmp_path / "versions", EdgeBackend(tmp_path / "index"))
    first = build_index_version([_source(docs)], IngestSettings(), catalog=catalog,
                                parser=shared_parser(), embedder=counting)  # type: ignore[arg-type]
    counting.embedded = 0
    second = build_index_version([_source(docs)], IngestSettings(), catalog=catalog,
                                 parser=shared_parser(), embedder=counting, reuse=False)  # type: ignore[arg-type]
    assert second.reused == 0
    assert second.embedded_chunks == first.chunks
    assert counting.embedded == _texts(_chunks(tmp_path, second.version_id).values())


def test_other_chunking_settings_mean_a_full_build(tmp_path: Path, counting: CountingEmbedder):
    docs = _write_docs(tmp_path / "docs")
    catalog = VersionCatalog(tmp_path / "versions", EdgeBackend(tmp_path / "index"))
    build_index_version([_source(docs)], IngestSettings(), catalog=catalog,
                        parser=shared_parser(), embedder=counting)  # type: ignore[arg-type]
    counting.embedded = 0
    second = build_index_version([_source(docs)], IngestSettings(chunk_size=64, chunk_overlap=8),
                                 catalog=catalog, parser=shared_parser(), embedder=counting)  # type: ignore[arg-type]
    assert second.reused == 0
    assert second.embedded_chunks > 0
    assert counting.embedded == _texts(_chunks(tmp_path, second.version_id).values())
    info = catalog.get(second.version_id)
    assert info is not None and info.chunking.startswith("size=64,overlap=8")


def test_a_one_source_build_reads_only_that_source_and_carries_the_others(
    tmp_path: Path, counting: CountingEmbedder
):
    ops = _source(_write_docs(tmp_path / "ops"))
    legal_root = tmp_path / "legal"
    legal_root.mkdir()
    (legal_root / "nda.md").write_text("# NDA\n\nMutual NDAs are signed by the general counsel.\n")
    legal = SourceSettings(name="legal", path=legal_root, owner="counsel",
                           acl=[AclRule(glob="*", allow=["group:legal"])])
    catalog = VersionCatalog(tmp_path / "versions", EdgeBackend(tmp_path / "index"))

    def build(only: str | None) -> IngestReport:
        return build_index_version([ops, legal], IngestSettings(), catalog=catalog,
                                   parser=shared_parser(), embedder=counting, only_source=only)  # type: ignore[arg-type]

    first = build(None)
    # Both sources change; only ops is re-indexed.
    (ops.path / "badges.md").write_text(f"# Badges\n\n{NEW_TEXT}\n")
    (legal_root / "nda.md").write_text("# NDA\n\nNDAs now need two signatures.\n")
    (ops.path / "kitchen.md").unlink()
    before = counting.embedded
    second = build("ops")

    assert second.embedded_chunks == 1  # badges.md only
    assert second.documents == 4 and second.carried == 1  # 3 ops files + legal's nda.md
    new = _chunks(tmp_path, second.version_id).values()
    assert counting.embedded - before == _texts([c for c in new
                                                 if c.payload["doc_id"] == "ops:badges.md"])
    texts = {c.payload["doc_id"]: c.payload["text"] for c in _chunks(tmp_path, second.version_id)
             .values()}
    assert "ops:kitchen.md" not in texts
    assert NEW_TEXT in texts["ops:badges.md"]
    assert "general counsel" in texts["legal:nda.md"]  # carried as it was: not re-read
    documents = catalog.documents(second.version_id)
    assert documents["legal:nda.md"].acl == ("group:legal",)
    assert set(documents) == set(texts)
    assert catalog.get(second.version_id).sources == ["legal", "ops"]  # type: ignore[union-attr]
    assert first.version_id != second.version_id

    with pytest.raises(IngestError, match="unknown source 'nope'"):
        build("nope")
