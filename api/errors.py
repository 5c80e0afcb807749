"""How errors become HTTP responses: a clear message and the request id, never a traceback."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.deps import get_request_id
from retrieval.errors import AuditWriteError, NoIndexError, StoreError

log = logging.getLogger(__name__)

# Calls whose refusals are audited too: every retrieval attempt leaves a record.
AUDITED_PATHS = frozenset({"/v1/search", "/v1/chat", "/v1/chat/completions"})
# Calls made by OpenAI clients, which expect {"error": {"message": ..., "type": ...}}.
OPENAI_PATHS = frozenset({"/v1/chat/completions", "/v1/models"})
_OPENAI_TYPES = {401: "authentication_error", 403: "permission_error", 404: "not_found_error",
                 422: "invalid_request_error", 503: "service_unavailable"}


def _error(request: Request, status: int, message: str) -> JSONResponse:
    request_id = get_request_id(request)
    error: object = message
    if request.url.path in OPENAI_PATHS:
        error = {"message": message, "type": _OPENAI_TYPES.get(status, "server_error"),
                 "code": status}
    return JSONResponse(
        status_code=status,
        content={"error": error, "request_id": request_id},
        headers={"X-Request-ID": request_id},
    )


def _field(loc: tuple[object, ...]) -> str:
    return ".".join(str(p) for p in loc if p != "body") or "body"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid_input(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [f"{_field(tuple(e['loc']))}: {e['msg']}" for e in exc.errors()]
        message = "invalid request: " + "; ".join(problems)
        if request.url.path in AUDITED_PATHS:
            try:
                services = request.app.state.services
                services.retrieval.record_refusal(request.url.path, get_request_id(request),
                                                  message)
            except AuditWriteError:
                return _error(request, 500, "the audit log could not be written; "
                              "the request was not answered")
        return _error(request, 422, message)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        response = _error(request, exc.status_code, str(exc.detail))
        response.headers.update(exc.headers or {})
        return response

    @app.exception_handler(NoIndexError)
    async def no_index(request: Request, exc: NoIndexError) -> JSONResponse:
        return _error(request, 503, str(exc))

    @app.exception_handler(StoreError)
    async def store_error(request: Request, exc: StoreError) -> JSONResponse:
        log.error("store error: %s", exc)
        return _error(request, 503, f"the index is unavailable: {exc}")

    @app.exception_handler(AuditWriteError)
    async def audit_error(request: Request, exc: AuditWriteError) -> JSONResponse:
        log.error("%s", exc)
        return _error(request, 500, "the audit log could not be written; "
                      "the request was not answered")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s", request.url.path)
        return _error(request, 500, "internal error; quote the request id to an operator")
