"""The MCP server at /mcp (Streamable HTTP, the official `mcp` SDK): the tools `search` and
`fetch`, answered as the caller by the same use cases as /v1/search (application/answering.py).

Who the caller is comes from the API's own authentication, `api.deps.get_scope`, run on every
request to /mcp: an API key, or an access token whose audience is this MCP server (the
`mcp_audience` of an `[[oidc.issuers]]` entry; a token for the API is refused here, as an MCP
token is refused by the API). The token is checked and never passed on. Without a valid
credential the answer is 401 with `WWW-Authenticate: Bearer resource_metadata="..."`, which
points at the Protected Resource Metadata (RFC 9728) at
/.well-known/oauth-protected-resource/mcp: it names the issuers an MCP client signs in with.
Deactivated users, lockouts and rate limits apply as on the API. A paused service refuses tool
calls; every call is audited like the route it mirrors (action "search" or "fetch").
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.transport_security import TransportSecuritySettings
from starlette.concurrency import run_in_threadpool
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from api.deps import Public, get_limits, get_request_id, get_scope, get_services
from api.routes.search import search_result
from application.documents import document_fields
from application.services import Services
from retrieval.errors import RetrievalError
from retrieval.scope import Scope as CallerScope

MCP_PATH = "/mcp"
METADATA_PATH = "/.well-known/oauth-protected-resource/mcp"
MAX_TOP_K = 50


def _caller(ctx: Context) -> tuple[Services, CallerScope, str]:
    """The services, the caller's scope and the request id, as McpEndpoint left them."""
    request = ctx.request_context.request
    if request is None or not hasattr(request.state, "caller_scope"):
        raise ToolError("this tool is served over HTTP at /mcp only")
    services: Services = request.state.services  # request.app is the SDK's own app here
    scope: CallerScope = request.state.caller_scope
    request_id: str = request.state.request_id
    state = services.pause.current()
    if state.service_paused:
        message = state.service_message()
        services.retrieval.record_refusal("mcp", request_id, message,
                                          caller=f"user:{scope.user}")
        raise ToolError(message)
    return services, scope, request_id


def build_mcp_server() -> MCPServer:
    """The tools, over whatever services the app holds."""
    server = MCPServer("clearance", instructions=(
        "Search the organisation's documents that you may read, and fetch one by its doc_id. "
        "Every result cites its source, page, document version, modified and ingested time."))

    @server.tool()
    def search(query: str, ctx: Context, top_k: int = 5) -> dict[str, Any]:
        """The passages you may read that best match `query`, best first, each with its
        document id, title, page, document version, and modified and ingested times."""
        services, scope, request_id = _caller(ctx)
        if not query.strip() or not 1 <= top_k <= MAX_TOP_K:
            raise ToolError(f"give a non-empty query and a top_k from 1 to {MAX_TOP_K}")
        try:
            retrieved = services.retrieval.search(query, scope=scope, top_k=top_k,
                                                  request_id=request_id)
        except RetrievalError as exc:
            raise ToolError(f"the index is unavailable now: {exc}") from None
        return {"request_id": request_id, "index_version": retrieved.index_version,
                "results": [search_result(h) for h in retrieved.hits]}

    @server.tool()
    def fetch(doc_id: str, ctx: Context) -> dict[str, Any]:
        """The text and metadata of one document you may read (`doc_id` as `search` gives
        it, SOURCE:PATH): its whole text, and its sections (chunks) in order, each with its
        chunk id, page and section heading."""
        services, scope, request_id = _caller(ctx)
        try:
            retrieved = services.retrieval.fetch(doc_id, scope=scope,
                                                 request_id=request_id).retrieved
        except RetrievalError as exc:
            raise ToolError(f"the index is unavailable now: {exc}") from None
        if not retrieved.hits:  # one that does not exist, or one the caller may not read
            raise ToolError(f"no document {doc_id!r} that you can read")
        return {"request_id": request_id, **document_fields(retrieved),
                "chunks": len(retrieved.hits),
                "text": "\n\n".join(h.payload.text for h in retrieved.hits)}

    return server


class McpEndpoint:
    """The ASGI app at /mcp: the API's authentication first, then the SDK's transport."""

    def __init__(self, inner: ASGIApp) -> None:
        self._inner = inner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        request.state.resource = "mcp"  # OIDC tokens must be for the MCP server's audience
        request_id = get_request_id(request)
        try:
            caller = await run_in_threadpool(
                get_scope, request, get_services(request), get_limits(request), request_id,
                request.headers.get("authorization"))
        except HTTPException as exc:
            headers = dict(exc.headers or {})
            if exc.status_code == 401:
                metadata = str(request.base_url).rstrip("/") + METADATA_PATH
                headers["WWW-Authenticate"] = f'Bearer resource_metadata="{metadata}"'
            headers["X-Request-ID"] = request_id
            await JSONResponse({"error": exc.detail, "request_id": request_id},
                               status_code=exc.status_code, headers=headers)(scope, receive, send)
            return
        request.state.caller_scope = caller
        request.state.services = get_services(request)
        await self._inner(scope, receive, send)


def install_mcp(app: FastAPI, services: Services
                ) -> Callable[[], AbstractAsyncContextManager[None]]:
    """Add /mcp and its resource metadata to the app; returns the context manager that runs the
    MCP sessions, for the app's lifespan."""
    server = build_mcp_server()
    transport = server.streamable_http_app(
        streamable_http_path=MCP_PATH, stateless_http=True, json_response=True,
        # Every request is authenticated, and the public host name is the deployment's own.
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False))
    # POST only: the transport is stateless, and a GET would hold an event stream open for as
    # long as the client keeps it (the spec lets a server answer it 405).
    app.router.routes.append(Route(MCP_PATH, McpEndpoint(transport),
                                   methods=["POST"]))

    @app.get(METADATA_PATH, include_in_schema=False, dependencies=[Public])
    def protected_resource_metadata(request: Request) -> JSONResponse:
        """RFC 9728: what /mcp is and which authorization servers issue tokens for it."""
        base = str(request.base_url).rstrip("/")
        return JSONResponse({
            "resource": base + MCP_PATH,
            "authorization_servers": services.oidc.mcp_issuers(),
            "bearer_methods_supported": ["header"],
            "resource_name": "Clearance",
            "resource_documentation": base + "/docs",
        })

    @asynccontextmanager
    async def sessions() -> AsyncIterator[None]:
        async with server.session_manager.run():
            yield

    return sessions
