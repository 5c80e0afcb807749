"""The staff web page's pages and its sign-in session over HTTP, on the example deployment
(real keys, Casbin, embedded Qdrant, parser and embedder): the session cookie's attributes, the
CSRF token every cookie POST needs, and that the cookie's credential meets every check of an
Authorization header on every request (a revoked key, a deactivated user, a paused service).
The browser tests (tests/web/) drive the same page in Chromium."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.routes.web import ASSETS, STATIC
from application.services import open_directory, open_pause_switch
from control.keys import KeyStore
from identity.web_session import (
    CSRF_HEADER,
    SESSION_COOKIE,
    SessionRejected,
    SessionSealer,
    new_session,
)
from retrieval.embedder import Embedder
from tests.conftest import Deployment, serve_example

pytestmark = pytest.mark.e2e

QUESTION = "How many days of annual leave do staff get?"


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder
             ) -> Iterator[Deployment]:
    with serve_example(tmp_path_factory.mktemp("web"), embedder) as deployment:
        yield deployment


@contextmanager
def _signed_in(deployed: Deployment, user: str) -> Iterator[tuple[httpx.Client, str]]:
    """A client signed in with the user's key, as the page is: (client, CSRF token)."""
    with httpx.Client(base_url=deployed.url, timeout=60) as client:
        response = client.post("/auth/key", json={"key": deployed.keys[user]})
        assert response.status_code == 200, response.text
        yield client, response.json()["csrf_token"]


def _audit(deployed: Deployment, action: str) -> list[dict[str, Any]]:
    lines = deployed.settings.audit_log.read_text(encoding="utf-8").splitlines()
    return [r for r in map(json.loads, lines) if r.get("action") == action]


def test_pages_are_static_files_with_a_strict_content_security_policy(deployed: Deployment):
    with httpx.Client(base_url=deployed.url) as client:
        for path in ("/", "/documents/handbook:holidays-2026.html/versions/abc"):
            page = client.get(path)
            assert page.status_code == 200 and page.headers["content-type"].startswith(
                "text/html")
            policy = page.headers["content-security-policy"]
            assert "script-src 'self'" in policy and "unsafe-inline" not in policy
            assert "frame-ancestors 'none'" in policy
            assert page.headers["x-content-type-options"] == "nosniff"
            assert page.headers["x-frame-options"] == "DENY"
        for name, media_type in ASSETS.items():
            asset = client.get(f"/static/{name}")
            assert asset.status_code == 200 and asset.headers["content-type"] == media_type
        assert client.get("/static/index.html").status_code == 404  # only the named assets
        assert client.get("/static/..%2Fweb.py").status_code == 404


def test_no_page_has_an_inline_script_or_style_or_inserts_html():
    for html in STATIC.glob("*.html"):
        text = html.read_text(encoding="utf-8")
        for tag in re.findall(r"<script\b[^>]*>", text):
            assert 'src="/static/' in tag, (html.name, tag)
        assert re.search(r"<script\b[^>]*>(?!</script>)", text) is None, html.name  # inline
        assert "<style" not in text and " style=" not in text, html.name
        assert re.search(r"\son[a-z]+\s*=", text) is None, html.name  # no event attributes
    for script in STATIC.glob("*.js"):
        code = script.read_text(encoding="utf-8")
        # Answers, citations and documents are set as text: nothing is parsed as HTML.
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert sink not in code, (script.name, sink)


def test_a_key_sign_in_sets_an_http_only_same_site_cookie_and_never_echoes_the_key(
        deployed: Deployment):
    with httpx.Client(base_url=deployed.url) as client:
        response = client.post("/auth/key", json={"key": deployed.keys["dave"]})
        assert response.status_code == 200
        cookie = response.headers["set-cookie"]
        assert cookie.startswith(f"{SESSION_COOKIE}=")
        attributes = {a.strip().lower() for a in cookie.split(";")[1:]}
        assert {"httponly", "path=/", "samesite=lax"} <= attributes
        assert "secure" not in attributes  # plain http on loopback; https gets Secure
        session = client.get("/auth/session")
        assert session.status_code == 200 and session.json()["user"] == "dave"
        for body in (response.text, session.text, cookie):
            assert deployed.keys["dave"] not in body
        assert session.json()["csrf_token"] == response.json()["csrf_token"]
    signins = [r for r in _audit(deployed, "signin") if r["caller"] == "user:dave"]
    assert signins and signins[-1]["signed_in_with"] == "key"


