"""The typed chunk payload: the stored format unchanged, and strict reading (fail closed)."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from retrieval.payload import ACL, DOC_ID, SOURCE, ChunkHit, ChunkPayload, stored_doc_id
from retrieval.retriever import _parse
from retrieval.store import (
    INDEXED_FIELDS,
    TENANT_FIELD,
    Hit,
    ReadFilter,
    StoredChunk,
    VectorBackend,
)
from tests.payloads import chunk_payload

# What ingest/tagging.py has written for every chunk since the first index version.
STORED = {
    "chunk_id": "6f1c2a52-3f0e-4c55-9d0a-2b8f6a1e9c41",
    "chunk_index": 0,
    "doc_id": "ops:guides/badges.md",
    "source": "ops",
    "uri": "guides/badges.md",
    "title": "Badges",
    "page": None,
    "section": "Badges",
    "doc_version": "a" * 64,
    "source_modified_at": "2026-01-02T03:04:05+00:00",
    "ingested_at": "2026-01-02T03:04:06.123456+00:00",
    "index_version": "v1",
    "acl": ["group:staff"],
    "text": "Badges are collected at the front desk.",
}
REQUIRED = sorted(STORED)


def _without(key: str) -> dict[str, Any]:
    return {k: v for k, v in STORED.items() if k != key}


def test_the_stored_format_is_the_same_keys_and_value_types():
    stored = chunk_payload().to_payload()
    assert stored == STORED
    assert [type(v) for v in stored.values()] == [type(v) for v in STORED.values()]
    assert isinstance(stored["acl"], list)  # a list, as before, never a tuple
    assert "link_target" not in stored  # written only for a followed link


def test_round_trip_through_the_stored_json():
    payload = chunk_payload(page=3, section=None, acl=("group:staff", "user:carol"),
                            link_target="board/plan.md")
    stored = json.loads(json.dumps(payload.to_payload()))
    assert stored["link_target"] == "board/plan.md"
    assert ChunkPayload.from_payload(stored) == payload
    assert ChunkPayload.from_payload(STORED) == chunk_payload()


def test_a_payload_comes_back_from_each_store_as_it_went_in(backend: VectorBackend):
    payload = chunk_payload(page=2, link_target="guides/desk.md")
    writer = backend.create("v1", dim=4)
    writer.upsert([StoredChunk(payload.chunk_id, [1.0, 0.0, 0.0, 0.0], payload.to_payload())])
    writer.seal()
    reader = backend.open("v1")
    try:
        stored = next(iter(reader.iter_chunks())).payload
        hits = reader.search([1.0, 0.0, 0.0, 0.0], access=ReadFilter(frozenset({"group:staff"})),
                             limit=1)
    finally:
        reader.close()
    assert {k: type(v) for k, v in stored.items()} == {
        k: type(v) for k, v in payload.to_payload().items()}  # ints stay ints
    assert ChunkPayload.from_payload(stored) == payload
    assert ChunkPayload.from_payload(hits[0].payload) == payload


def test_unknown_keys_are_ignored():
    assert ChunkPayload.from_payload({**STORED, "later_field": {"x": 1}}) == chunk_payload()


def test_the_filter_fields_are_named_once():
    assert (ACL, DOC_ID, SOURCE) == ("acl", "doc_id", "source")
    assert INDEXED_FIELDS == (ACL, DOC_ID, SOURCE) and TENANT_FIELD == ACL


def test_a_missing_acl_is_refused():
    with pytest.raises(ValueError, match=r"of 'ops:guides/badges.md': missing acl"):
        ChunkPayload.from_payload(_without("acl"))


@pytest.mark.parametrize("key", REQUIRED)
def test_every_required_field_is_required(key: str):
    with pytest.raises(ValueError, match=f"missing {key}"):
        ChunkPayload.from_payload(_without(key))


@pytest.mark.parametrize("acl", [None, "", "group:staff", [], [""], ["group:staff", None],
                                 [1], {"group:staff": 1}, 7])
def test_an_unusable_acl_is_refused(acl: object):
    with pytest.raises(ValueError, match="'acl'"):
        ChunkPayload.from_payload({**STORED, "acl": acl})


@pytest.mark.parametrize(("key", "value"), [
    ("doc_id", None), ("doc_id", ""), ("doc_id", 5), ("source", ["ops"]), ("uri", ""),
    ("chunk_id", 1), ("chunk_index", "0"), ("chunk_index", True), ("chunk_index", -1),
    ("chunk_index", 0.0), ("page", "1"), ("page", False), ("section", 3), ("title", None),
    ("text", None), ("text", b"bytes"), ("doc_version", 1), ("index_version", None),
    ("source_modified_at", 1700000000), ("ingested_at", None), ("link_target", 3),
])
def test_a_wrong_type_is_refused_naming_the_field(key: str, value: object):
    with pytest.raises(ValueError, match=f"'{key}' must be"):
        ChunkPayload.from_payload({**STORED, key: value})


def test_a_payload_that_is_not_an_object_is_refused():
    with pytest.raises(ValueError, match="expected an object"):
        ChunkPayload.from_payload(None)  # type: ignore[arg-type]
    assert stored_doc_id(None) is None  # type: ignore[arg-type]


def test_ingest_cannot_build_a_chunk_nobody_may_read():
    with pytest.raises(ValueError, match="'acl' must be a non-empty list"):
        chunk_payload(acl=())
    with pytest.raises(ValueError, match="'acl'"):
        chunk_payload(acl=["group:staff"])  # a list is the stored form, not the typed one
    assert replace(chunk_payload(), acl=("user:carol",)).acl == ("user:carol",)


def test_a_hit_whose_payload_does_not_parse_is_dropped_and_counted():
    good = Hit("p1", 0.9, dict(STORED), 0.8)
    no_acl = Hit("p2", 0.8, _without("acl"), 0.7)
    acl_as_string = Hit("p3", 0.7, {**STORED, "acl": "group:staff"}, 0.6)
    empty = Hit("p4", 0.6, {}, 0.5)
    parsed, unparsed = _parse([good, no_acl, acl_as_string, empty], "v1")
    assert parsed == [ChunkHit("p1", 0.9, chunk_payload(), 0.8)]
    assert unparsed == 3
