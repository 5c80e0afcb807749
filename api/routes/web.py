"""The staff web page: GET / (ask, read the answer and its citations, rate it) and the source
viewer's page, GET /documents/{doc_id}/versions/{doc_version}.

Both are static files of this package (api/static/): no data is in them, so they need no key;
their scripts call the API with the session cookie (api/routes/signin.py), and the API checks
the caller's permission on every call, the viewer's document included
(GET /v1/documents/{doc_id}/versions/{doc_version}).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

from api.deps import Public, ServicesDep
from api.web_cookies import PAGE_HEADERS
from application.services import Services

router = APIRouter()
STATIC = Path(__file__).resolve().parent.parent / "static"
# Every file the page is made of, by the name it is served under: nothing else is served.
ASSETS = {
    "app.js": "text/javascript; charset=utf-8",
    "viewer.js": "text/javascript; charset=utf-8",
    "page.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}


def _page(services: Services, name: str, media_type: str) -> FileResponse:
    if not services.settings.web.enabled:
        raise HTTPException(status_code=404, detail="the web page is turned off ([web] "
                                                    "enabled = false)")
    return FileResponse(STATIC / name, media_type=media_type, headers=PAGE_HEADERS)


@router.get("/", dependencies=[Public], include_in_schema=False)
def chat_page(services: ServicesDep) -> FileResponse:
    return _page(services, "index.html", "text/html; charset=utf-8")


@router.get("/documents/{doc_id:path}/versions/{doc_version}", dependencies=[Public],
            include_in_schema=False)
def viewer_page(doc_id: str, doc_version: str, services: ServicesDep) -> FileResponse:
    return _page(services, "viewer.html", "text/html; charset=utf-8")


@router.get("/static/{name}", dependencies=[Public], include_in_schema=False)
def page_asset(name: str, services: ServicesDep) -> FileResponse:
    media_type = ASSETS.get(name)
    if media_type is None:
        raise HTTPException(status_code=404, detail=f"no page asset {name!r}")
    return _page(services, name, media_type)
