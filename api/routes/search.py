"""POST /v1/search: permitted chunks for a query."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import CallerDep, RequestIdDep, ServicesDep
from api.openapi import BODY, KEYED, errors
from api.schemas import SearchRequest, SearchResponse
from retrieval.payload import ChunkHit

router = APIRouter()


@router.post(
    "/v1/search",
    response_model=SearchResponse,
    responses=errors(*KEYED, *BODY, 503),
)
def search(
    body: SearchRequest, scope: CallerDep, services: ServicesDep, request_id: RequestIdDep
) -> dict[str, Any]:
    retrieved = services.retrieval.search(
        body.query, scope=scope, top_k=body.top_k, request_id=request_id, mode=body.search_mode
    )
    return {
        "request_id": request_id,
        "index_version": retrieved.index_version,
        "search_mode": retrieved.mode,
        "results": [search_result(h) for h in retrieved.hits],
    }


def search_result(hit: ChunkHit) -> dict[str, Any]:
    """One hit as /v1/search and the MCP tool `search` show it."""
    p = hit.payload
    return {"chunk_id": hit.point_id, "score": hit.score, "similarity": hit.similarity,
            "doc_id": p.doc_id, "source": p.source, "title": p.title, "uri": p.uri,
            "page": p.page, "doc_version": p.doc_version,
            "source_modified_at": p.source_modified_at, "ingested_at": p.ingested_at,
            "text": p.text}
