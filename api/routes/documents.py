"""GET /v1/documents/{doc_id}/versions/{doc_version}[/file]: the source viewer, a cited document
version as the caller may read it now, and its original (application/documents.py).

A document id holds slashes (`engineering:platform/oncall-runbook.md`), so it is a path
parameter; the file route is declared first. Both refuse a document that does not exist, one the
caller may not read and a version not in the current index with the same 404.
"""

from __future__ import annotations

import re
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, Field

from api.deps import CallerDep, RequestIdDep, ServicesDep
from api.openapi import KEYED, errors
from api.schemas import NotReadableResponse
from application.documents import Original
from ingest.parser import MEDIA_TYPES
from policies.principals import normalize

router = APIRouter(prefix="/v1/documents")

DocId = Annotated[str, Path(min_length=1, max_length=2000,
                            description="A document id, SOURCE:PATH, as a citation gives it")]
DocVersion = Annotated[str, Path(pattern=r"^[0-9a-f]{64}$",
                                 description="The document version: sha256 of the file, hex")]
CitedChunk = Annotated[str | None, Query(min_length=1, max_length=200, description=(
    "The cited chunk (a citation's `chunk_ids`), flagged `cited` among the sections"))]
_NOT_READABLE = ("No document version of that id that the caller may read now: one that does "
                 "not exist, one they may not read and a version not in the current index get "
                 "the same response; where they may read the document, `current_version` names "
                 "its version in the current index")
_NO_STORE = {"Cache-Control": "no-store"}  # what the caller may read can change at any time
_STRING = {"schema": {"type": "string"}, "required": True}


class Section(BaseModel):
    chunk_id: str
    chunk_index: int = Field(description="0-based position in the document")
    page: int | None
    section: str | None = Field(description="The nearest heading above it, where known")
    text: str
    cited: bool = Field(description="Whether this is the chunk named by `chunk`")


class OriginalFile(BaseModel):
    available: bool = Field(description="Whether the original file is at its source with this "
                                        "version's bytes now")
    media_type: str
    size_bytes: int | None = Field(description="Its size, when available")
    url: str | None = Field(description="Where to download it (a path on this API), when "
                                        "available")


class DocumentResponse(BaseModel):
    request_id: str
    index_version: str
    doc_id: str
    source: str
    title: str
    uri: str
    doc_version: str
    source_modified_at: str
    ingested_at: str
    pages: list[int]
    sections: list[Section]
    complete: bool = Field(description="False when the document has more passages than one "
                                       "response holds (2000): `sections` are then some of them")
    file: OriginalFile


def _file_url(doc_id: str, doc_version: str) -> str:
    return f"{router.prefix}/{quote(doc_id, safe='/:')}/versions/{doc_version}/file"


def _attachment(name: str) -> str:
    """A Content-Disposition that saves the file under its own name and never shows it."""
    fallback = re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip(".") or "document"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


@router.get(
    "/{doc_id:path}/versions/{doc_version}/file",
    response_class=Response,
    responses={
        200: {"description": "The original file, as an attachment",
              "content": {t: {"schema": {"type": "string", "format": "binary"}}
                          for t in sorted(MEDIA_TYPES)},
              "headers": {h: _STRING for h in ("Content-Disposition", "X-Content-Type-Options",
                                                "Cache-Control")}},
        **errors(*KEYED, 422, 503),
        404: {"model": NotReadableResponse, "description": _NOT_READABLE + "; for a caller "
              "who may read it, also a file no longer at its source with this version's bytes"},
    },
)
def download(doc_id: DocId, doc_version: DocVersion, scope: CallerDep, services: ServicesDep,
             request_id: RequestIdDep) -> Response:
    original: Original = services.documents.download(normalize(doc_id), doc_version,
                                                     scope=scope, request_id=request_id)
    # Content-Type given as a header: as a media_type, Starlette would add a charset to a text
    # type, and the file's encoding is not known.
    return Response(original.content, headers={
        "Content-Type": original.media_type,
        "Content-Disposition": _attachment(original.name), "X-Content-Type-Options": "nosniff",
        # Even if a browser showed it, it could run nothing: no script, no same-origin access.
        "Content-Security-Policy": "sandbox", **_NO_STORE})


@router.get(
    "/{doc_id:path}/versions/{doc_version}",
    response_model=DocumentResponse,
    responses={**errors(*KEYED, 422, 503),
               404: {"model": NotReadableResponse, "description": _NOT_READABLE}},
)
def view(doc_id: DocId, doc_version: DocVersion, scope: CallerDep, services: ServicesDep,
         request_id: RequestIdDep, response: Response, chunk: CitedChunk = None
         ) -> dict[str, Any]:
    shown = services.documents.view(normalize(doc_id), doc_version, scope=scope,
                                    request_id=request_id, chunk=chunk)
    response.headers.update(_NO_STORE)
    content = shown.original.content
    return {"request_id": request_id, **shown.fields, "file": {
        "available": content is not None, "media_type": shown.original.media_type,
        "size_bytes": None if content is None else len(content),
        "url": None if content is None else _file_url(shown.fields["doc_id"], doc_version)}}
