"""The payload stored with every chunk: where it came from, which version, who may read it.

`ChunkPayload` is the one place that knows the stored keys. Ingestion builds chunks through it
(ingest/tagging.py, ingest/pipeline.py) and retrieval reads every hit through it
(retrieval/retriever.py): a hit whose payload does not parse (a key missing, a value of the
wrong type, no usable ACL) is dropped and counted, never served. The stored format is a flat
JSON object, the same since the first index version, so every version keeps loading:

    chunk_id             str          the point id (uuid5 of doc id and chunk index)
    chunk_index          int          0-based position in the document
    doc_id               str          "SOURCE:URI", stable across versions
    source, uri, title   str
    page                 int | null
    section              str | null
    doc_version          str          sha256 of the file's bytes
    source_modified_at   str          ISO 8601: the file's modified time at the build
    ingested_at          str          ISO 8601: when this content was first ingested
    index_version        str          the version the chunk belongs to
    acl                  [str, ...]   ACL tokens (policies/principals.py), never empty
    text                 str
    link_target          str          only for a symbolic link followed within its source
    unit_vectors         str          the embeddings of the text's sentences and table rows
                                      (retrieval/unit_vectors.py); absent in versions built
                                      before them, whose units are embedded when asked

Keys not listed are ignored (none has ever been written). The store filters and payload
indexes use ACL, DOC_ID and SOURCE.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# The fields that the permission filter matches and that carry a keyword index.
ACL = "acl"
DOC_ID = "doc_id"
SOURCE = "source"

_CHUNK_ID = "chunk_id"
_CHUNK_INDEX = "chunk_index"
_URI = "uri"
_TITLE = "title"
_PAGE = "page"
_SECTION = "section"
_DOC_VERSION = "doc_version"
_SOURCE_MODIFIED_AT = "source_modified_at"
_INGESTED_AT = "ingested_at"
_INDEX_VERSION = "index_version"
_TEXT = "text"
_LINK_TARGET = "link_target"
_UNIT_VECTORS = "unit_vectors"

_REQUIRED = (_CHUNK_ID, _CHUNK_INDEX, DOC_ID, SOURCE, _URI, _TITLE, _PAGE, _SECTION,
             _DOC_VERSION, _SOURCE_MODIFIED_AT, _INGESTED_AT, _INDEX_VERSION, ACL, _TEXT)


@dataclass(frozen=True)
class ChunkPayload:
    """One chunk's stored metadata, checked: constructing one with a wrong value raises
    ValueError, so a payload that exists is one that may be written or served."""

    chunk_id: str
    chunk_index: int
    doc_id: str
    source: str
    uri: str
    title: str
    page: int | None
    section: str | None
    doc_version: str
    source_modified_at: str
    ingested_at: str
    index_version: str
    acl: tuple[str, ...]  # what the permission filter matches; never empty
    text: str
    link_target: str | None = None  # a link followed within its source: its target's uri
    unit_vectors: str | None = None  # retrieval/unit_vectors.py's stored form

    def __post_init__(self) -> None:
        for name in (_CHUNK_ID, DOC_ID, SOURCE, _URI):
            _check(self, name, _is_str(getattr(self, name)) and getattr(self, name) != "",
                   "a non-empty string")
        for name in (_TITLE, _DOC_VERSION, _SOURCE_MODIFIED_AT, _INGESTED_AT, _INDEX_VERSION,
                     _TEXT):
            _check(self, name, _is_str(getattr(self, name)), "a string")
        _check(self, _CHUNK_INDEX, _is_int(self.chunk_index) and self.chunk_index >= 0,
               "an integer >= 0")
        _check(self, _PAGE, self.page is None or _is_int(self.page), "an integer or null")
        _check(self, _SECTION, self.section is None or _is_str(self.section),
               "a string or null")
        _check(self, _LINK_TARGET, self.link_target is None or _is_str(self.link_target),
               "a string when present")
        _check(self, _UNIT_VECTORS, self.unit_vectors is None or _is_str(self.unit_vectors),
               "a string when present")
        _check(self, ACL, isinstance(self.acl, tuple) and bool(self.acl)
               and all(_is_str(t) and t != "" for t in self.acl),
               "a non-empty list of non-empty strings (a chunk nobody may read is not stored)")

    def to_payload(self) -> dict[str, Any]:
        """The payload as stored: the keys and value types every index version has."""
        payload: dict[str, Any] = {
            _CHUNK_ID: self.chunk_id,
            _CHUNK_INDEX: self.chunk_index,
            DOC_ID: self.doc_id,
            SOURCE: self.source,
            _URI: self.uri,
            _TITLE: self.title,
            _PAGE: self.page,
            _SECTION: self.section,
            _DOC_VERSION: self.doc_version,
            _SOURCE_MODIFIED_AT: self.source_modified_at,
            _INGESTED_AT: self.ingested_at,
            _INDEX_VERSION: self.index_version,
            ACL: list(self.acl),
            _TEXT: self.text,
        }
        if self.link_target is not None:
            payload[_LINK_TARGET] = self.link_target
        if self.unit_vectors is not None:
            payload[_UNIT_VECTORS] = self.unit_vectors
        return payload

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> ChunkPayload:
        """The payload of a stored chunk; ValueError naming the field if a required one is
        missing or of the wrong type (fail closed: such a chunk is not served)."""
        if not isinstance(payload, Mapping):
            raise ValueError(f"chunk payload: expected an object, got {type(payload).__name__}")
        missing = [k for k in _REQUIRED if k not in payload]
        if missing:
            raise ValueError(f"chunk payload{_of(payload)}: missing {', '.join(missing)}")
        acl = payload[ACL]
        if not isinstance(acl, list | tuple):
            raise ValueError(f"chunk payload{_of(payload)}: {ACL!r} must be a list of "
                             f"strings, got {type(acl).__name__}")
        return cls(
            chunk_id=payload[_CHUNK_ID],
            chunk_index=payload[_CHUNK_INDEX],
            doc_id=payload[DOC_ID],
            source=payload[SOURCE],
            uri=payload[_URI],
            title=payload[_TITLE],
            page=payload[_PAGE],
            section=payload[_SECTION],
            doc_version=payload[_DOC_VERSION],
            source_modified_at=payload[_SOURCE_MODIFIED_AT],
            ingested_at=payload[_INGESTED_AT],
            index_version=payload[_INDEX_VERSION],
            acl=tuple(acl),
            text=payload[_TEXT],
            link_target=payload.get(_LINK_TARGET),
            unit_vectors=payload.get(_UNIT_VECTORS),
        )


def stored_doc_id(payload: Mapping[str, Any]) -> str | None:
    """The document id a stored payload names, parsed or not (None if it names none): what a
    build needs to know which document an unparseable chunk belongs to."""
    doc_id = payload.get(DOC_ID) if isinstance(payload, Mapping) else None
    return doc_id if _is_str(doc_id) else None


@dataclass(frozen=True)
class ChunkHit:
    """A search result as served: a store hit (retrieval.store.Hit) whose payload parsed.

    `score` is what ranked it; `similarity` the cosine similarity of its dense vector to the
    query's, the measure of evidence strength.
    """

    point_id: str
    score: float
    payload: ChunkPayload
    similarity: float = 0.0


def _is_str(value: object) -> bool:
    return isinstance(value, str)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _of(payload: Mapping[str, Any]) -> str:
    doc_id = stored_doc_id(payload)
    return f" of {doc_id!r}" if doc_id is not None else ""


def _check(chunk: ChunkPayload, name: str, ok: bool, expected: str) -> None:
    if not ok:
        value = getattr(chunk, name)
        of = f" of {chunk.doc_id!r}" if _is_str(chunk.doc_id) else ""
        raise ValueError(f"chunk payload{of}: {name!r} must be {expected}, "
                         f"got {type(value).__name__}"
                         + (" (empty)" if isinstance(value, str | tuple | list) and not value
                            else ""))
