"""Every route of the app declares the permission it needs; none is left unguarded."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from api.app import create_app
from api.deps import CALLER, PROVISIONING, PUBLIC
from api.mcp_server import MCP_PATH, McpEndpoint
from application.settings import load_settings
from tests.conftest import write_example_config

# FastAPI's own documentation routes: no data, no key.
DOC_ROUTES = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}


def _routes(routes: list[Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(full path, route) for every route, into included routers (FastAPI wraps them)."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from _routes(included.routes, prefix + route.include_context.prefix)
        else:
            yield prefix + getattr(route, "path", ""), route


def _permissions(dependant: Dependant) -> Iterator[Any]:
    for dep in dependant.dependencies:
        permission = getattr(dep.call, "permission", None)
        if permission is not None:
            yield permission
        yield from _permissions(dep)


def test_every_route_declares_exactly_one_permission(tmp_path: Path):
    app = create_app(load_settings(write_example_config(tmp_path)))
    declared: dict[str, list[Any]] = {}
    for path, route in _routes(app.routes):
        if not isinstance(route, APIRoute):
            # /mcp authenticates every request itself, with the API's own get_scope.
            assert path in DOC_ROUTES or (path == MCP_PATH and isinstance(
                route.endpoint, McpEndpoint)), f"unexpected route {path}: {route}"
            continue
        declared[f"{sorted(route.methods)} {path}"] = list(_permissions(route.dependant))
    assert len(declared) >= 24  # all of them were found (5 public+caller, 19 admin)
    missing = [name for name, perms in declared.items() if not perms]
    assert not missing, f"routes that declare no permission: {missing}"
    several = {name: perms for name, perms in declared.items() if len(set(perms)) > 1}
    assert not several, f"routes with more than one permission: {several}"
    # Only health, readiness, /metrics (which checks its own token), the web page's static
    # files and its sign-in (which checks the credential it is given) take no API key; only
    # search, chat, the OpenAI-compatible routes and feedback run on the caller's own access,
    assert sorted(n for n, p in declared.items() if p[0] == PUBLIC) == [
        "['GET'] /", "['GET'] /.well-known/oauth-protected-resource/mcp",
        "['GET'] /auth/callback", "['GET'] /auth/login", "['GET'] /auth/options",
        "['GET'] /auth/session", "['GET'] /documents/{doc_id:path}/versions/{doc_version}",
        "['GET'] /healthz", "['GET'] /metrics", "['GET'] /readyz", "['GET'] /static/{name}",
        "['POST'] /auth/key", "['POST'] /auth/logout"]
    # ... and the source viewer, which re-checks the caller's access to the document.
    assert sorted(n for n, p in declared.items() if p[0] == CALLER) == [
        "['GET'] /v1/documents/{doc_id:path}/versions/{doc_version}",
        "['GET'] /v1/documents/{doc_id:path}/versions/{doc_version}/file",
        "['GET'] /v1/models", "['POST'] /v1/chat", "['POST'] /v1/chat/completions",
        "['POST'] /v1/feedback", "['POST'] /v1/search"]
    scim = [n for n in declared if "/scim/v2/" in n]
    assert len(scim) == 20 and all(declared[n] == [PROVISIONING] for n in scim)
    admin = [n for n in declared if "/v1/admin/" in n]
    assert admin and all(declared[n][0] not in (PUBLIC, CALLER) for n in admin)


def test_the_check_fails_on_an_undeclared_route(tmp_path: Path):
    app = create_app(load_settings(write_example_config(tmp_path)))

    @app.get("/v1/admin/forgotten")
    def forgotten() -> dict[str, str]:
        return {}

    route = next(r for p, r in _routes(app.routes) if p == "/v1/admin/forgotten")
    assert isinstance(route, APIRoute)
    assert list(_permissions(route.dependant)) == []
