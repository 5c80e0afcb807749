"""How errors become HTTP responses: a clear message and the request id, never a traceback."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.deps import get_request_id
from application.errors import AdminError, Invalid, NoReadableVersion
from application.provisioning import SCIM_ERROR, SCIM_MEDIA_TYPE, SCIM_PREFIX, ScimFailure
from control.errors import AuditReadError, StateUnreadable, StateWriteError
from control.keys import KeyStoreError
from retrieval.errors import AuditWriteError, NoIndexError, StoreError

log = logging.getLogger(__name__)

# Calls whose refusals are audited too: every retrieval attempt leaves a record.
AUDITED_PATHS = frozenset({"/v1/search", "/v1/chat", "/v1/chat/completions"})
# Calls made by OpenAI clients, which expect {"error": {"message": ..., "type": ...}}.
OPENAI_PATHS = frozenset({"/v1/chat/completions", "/v1/models"})
_OPENAI_TYPES = {401: "authentication_error", 403: "permission_error", 404: "not_found_error",
                 429: "rate_limit_error", 503: "service_unavailable"}
_AUDIT_FAILED = "the audit log could not be written; the request was not answered"
_FASTAPI_UNREADABLE = "There was an error parsing the body"  # fastapi/routing.py


def _error(request: Request, status: int, message: str, **extra: object) -> JSONResponse:
    request_id = get_request_id(request)
    # A message quoting input may hold what UTF-8 cannot encode (a lone surrogate): escape it.
    message = message.encode("utf-8", "backslashreplace").decode("utf-8")
    if request.url.path.startswith(SCIM_PREFIX):
        return _scim_error(status, {"schemas": [SCIM_ERROR], "status": str(status),
                                    "detail": message}, request_id)
    error: object = message
    if request.url.path in OPENAI_PATHS:
        kind = _OPENAI_TYPES.get(status, "invalid_request_error" if status < 500 else
                                 "server_error")
        error = {"message": message, "type": kind, "code": status}
    return JSONResponse(
        status_code=status,
        content={"error": error, "request_id": request_id, **extra},
        headers={"X-Request-ID": request_id},
    )


def _scim_error(status: int, body: dict[str, Any], request_id: str) -> JSONResponse:
    """A SCIM Error (RFC 7644 §3.12), as identity providers read it."""
    return JSONResponse(status_code=status, content=body, media_type=SCIM_MEDIA_TYPE,
                        headers={"X-Request-ID": request_id})


def _field(loc: tuple[object, ...]) -> str:
    return ".".join(str(p) for p in loc if p != "body") or "body"


def _problem(error: dict[str, Any]) -> str:
    loc = tuple(error["loc"])
    if error.get("type") == "json_invalid":
        # FastAPI's loc is ("body", <character offset>): not a field.
        ctx = error.get("ctx")
        detail = ctx.get("error") if isinstance(ctx, dict) else None
        return f"body: not valid JSON ({detail} at character {loc[-1]})"
    if loc == ("body",) and isinstance(error.get("input"), bytes):
        return "body: send a JSON object, with Content-Type: application/json"
    # Our own validators' messages say what is wrong; pydantic's "Value error, " adds nothing.
    return f"{_field(loc)}: {str(error['msg']).removeprefix('Value error, ')}"


def _refuse(request: Request, status: int, message: str) -> JSONResponse:
    """Answer invalid input; on the audited paths, only once the refusal is on record."""
    if request.url.path in AUDITED_PATHS:
        try:
            services = request.app.state.services
            services.retrieval.record_refusal(request.url.path, get_request_id(request), message)
        except AuditWriteError:
            return _error(request, 500, _AUDIT_FAILED)
    return _error(request, status, message)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid_input(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        message = "invalid request: " + "; ".join(_problem(e) for e in errors)
        # A body that is not JSON at all is 400, like one FastAPI cannot decode; JSON that does
        # not fit the schema is 422.
        unparseable = any(e.get("type") == "json_invalid" for e in errors)
        return _refuse(request, 400 if unparseable else 422, message)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and exc.detail == _FASTAPI_UNREADABLE:
            # A body FastAPI could not decode (not UTF-8, say): invalid input like any other.
            cause = f" ({type(exc.__cause__).__name__})" if exc.__cause__ else ""
            return _refuse(request, 400, f"invalid request: body: not valid JSON{cause}")
        response = _error(request, exc.status_code, str(exc.detail))
        response.headers.update(exc.headers or {})
        return response

    @app.exception_handler(ScimFailure)
    async def scim_refused(request: Request, exc: ScimFailure) -> JSONResponse:
        return _scim_error(exc.status, exc.body, get_request_id(request))

    @app.exception_handler(KeyStoreError)
    async def key_store_error(request: Request, exc: KeyStoreError) -> JSONResponse:
        log.error("%s", exc)
        return _error(request, 500, "the API key file cannot be used; an operator must repair "
                      "it (the server log says why)")

    @app.exception_handler(AdminError)
    async def admin_refused(request: Request, exc: AdminError) -> JSONResponse:
        prefix = "invalid request: " if isinstance(exc, Invalid) else ""
        return _error(request, exc.status, prefix + str(exc))

    @app.exception_handler(NoReadableVersion)
    async def no_readable_version(request: Request, exc: NoReadableVersion) -> JSONResponse:
        # Only a caller who may read the document is told its current version.
        current = {"current_version": exc.current_version} if exc.current_version else {}
        return _error(request, exc.status, str(exc), **current)

    @app.exception_handler(StateUnreadable)
    async def state_unreadable(request: Request, exc: StateUnreadable) -> JSONResponse:
        log.error("%s", exc)
        return _error(request, 503, f"the service's state cannot be read: {exc}")

    @app.exception_handler(AuditReadError)
    async def audit_unreadable(request: Request, exc: AuditReadError) -> JSONResponse:
        log.error("%s", exc)
        return _error(request, 503, "the audit log cannot be read now; try again later")

    @app.exception_handler(StateWriteError)
    async def state_unwritable(request: Request, exc: StateWriteError) -> JSONResponse:
        log.error("%s", exc)
        return _error(request, 503, "the change could not be saved; nothing changed, try "
                      "again later")

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
        return _error(request, 500, _AUDIT_FAILED)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s", request.url.path)
        if request.url.path in AUDITED_PATHS:
            # Its record may already say "ok": a follow-up says it failed.
            try:
                request.app.state.services.retrieval.record_failure(
                    request.url.path, get_request_id(request),
                    f"internal error: {type(exc).__name__}")
            except AuditWriteError as audit_exc:
                log.error("%s", audit_exc)
        return _error(request, 500, "internal error; quote the request id to an operator")
