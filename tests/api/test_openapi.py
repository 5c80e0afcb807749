"""The OpenAPI document says what is sent, and invalid input gets a 4xx naming the field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.app import create_app
from application.services import build_services
from application.settings import load_settings
from retrieval.embedder import Embedder
from tests.conftest import Deployment, LiveServer, write_example_config

JSON = "application/json"
NATIVE, OPENAI = "/v1/search", "/v1/chat/completions"
VIEWER = "/v1/documents/{doc_id}/versions/{doc_version}"


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    app = create_app(load_settings(write_example_config(tmp_path_factory.mktemp("openapi"))))
    return app.openapi()


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _error_field(document: dict[str, Any], path: str, method: str, status: str
                 ) -> dict[str, Any]:
    """The documented schema of `error` in that response's body."""
    body = document["paths"][path][method]["responses"][status]["content"][JSON]["schema"]
    return _resolve(document, _resolve(document, body)["properties"]["error"])


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, op) for path, ops in document["paths"].items()
            for method, op in ops.items()]


STATUSES = ("400", "401", "408", "413", "422", "429", "500", "503")


@pytest.mark.parametrize(("path", "method", "status"), [
    *((OPENAI, "post", status) for status in STATUSES),
    ("/v1/models", "get", "401"), ("/v1/models", "get", "503"),
])
def test_an_openai_route_documents_its_errors_as_an_object(document: dict[str, Any], path: str,
                                                           method: str, status: str):
    error = _error_field(document, path, method, status)
    assert error["type"] == "object"
    assert set(error["required"]) == {"message", "type", "code"}
    assert error["properties"]["code"]["type"] == "integer"


@pytest.mark.parametrize(("path", "method", "status"), [
    *((NATIVE, "post", status) for status in STATUSES),
    ("/v1/admin/keys", "post", "403"), ("/v1/admin/keys/{user}", "delete", "422"),
    ("/v1/admin/documents/{doc_id}/acl", "delete", "422"),
    *((VIEWER + end, "get", status) for end in ("", "/file") for status in ("404", "422")),
])
def test_a_native_route_documents_its_errors_as_a_string(document: dict[str, Any], path: str,
                                                         method: str, status: str):
    assert _error_field(document, path, method, status)["type"] == "string"


