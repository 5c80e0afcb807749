"""Unit embeddings made at ingest are the ones answering would make, are used instead of
embedding again, and are ignored (the units embedded again) when they do not fit the text."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from answers.extractive import distinct_units, unit_similarities
from ingest.pipeline import build_index_version
from ingest.settings import IngestSettings, SourceSettings
from policies.acl_rules import AclRule
from retrieval.edge_store import EdgeBackend
from retrieval.embedder import Embedder
from retrieval.passages import split_units
from retrieval.payload import ChunkHit, ChunkPayload
from retrieval.unit_vectors import decode_unit_vectors, embed_chunk_units, encode_unit_vectors
from retrieval.versions import VersionCatalog
from tests.conftest import shared_parser
from tests.payloads import chunk_payload

TEXT = ("Hotel costs are reimbursed up to 180 EUR per night in Berlin. Meals are covered up to "
        "45 EUR a day. Receipts are uploaded within 30 days of the trip.")


class UnitCountingEmbedder:
    """The real embedder, counting the texts it is given to embed as documents."""

    def __init__(self, inner: Embedder) -> None:
        self._inner = inner
        self.name, self.dim = inner.name, inner.dim
        self.embedded: list[str] = []

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        self.embedded += list(texts)
        return self._inner.embed_documents(texts)

    def embed_query(self, text: str) -> np.ndarray:
        return self._inner.embed_query(text)


def _hit(payload: ChunkPayload) -> ChunkHit:
    return ChunkHit(payload.chunk_id, 0.8, payload, 0.8)


def test_stored_rows_round_trip_within_float16_and_refuse_what_does_not_fit(embedder: Embedder):
    vectors = embedder.embed_documents(["one sentence here", "and another one there"])
    stored = encode_unit_vectors(vectors)
    rows = decode_unit_vectors(stored, units=2, dim=embedder.dim)
    assert rows is not None and rows.dtype == np.float32
    assert np.abs(rows - vectors).max() < 1e-3
    assert decode_unit_vectors(stored, units=3, dim=embedder.dim) is None  # another split
    assert decode_unit_vectors(stored, units=2, dim=128) is None  # another model
    assert decode_unit_vectors("not base64!", units=2, dim=embedder.dim) is None
    assert decode_unit_vectors(None, units=2, dim=embedder.dim) is None


def test_a_build_stores_each_chunks_unit_embeddings(tmp_path: Path, embedder: Embedder):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "travel.md").write_text(f"# Travel\n\n{TEXT}\n")
    source = SourceSettings(name="ops", path=docs, owner="finance",
                            acl=[AclRule(glob="*", allow=["group:staff"])])
    catalog = VersionCatalog(tmp_path / "versions", EdgeBackend(tmp_path / "index"))
    report = build_index_version([source], IngestSettings(), catalog=catalog,
                                 parser=shared_parser(), embedder=embedder)
    reader = EdgeBackend(tmp_path / "index").open(report.version_id)
    try:
        chunks = [ChunkPayload.from_payload(c.payload) for c in reader.iter_chunks()]
    finally:
        reader.close()
    assert chunks
    for payload in chunks:
        units = [u.text for u in split_units(payload.text)]
        rows = decode_unit_vectors(payload.unit_vectors, units=len(units), dim=embedder.dim)
        assert rows is not None
        cosines = np.sum(rows * embedder.embed_documents(units), axis=1)
        assert cosines.min() > 0.999


def test_answering_uses_the_stored_rows_and_embeds_only_a_chunk_without_them(
    embedder: Embedder
):
    counting = UnitCountingEmbedder(embedder)
    stored_payload = chunk_payload(text=TEXT, unit_vectors=embed_chunk_units([TEXT], embedder)[0])
    other = "The office on floor four opens at eight. Visitors sign in at the front desk."
    bare = chunk_payload(chunk_id="00000000-0000-0000-0000-000000000002", chunk_index=1,
                         text=other)
    hits = [_hit(stored_payload), _hit(bare)]
    candidates = distinct_units(hits)
    query = "What is the hotel limit in Berlin?"

    scores = unit_similarities(query, candidates, hits, embedder=counting)

    assert counting.embedded == [u.text for u in split_units(other)]  # the bare chunk's only
    expected = embedder.embed_documents([c.unit.text for c in candidates]) \
        @ embedder.embed_query(query)
    assert np.abs(scores - expected).max() < 2e-3
    assert candidates[int(np.argmax(scores))].unit.text.startswith("Hotel costs")


def test_rows_that_do_not_fit_the_text_are_ignored_and_the_units_embedded(embedder: Embedder):
    counting = UnitCountingEmbedder(embedder)
    one_row = encode_unit_vectors(embedder.embed_documents(["only one row"]))
    payload = replace(chunk_payload(text=TEXT), unit_vectors=one_row)  # TEXT has three units
    hits = [_hit(payload)]
    candidates = distinct_units(hits)

    scores = unit_similarities("hotel limit", candidates, hits, embedder=counting)

    assert counting.embedded == [u.text for u in split_units(TEXT)]
    assert len(scores) == 3