def test_every_post_with_the_cookie_needs_the_session_csrf_token(deployed: Deployment):
    with _signed_in(deployed, "dave") as (client, csrf):
        missing = client.post("/v1/chat", json={"message": QUESTION})
        wrong = client.post("/v1/chat", json={"message": QUESTION},
                            headers={CSRF_HEADER: "0" * 64})
        for refused in (missing, wrong):
            assert refused.status_code == 403, refused.text
            assert CSRF_HEADER in refused.json()["error"]
        answered = client.post("/v1/chat", json={"message": QUESTION},
                               headers={CSRF_HEADER: csrf})
        assert answered.status_code == 200 and answered.json()["citations"]
        # Another session's token does not do.
        with _signed_in(deployed, "dave") as (_, other_csrf):
            assert other_csrf != csrf
        assert client.post("/v1/chat", json={"message": QUESTION},
                           headers={CSRF_HEADER: other_csrf}).status_code == 403


def test_a_sign_in_from_another_site_or_with_a_bad_key_is_refused(deployed: Deployment):
    with httpx.Client(base_url=deployed.url) as client:
        foreign = client.post("/auth/key", json={"key": deployed.keys["dave"]},
                              headers={"Origin": "https://evil.example"})
        assert foreign.status_code == 403 and SESSION_COOKIE not in foreign.headers.get(
            "set-cookie", "")
        wrong = client.post("/auth/key", json={"key": "clr_" + "x" * 40})
        assert wrong.status_code == 401 and "set-cookie" not in wrong.headers
        token_like = client.post("/auth/key", json={"key": "a.b.c"})
        assert token_like.status_code == 422 and "personal API key" in token_like.json()[
            "error"]
        assert client.post("/auth/key", json={}).status_code == 422
        assert client.get("/auth/session").status_code == 401


def test_a_forged_or_expired_cookie_is_refused(deployed: Deployment, tmp_path: Path):
    with httpx.Client(base_url=deployed.url) as client:
        client.cookies.set(SESSION_COOKIE, "gAAAAAnot-a-session")
        assert client.get("/auth/session").status_code == 401
        # Sealed with another deployment's key: not ours.
        elsewhere = SessionSealer.from_file(tmp_path / "other.key")
        session = new_session("root", "key", deployed.keys["root"], 4_102_444_800)
        client.cookies.set(SESSION_COOKIE, elsewhere.seal(session))
        refused = client.get("/auth/session")
        assert refused.status_code == 401 and "sign in again" in refused.json()["error"]
    ours = SessionSealer.from_file(deployed.settings.web_session_key)
    expired = new_session("dave", "key", deployed.keys["dave"], 1.0)
    with pytest.raises(SessionRejected, match="expired"):
        ours.open(ours.seal(expired))
    with httpx.Client(base_url=deployed.url) as client:
        client.cookies.set(SESSION_COOKIE, ours.seal(expired))
        assert client.get("/auth/session").status_code == 401


