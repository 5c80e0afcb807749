"""The payload every chunk carries: where it came from, which version, and who may read it.

Its stored form is retrieval/payload.py's; this module fills it in for a new chunk.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from ingest.chunker import TextChunk
from ingest.sources import SourceFile
from retrieval.payload import ChunkPayload

# Namespace for point ids, so the same document chunk gets the same id in every version.
_POINT_NAMESPACE = uuid.UUID("6f1c2a52-3f0e-4c55-9d0a-2b8f6a1e9c41")


def point_id(doc_id: str, chunk_index: int) -> str:
    """uuid5 of (document id, chunk index): Qdrant takes only ints and UUIDs as ids."""
    return str(uuid.uuid5(_POINT_NAMESPACE, f"{doc_id}#{chunk_index}"))


def chunk_payload(
    file: SourceFile,
    chunk: TextChunk,
    *,
    title: str,
    doc_version: str,
    ingested_at: datetime,
    index_version: str,
) -> ChunkPayload:
    """The stored metadata of one chunk; `acl` is what the permission filter matches."""
    if not file.acl:
        raise ValueError(f"{file.doc_id}: refusing to tag a chunk without an ACL")
    return ChunkPayload(
        chunk_id=point_id(file.doc_id, chunk.index),
        chunk_index=chunk.index,
        doc_id=file.doc_id,
        source=file.source,
        uri=file.uri,
        title=title,
        page=chunk.page,
        section=chunk.section,
        doc_version=doc_version,
        source_modified_at=file.modified_at.isoformat(),
        ingested_at=ingested_at.isoformat(),
        index_version=index_version,
        acl=tuple(file.acl),
        text=chunk.text,
        # A link followed within its source: its ACL needs both its own and its target's.
        link_target=file.link_target,
    )
