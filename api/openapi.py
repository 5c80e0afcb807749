"""The OpenAPI document as the service answers: each route's error statuses, bodies and headers.

Routes declare what they may answer besides their result with `errors(...)`, so FastAPI documents
each status with the body really sent: ErrorResponse (`error` a string) on the native routes,
OpenAIErrorResponse (`error` an object) on the OpenAI-compatible ones, never FastAPI's own
validation-error schema (`document(app)` replaces any it added, on a route with a path or query
parameter). It also adds what every response carries (X-Request-ID), and states the API key as
a bearer scheme instead of a header parameter.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from api.errors import OPENAI_PATHS
from api.openai_protocol import OpenAIErrorResponse
from api.schemas import ErrorResponse

_WHEN = {
    400: "The body could not be read as JSON (malformed, or not UTF-8)",
    401: "No API key, a malformed Authorization header, or an unknown or revoked key",
    403: "The caller's roles do not grant this action",
    404: "Not found",
    408: "The body did not arrive within the configured time",
    409: "In conflict with the current state",
    413: "The body is larger than the configured limit",
    422: "Invalid input: the message names the field and why",
    429: "Too many requests from this key or address: wait Retry-After seconds",
    500: "The audit log could not be written, or an internal error: quote the request id",
    503: "The service is paused by an administrator, or no index version can be searched",
}
_HEADERS: dict[int, dict[str, dict[str, Any]]] = {
    401: {"WWW-Authenticate": {"description": "Bearer", "required": True,
                               "schema": {"type": "string"}}},
    429: {"Retry-After": {"description": "Seconds to wait before trying again",
                          "required": True, "schema": {"type": "integer"}}},
    503: {"Retry-After": {"description": "Seconds to wait, when the service is paused",
                          "schema": {"type": "integer"}}},
}
REQUEST_ID = {"description": "The request's id, as in the body and the audit log",
              "required": True, "schema": {"type": "string"}}
EVENT_STREAM = "text/event-stream"

LIMITS = (408, 413, 429)  # every route: body time and size, rate limits (api/http_limits.py)
KEYED = (401, *LIMITS, 500)  # every route behind an API key
ADMIN = (*KEYED, 403)  # ... that also needs a Casbin permission
BODY = (400, 422)  # every route that reads a JSON body
SCHEME = "apiKey"
_FASTAPI_422 = "#/components/schemas/HTTPValidationError"


def errors(*statuses: int, openai: bool = False, when: dict[int, str] | None = None
           ) -> dict[int | str, dict[str, Any]]:
    """`responses=` for these statuses, each with its error body and headers."""
    model = OpenAIErrorResponse if openai else ErrorResponse
    described = {**_WHEN, **(when or {})}
    return {status: {"model": model, "description": described[status],
                     **({"headers": _HEADERS[status]} if status in _HEADERS else {})}
            for status in statuses}


def event_stream(description: str, events: dict[str | None, dict[str, Any]],
                 done: str | None = None) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a 200 that is JSON, or server-sent events when the body asks to stream.

    Each key of `events` is an event's name (None: unnamed), its value the JSON schema of the
    event's data; `done` is a literal last data line (OpenAI's "[DONE]"). In OpenAPI 3.1 the
    `schema` of text/event-stream describes one event.
    """
    kinds: list[dict[str, Any]] = []
    for name, data in events.items():
        kind: dict[str, Any] = {"type": "object", "required": ["data"], "properties": {"data": {
            "type": "string", "contentMediaType": "application/json", "contentSchema": data}}}
        if name is not None:
            kind["required"] = ["event", "data"]
            kind["properties"]["event"] = {"const": name}
        kinds.append(kind)
    if done is not None:
        kinds.append({"type": "object", "required": ["data"],
                      "properties": {"data": {"const": done}}})
    return {200: {"description": description,
                  "content": {EVENT_STREAM: {"schema": {"anyOf": kinds}}}}}


def ref(model: str) -> dict[str, str]:
    """A reference to a model already in the document's components."""
    return {"$ref": f"#/components/schemas/{model}"}


def json_object(required: dict[str, Any], optional: dict[str, Any] | None = None
                ) -> dict[str, Any]:
    """The JSON schema of an object with these properties."""
    return {"type": "object", "required": list(required),
            "properties": {**required, **(optional or {})}}


def document(app: FastAPI) -> None:
    """Make `app.openapi()` name the bearer key scheme and X-Request-ID on every response."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            for path, operations in schema.get("paths", {}).items():
                for operation in operations.values():
                    _bearer(operation)
                    responses = operation.get("responses", {})
                    if _FASTAPI_422 in str(responses.get("422")):
                        responses["422"] = _error_doc(422, openai=path in OPENAI_PATHS)
                    for response in responses.values():
                        response["headers"] = {**response.get("headers", {}),
                                               "X-Request-ID": REQUEST_ID}
            components = schema.setdefault("components", {})
            components["securitySchemes"] = {SCHEME: {
                "type": "http", "scheme": "bearer",
                "description": "A key from `clearance keys create NAME` or POST /v1/admin/keys",
            }}
            for unused in ("HTTPValidationError", "ValidationError"):  # none refers to them now
                components.get("schemas", {}).pop(unused, None)
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]


def _error_doc(status: int, *, openai: bool) -> dict[str, Any]:
    """What `errors(status)` documents, written straight into the document."""
    model = OpenAIErrorResponse if openai else ErrorResponse
    return {"description": _WHEN[status],
            "content": {"application/json": {"schema": ref(model.__name__)}}}


def _bearer(operation: dict[str, Any]) -> None:
    """The Authorization header parameter becomes the route's security requirement."""
    params = operation.get("parameters", [])
    kept = [p for p in params if not (p["in"] == "header" and p["name"].lower() == "authorization")]
    if len(kept) == len(params):
        return
    operation["security"] = [{SCHEME: []}]
    if kept:
        operation["parameters"] = kept
        return
    operation.pop("parameters")
    # FastAPI documents a 422 for any parameter; a route whose only one was the key sends none.
    if "requestBody" not in operation and _FASTAPI_422 in str(operation["responses"].get("422")):
        del operation["responses"]["422"]