def test_revoking_the_key_or_deactivating_the_user_ends_the_session_at_once(
        deployed: Deployment):
    store = KeyStore(deployed.settings.keys_file)
    key = store.create("erin", name="web-test")
    with httpx.Client(base_url=deployed.url, timeout=60) as client:
        signed_in = client.post("/auth/key", json={"key": key})
        csrf = signed_in.json()["csrf_token"]
        assert client.get("/auth/session").status_code == 200
        store.revoke("erin")
        assert client.get("/auth/session").status_code == 401
        chat = client.post("/v1/chat", json={"message": QUESTION}, headers={CSRF_HEADER: csrf})
        assert chat.status_code == 401
    key = store.create("erin", name="web-test-2")
    with httpx.Client(base_url=deployed.url, timeout=60) as client:
        assert client.post("/auth/key", json={"key": key}).status_code == 200
        directory = open_directory(deployed.settings)
        directory.deactivate("erin", by="user:root", reason="left")
        try:
            refused = client.get("/auth/session")
            assert refused.status_code == 401 and "deactivated" in refused.json()["error"]
        finally:
            directory.activate("erin")


def test_the_session_says_what_is_paused_and_a_paused_service_refuses_the_page(
        deployed: Deployment):
    switch = open_pause_switch(deployed.settings)
    with _signed_in(deployed, "dave") as (client, csrf):
        switch.pause("service", by="user:root", reason="maintenance")
        try:
            paused = client.get("/auth/session").json()["paused"]
            assert paused["service"] is True and "paused" in paused["message"]
            chat = client.post("/v1/chat", json={"message": QUESTION},
                               headers={CSRF_HEADER: csrf})
            assert chat.status_code == 503
        finally:
            switch.resume("service")
        switch.pause("generation", by="user:root", reason="model upgrade")
        try:
            paused = client.get("/auth/session").json()["paused"]
            assert paused == {"service": False, "generation": True,
                              "message": paused["message"]}
            assert "generation is paused" in paused["message"]
        finally:
            switch.resume("generation")


def test_sign_out_clears_the_cookie_ends_every_copy_and_is_audited(deployed: Deployment):
    with _signed_in(deployed, "carol") as (client, csrf):
        copied = client.cookies[SESSION_COOKIE]
        assert client.post("/auth/logout").status_code == 403  # the CSRF token is needed
        out = client.post("/auth/logout", headers={CSRF_HEADER: csrf})
        assert out.status_code == 204 and 'clearance_session=""' in out.headers["set-cookie"]
        assert client.get("/auth/session").status_code == 401
    # A copy of the cookie taken before the sign-out is refused too (control/web_signouts.py).
    with httpx.Client(base_url=deployed.url) as thief:
        thief.cookies.set(SESSION_COOKIE, copied)
        refused = thief.get("/auth/session")
        assert refused.status_code == 401 and "signed out" in refused.json()["error"]
        assert thief.post("/v1/chat", json={"message": QUESTION},
                          headers={CSRF_HEADER: csrf}).status_code == 401
    assert any(r["caller"] == "user:carol" for r in _audit(deployed, "signout"))


def test_the_page_sends_the_conversation_and_bad_history_is_a_clear_422(deployed: Deployment):
    with _signed_in(deployed, "alice") as (client, csrf):
        headers = {CSRF_HEADER: csrf}
        follow_up = client.post("/v1/chat", headers=headers, json={
            "message": "And how many can I carry over?",
            "history": [{"role": "user", "content": QUESTION},
                        {"role": "assistant", "content": "25 days."}]})
        assert follow_up.status_code == 200, follow_up.text
        too_many = client.post("/v1/chat", headers=headers, json={
            "message": "x", "history": [{"role": "user", "content": "q"}] * 21})
        assert too_many.status_code == 422 and "history" in too_many.json()["error"]
        bad_role = client.post("/v1/chat", headers=headers, json={
            "message": "x", "history": [{"role": "system", "content": "q"}]})
        assert bad_role.status_code == 422
    chats = [r for r in _audit(deployed, "chat") if r["request_id"] ==
             follow_up.json()["request_id"]]
    assert chats and chats[0].get("standalone") is not None  # made standalone from the history


