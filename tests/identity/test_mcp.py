"""The MCP server at /mcp (api/mcp_server.py), driven by the official `mcp` SDK client (pinned)
against the identity deployment's running server: tools listed, `search` as two users with
different groups equal to what /v1/search gives each, `fetch`, and who may call at all."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import httpx2
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from tests.identity.conftest import MCP_AUDIENCE, IdentityWorld

QUERIES = ["parental leave", "security passwords laptops", "expenses meals hotel",
           "salary bands", "welcome new employee"]


async def _session_calls(url: str, bearer: str, calls: list[tuple[str, dict[str, Any]]]
                         ) -> tuple[list[str], list[Any]]:
    """(the tools listed, each call's result: structured content, or ("error", text))."""
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {bearer}"},
                                  timeout=60) as http, \
            streamable_http_client(url + "/mcp", http_client=http) as streams, \
            ClientSession(streams[0], streams[1]) as session:
        await session.initialize()
        tools = [t.name for t in (await session.list_tools()).tools]
        results: list[Any] = []
        for name, arguments in calls:
            result = await session.call_tool(name, arguments)
            if result.is_error:
                results.append(("error", " ".join(getattr(c, "text", "") for c in
                                                  result.content)))
            else:
                results.append(result.structured_content or json.loads(result.content[0].text))
        return tools, results


def mcp_calls(url: str, bearer: str, calls: list[tuple[str, dict[str, Any]]]
              ) -> tuple[list[str], list[Any]]:
    return asyncio.run(_session_calls(url, bearer, calls))


def _ranked(results: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(r["chunk_id"], r["doc_id"]) for r in results]


def test_search_over_mcp_is_what_v1_search_gives_each_user(identity_world: IdentityWorld):
    deployed = identity_world.deployed
    seen: dict[str, list[list[tuple[str, str]]]] = {}
    for user in ("alice", "dave"):
        tools, results = mcp_calls(deployed.url, deployed.keys[user],
                                   [("search", {"query": q, "top_k": 10}) for q in QUERIES])
        assert sorted(tools) == ["fetch", "search"]
        with deployed.client(user) as client:
            expected = [_ranked(client.post("/v1/search", json={"query": q, "top_k": 10}
                                            ).json()["results"]) for q in QUERIES]
        got = [_ranked(r["results"]) for r in results]
        assert got == expected
        assert all(r["results"] and {"doc_version", "source_modified_at", "ingested_at",
                                     "page", "title"} <= set(r["results"][0]) for r in results)
        seen[user] = got
    assert seen["alice"] != seen["dave"]  # different groups, different documents
    alice_docs = {d for ranked in seen["alice"] for _, d in ranked}
    assert "hr:salary-bands.docx" in alice_docs
    assert "hr:salary-bands.docx" not in {d for ranked in seen["dave"] for _, d in ranked}


def test_fetch_gives_a_permitted_document_and_the_same_answer_for_forbidden_and_unknown(
        identity_world: IdentityWorld):
    deployed = identity_world.deployed
    _, (own, forbidden, unknown) = mcp_calls(deployed.url, deployed.keys["alice"], [
        ("fetch", {"doc_id": "hr:salary-bands.docx"}),
        ("fetch", {"doc_id": "finance:reports/q3-budget.html"}),
        ("fetch", {"doc_id": "finance:reports/no-such.html"})])
    assert own["doc_id"] == "hr:salary-bands.docx" and own["chunks"] >= 1
    assert own["text"].strip() and own["doc_version"] and own["ingested_at"]
    assert own["source_modified_at"]
    # Described as the source viewer describes it (application/documents.py document_fields).
    assert "\n\n".join(s["text"] for s in own["sections"]) == own["text"]
    assert [s["chunk_index"] for s in own["sections"]] == list(range(own["chunks"]))
    assert forbidden[0] == unknown[0] == "error"
    assert forbidden[1].replace("q3-budget", "X") == unknown[1].replace("no-such", "X")
    records = [json.loads(line) for line in
               deployed.settings.audit_log.read_text("utf-8").splitlines() if line.strip()]
    fetches = [r for r in records if r.get("action") == "fetch" and r["caller"] == "user:alice"]
    assert [r["outcome"] for r in fetches[-3:]] == ["ok", "empty", "empty"]
    assert all(r["index_version"] and "policy_version" in r for r in fetches[-3:])


def test_mcp_accepts_tokens_for_itself_only_and_names_its_issuer(identity_world: IdentityWorld):
    world = identity_world
    url = world.deployed.url
    for_mcp = world.idp.token(sub="dave", aud=MCP_AUDIENCE)
    tools, (found,) = mcp_calls(url, for_mcp, [("search", {"query": QUERIES[0]})])
    assert "search" in tools and found["results"]
    with httpx.Client(base_url=url, timeout=60) as client:
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
        headers = {"Accept": "application/json, text/event-stream"}
        for bearer in (None, world.idp.token(sub="dave"),  # a token for the API, not for /mcp
                       "clr_not-a-key"):
            sent = {**headers, **({"Authorization": f"Bearer {bearer}"} if bearer else {})}
            refused = client.post("/mcp", json=body, headers=sent)
            assert refused.status_code == 401, refused.text
            challenge = refused.headers["WWW-Authenticate"]
            assert challenge == (f'Bearer resource_metadata="{url}'
                                 '/.well-known/oauth-protected-resource/mcp"')
        metadata = client.get("/.well-known/oauth-protected-resource/mcp").json()
    assert metadata["resource"] == url + "/mcp"
    assert metadata["authorization_servers"] == [world.idp.issuer]
    with world.deployed.client() as client:  # and a token for /mcp is not one for the API
        api = client.post("/v1/search", json={"query": QUERIES[0]},
                          headers={"Authorization": f"Bearer {for_mcp}"})
        assert api.status_code == 401 and "not for this service" in api.text


def test_a_deactivated_user_and_a_paused_service_get_nothing_over_mcp(
        identity_world: IdentityWorld):
    deployed = identity_world.deployed
    with deployed.client("root") as admin:
        assert admin.post("/v1/admin/users/dave/deactivate",
                          json={"reason": "t"}).status_code == 200
        try:
            with httpx.Client(base_url=deployed.url, timeout=60) as client:
                refused = client.post("/mcp", json={"jsonrpc": "2.0", "id": 1,
                                                    "method": "tools/list"},
                                      headers={"Authorization": f"Bearer {deployed.keys['dave']}",
                                               "Accept": "application/json, text/event-stream"})
            assert refused.status_code == 401 and "deactivated" in refused.text
        finally:
            assert admin.post("/v1/admin/users/dave/activate").status_code == 200
        assert admin.post("/v1/admin/pause", json={"target": "service",
                                                   "reason": "maintenance"}).status_code == 200
        try:
            _, (paused,) = mcp_calls(deployed.url, deployed.keys["dave"],
                                     [("search", {"query": QUERIES[0]})])
        finally:
            assert admin.post("/v1/admin/resume", json={"target": "service"}).status_code == 200
    assert paused[0] == "error" and "maintenance" in paused[1]


def test_mcp_takes_posts_only(identity_world: IdentityWorld):
    deployed = identity_world.deployed
    with httpx.Client(base_url=deployed.url, timeout=10) as client:
        stream = client.get("/mcp", headers={"Authorization": f"Bearer {deployed.keys['dave']}",
                                             "Accept": "text/event-stream"})
    assert stream.status_code == 405
