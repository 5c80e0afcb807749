"""A valid chunk payload for tests that need one, with the fields they care about changed."""

from __future__ import annotations

from typing import Any

from retrieval.payload import ChunkPayload


def chunk_payload(**changes: Any) -> ChunkPayload:
    """A payload as ingest writes it (ops:guides/badges.md, chunk 0, readable by staff)."""
    fields: dict[str, Any] = {
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
        "acl": ("group:staff",),
        "text": "Badges are collected at the front desk.",
    }
    return ChunkPayload(**{**fields, **changes})