def test_the_page_can_be_turned_off(tmp_path: Path, embedder: Embedder):
    from application.settings import load_settings
    from tests.conftest import write_example_config
    config = write_example_config(tmp_path)
    config.write_text(config.read_text(encoding="utf-8") + "\n[web]\nenabled = false\n",
                      encoding="utf-8")
    settings = load_settings(config)
    assert settings.web.enabled is False
    from fastapi.testclient import TestClient

    from api.app import create_app
    from application.services import build_services
    services = build_services(settings, embedder=embedder)
    assert services.web_sessions is None
    with TestClient(create_app(settings, services)) as client:
        assert client.get("/").status_code == 404
        assert client.get("/auth/options").status_code == 404
        client.cookies.set(SESSION_COOKIE, "anything")
        refused = client.post("/v1/search", json={"query": "leave"})
        assert refused.status_code == 401 and "turned off" in refused.json()["error"]


def _login_app(tmp_path: Path, embedder: Embedder) -> Any:
    """The example config with sign-in at a provider on a loopback port nobody listens on."""
    from api.app import create_app
    from application.services import build_services
    from application.settings import load_settings
    from tests.conftest import write_example_config
    from tests.identity.oidc_provider import free_port, web_login_config
    config = write_example_config(tmp_path)
    config.write_text(config.read_text(encoding="utf-8")
                      + web_login_config(f"http://127.0.0.1:{free_port()}"), encoding="utf-8")
    settings = load_settings(config)
    return create_app(settings, build_services(settings, embedder=embedder)), settings


def test_a_failed_sign_in_at_the_provider_goes_back_to_the_page_with_a_reason_code(
        tmp_path: Path, embedder: Embedder):
    from fastapi.testclient import TestClient
    app, settings = _login_app(tmp_path, embedder)
    with TestClient(app, follow_redirects=False) as client:
        assert client.get("/auth/options").json() == {"key": True, "organisation": True}
        down = client.get("/auth/login")  # the provider cannot be reached
        assert down.status_code == 303 and down.headers["location"] == "/?signin=unavailable"
        no_login = client.get("/auth/callback", params={"code": "c", "state": "s"})
        assert no_login.headers["location"] == "/?signin=expired"
        # A login cookie of ours, but the state the provider sent back is another.
        from identity.web_session import LOGIN_COOKIE, new_login
        sealer = SessionSealer.from_file(settings.web_session_key)
        pending = new_login("http://testserver/auth/callback")
        client.cookies.set(LOGIN_COOKIE, sealer.seal_login(pending), path="/auth/callback")
        wrong_state = client.get("/auth/callback", params={"code": "c", "state": "other"})
        assert wrong_state.headers["location"] == "/?signin=state"
        client.cookies.set(LOGIN_COOKIE, sealer.seal_login(pending), path="/auth/callback")
        refused = client.get("/auth/callback", params={"error": "access_denied",
                                                        "state": pending.state})
        assert refused.headers["location"] == "/?signin=refused"
        # A session cookie is not a login cookie, nor the other way round.
        client.cookies.set(LOGIN_COOKIE, sealer.seal(new_session("dave", "key", "k", 4e9)),
                           path="/auth/callback")
        assert client.get("/auth/callback", params={"code": "c", "state": "s"}).headers[
            "location"] == "/?signin=expired"
        for cookie in (down, no_login, wrong_state, refused):
            assert SESSION_COOKIE not in cookie.headers.get("set-cookie", "")
    lines = settings.audit_log.read_text(encoding="utf-8").splitlines()
    refusals = [r for r in map(json.loads, lines) if r.get("action") == "signin"]
    assert [r["outcome"] for r in refusals] == ["refused"] * 5
    assert "cannot be reached" in refusals[0]["reason"]