def test_every_keyed_route_documents_401_and_the_limits_and_admin_routes_403(
        document: dict[str, Any]):
    for path, method, op in _operations(document):
        statuses = set(op["responses"])
        assert {"408", "413", "429", "500"} <= statuses, (method, path)
        if path in ("/healthz", "/readyz"):
            assert "security" not in op
            continue
        assert op["security"] == [{"apiKey": []}], (method, path)
        assert "401" in statuses, (method, path)
        assert ("403" in statuses) == path.startswith("/v1/admin/"), (method, path)
        if "requestBody" in op:
            assert {"400", "422"} <= statuses, (method, path)
    assert document["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"


def test_the_viewers_file_is_documented_as_an_attachment_of_each_media_type(
        document: dict[str, Any]):
    ok = document["paths"][VIEWER + "/file"]["get"]["responses"]["200"]
    assert {"application/pdf", "text/html", "application/octet-stream"} <= set(ok["content"])
    assert {"Content-Disposition", "X-Content-Type-Options", "Cache-Control"} <= set(
        ok["headers"])
    not_found = document["paths"][VIEWER]["get"]["responses"]["404"]["content"][JSON]["schema"]
    assert "current_version" in _resolve(document, not_found)["properties"]


def test_fastapis_own_validation_error_is_documented_nowhere(document: dict[str, Any]):
    text = json.dumps(document)
    assert "HTTPValidationError" not in text
    # The key is a security scheme, not a header parameter every route repeats.
    for path, method, op in _operations(document):
        names = [p["name"].lower() for p in op.get("parameters", [])]
        assert "authorization" not in names, (method, path)


def test_every_response_documents_x_request_id_and_refusals_their_headers(
        document: dict[str, Any]):
    for path, method, op in _operations(document):
        for status, response in op["responses"].items():
            assert response["headers"]["X-Request-ID"]["required"] is True, (method, path, status)
    search = document["paths"][NATIVE]["post"]["responses"]
    assert search["429"]["headers"]["Retry-After"]["required"] is True
    assert "Retry-After" in search["503"]["headers"]
    assert search["401"]["headers"]["WWW-Authenticate"]["required"] is True


@pytest.mark.parametrize(("path", "events"), [("/v1/chat", {"meta", "delta", "citations",
                                                             "done"}),
                                               (OPENAI, {None})])
def test_streaming_routes_document_their_events(document: dict[str, Any], path: str, events):
    content = document["paths"][path]["post"]["responses"]["200"]["content"]
    assert JSON in content
    kinds = content["text/event-stream"]["schema"]["anyOf"]
    named = {k["properties"].get("event", {}).get("const") for k in kinds
             if "contentSchema" in k["properties"]["data"]}
    assert named == events


@pytest.mark.parametrize(("method", "path", "body"), [
    ("POST", "/v1/admin/keys", {"user": "é"}),
    ("POST", "/v1/admin/keys", {"user": "a" * 65}),
    ("POST", "/v1/admin/keys", {"user": "has space"}),
    ("POST", "/v1/admin/keys", {"user": ".."}),  # no URL could revoke it
    ("DELETE", "/v1/admin/keys/%C3%A9", None),
    ("DELETE", "/v1/admin/keys/" + "a" * 65, None),
    ("DELETE", "/v1/admin/keys/a%00b", None),
])
def test_an_invalid_user_name_on_the_key_routes_is_a_422_naming_the_field(
        deployment: Deployment, method: str, path: str, body: dict[str, str] | None):
    with deployment.client("root") as admin:
        response = admin.request(method, path, json=body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error.startswith("invalid request: ") and "user" in error
    assert "Traceback" not in response.text and "internal error" not in error


@pytest.mark.parametrize(("path", "params"), [
    ("/v1/admin/policy/explain", {"user": "two words", "doc": "handbook:welcome.md"}),
    ("/v1/admin/policy/explain", {"user": "dave", "doc": ""}),
    ("/v1/admin/jobs/%00", None),
    ("/v1/admin/jobs/job-" + "x" * 300, None),
])
def test_invalid_path_and_query_parameters_are_a_422_naming_them(
        deployment: Deployment, path: str, params: dict[str, str] | None):
    with deployment.client("root") as admin:
        response = admin.get(path, params=params)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert ("query." if params else "path.") in error


@pytest.mark.parametrize(("path", "content", "headers"), [
    (NATIVE, b'{"query": "leave"', {"Content-Type": JSON}),
    (NATIVE, b"\xff", {"Content-Type": JSON}),  # not UTF-8: FastAPI's own 400
    ("/v1/chat", b"not json", {"Content-Type": JSON}),
    (OPENAI, b'{"model": "x", "messages": [}', {"Content-Type": JSON}),
])
def test_unparseable_json_is_a_400_and_audited(deployment: Deployment, path: str,
                                               content: bytes, headers: dict[str, str]):
    with deployment.client("dave") as client:
        response = client.post(path, content=content, headers=headers)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    message = error["message"] if path == OPENAI else error
    assert message.startswith("invalid request: body: not valid JSON")
    if path == OPENAI:
        assert error["type"] == "invalid_request_error" and error["code"] == 400
    request_id = response.headers["X-Request-ID"]
    records = [json.loads(line) for line in
               deployment.settings.audit_log.read_text(encoding="utf-8").splitlines()]
    refused = [r for r in records if r.get("request_id") == request_id]
    assert [(r["action"], r["outcome"], r["reason"]) for r in refused] == [
        (path, "refused", message)]


@pytest.mark.parametrize(("path", "body", "field"), [
    (NATIVE, b'{"query": "leave \\udc00"}', "query"),
    (OPENAI, b'{"model": "m", "messages": [{"role": "user", "content": "\\ud800"}]}',
     "messages.0.content"),
    (OPENAI, b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "user": "\\udfff"}',
     "user"),
    ("/v1/admin/documents/handbook:welcome.md/acl", b'{"allow": ["user:\\udc00"]}', "allow.0"),
    ("/v1/admin/policy/changes", b'{"add": ["g, user:\\udc00, group:staff"]}', "add.0"),
])
def test_a_lone_surrogate_is_a_422_naming_the_field(deployment: Deployment, path: str,
                                                    body: bytes, field: str):
    # JSON can spell one; it is not text and would fail wherever it is written as UTF-8.
    with deployment.client("root") as client:
        response = client.request("PUT" if path.endswith("/acl") else "POST", path,
                                  content=body, headers={"Content-Type": JSON})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    message = error["message"] if path == OPENAI else error
    assert f"{field}: not Unicode text" in message


@pytest.mark.parametrize(("content", "headers", "mentions"), [
    (b"[1, 2]", {"Content-Type": JSON}, "body: Input should be a valid dictionary"),
    (b'"leave"', {"Content-Type": JSON}, "body: Input should be a valid dictionary"),
    (b'{"query": "leave"}', {"Content-Type": "text/plain"}, "Content-Type: application/json"),
])
def test_a_body_that_is_not_a_json_object_is_a_422_naming_the_body(
        deployment: Deployment, content: bytes, headers: dict[str, str], mentions: str):
    with deployment.client("dave") as client:
        response = client.post(NATIVE, content=content, headers=headers)
    assert response.status_code == 422, response.text
    assert mentions in response.json()["error"]


def test_a_corrupt_key_file_is_a_500_that_says_so_without_the_path(
        tmp_path: Path, embedder: Embedder):
    settings = load_settings(write_example_config(tmp_path))
    settings.keys_file.parent.mkdir(parents=True, exist_ok=True)
    settings.keys_file.write_text("{not json", encoding="utf-8")
    app = create_app(settings, build_services(settings, embedder=embedder))
    with LiveServer(app) as url:
        native = httpx.get(f"{url}/v1/admin/pause", headers={"Authorization": "Bearer clr_x"})
        openai = httpx.get(f"{url}/v1/models", headers={"Authorization": "Bearer clr_x"})
    assert native.status_code == openai.status_code == 500
    assert "API key file cannot be used" in native.json()["error"]
    assert openai.json()["error"]["type"] == "server_error"
    assert str(settings.keys_file) not in native.text + openai.text