def test_the_login_redirect_carries_pkce_and_the_audience(tmp_path: Path, embedder: Embedder):
    """What the browser is sent to the provider with: S256 PKCE, state, the resource."""
    from urllib.parse import parse_qs, urlparse

    from identity.oidc_login import OidcLogin, WebLoginSettings
    from identity.web_session import code_challenge, new_login
    login = OidcLogin(WebLoginSettings(issuer="https://idp.example", client_id="web"),
                      "https://clearance.test")
    login._endpoints = ("https://idp.example/authorize", "https://idp.example/token")
    pending = new_login("https://clearance.example/auth/callback")
    query = parse_qs(urlparse(login.authorization_url(pending)).query)
    assert query["code_challenge"] == [code_challenge(pending.code_verifier)]
    assert query["code_challenge_method"] == ["S256"] and query["state"] == [pending.state]
    assert query["resource"] == ["https://clearance.test"]
    assert query["response_type"] == ["code"] and query["client_id"] == ["web"]
    assert "code_verifier" not in query and 43 <= len(pending.code_verifier) <= 128
    login.close()


def test_a_login_issuer_must_be_a_configured_one(tmp_path: Path):
    from application.settings import load_settings
    from ingest.errors import ConfigError
    from tests.conftest import write_example_config
    config = write_example_config(tmp_path)
    config.write_text(config.read_text(encoding="utf-8") + """
[web.login]
issuer = "https://idp.example"
client_id = "clearance-web"
""", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"web.login.issuer .* is not one of \[\[oidc"):
        load_settings(config)


@pytest.mark.parametrize(("scheme", "setting", "secure"), [
    ("http", "auto", False), ("https", "auto", True), ("http", "always", True)])
def test_the_cookies_are_secure_where_the_browser_came_over_tls(scheme: str, setting: str,
                                                                 secure: bool):
    from fastapi import Request, Response

    from api.web_cookies import set_login_cookie, set_session_cookie
    from application.settings import WebSettings
    request = Request({"type": "http", "scheme": scheme, "method": "GET", "path": "/",
                       "headers": [(b"host", b"clearance.example")], "query_string": b"",
                       "server": ("clearance.example", 443 if scheme == "https" else 80)})
    web = WebSettings(cookie_secure=setting)  # type: ignore[arg-type]
    response = Response()
    set_session_cookie(response, request, web, "sealed", 3600)
    set_login_cookie(response, request, web, "pending")
    for cookie in response.headers.getlist("set-cookie"):
        attributes = {a.strip().lower() for a in cookie.split(";")[1:]}
        assert ("secure" in attributes) is secure, cookie
        assert {"httponly", "samesite=lax"} <= attributes


def test_an_access_token_too_large_for_a_cookie_is_refused_with_why(
        tmp_path: Path, embedder: Embedder):
    """The provider's token response is FAKED here (a real provider's token of that size
    needs hundreds of group claims): the sign-in is refused, not sealed into a cookie the
    browser would silently drop."""
    from fastapi.testclient import TestClient

    from api.routes.signin import MAX_TOKEN_CHARS
    from identity.web_session import LOGIN_COOKIE, new_login
    app, settings = _login_app(tmp_path, embedder)
    services = app.state.services
    services.web_login.exchange = lambda code, pending: "x" * (MAX_TOKEN_CHARS + 1)
    sealer = SessionSealer.from_file(settings.web_session_key)
    pending = new_login("http://testserver/auth/callback")
    with TestClient(app, follow_redirects=False) as client:
        client.cookies.set(LOGIN_COOKIE, sealer.seal_login(pending), path="/auth/callback")
        refused = client.get("/auth/callback", params={"code": "c", "state": pending.state})
        assert refused.headers["location"] == "/?signin=token"
        assert SESSION_COOKIE not in refused.headers.get("set-cookie", "")
    lines = settings.audit_log.read_text(encoding="utf-8").splitlines()
    reasons = [r["reason"] for r in map(json.loads, lines) if r.get("action") == "signin"]
    assert "too large for a cookie" in reasons[-1]
    # The largest token accepted still fits a browser's 4096-byte cookie, with a long name.
    sealed = sealer.seal(new_session("u" * 64, "oidc", "x" * MAX_TOKEN_CHARS, 4e9))
    assert len(SESSION_COOKIE) + 1 + len(sealed) <= 4096
