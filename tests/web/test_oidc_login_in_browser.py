"""Signing in through the real OpenID provider in Chromium, as the staff page will: the
authorization code grant with PKCE (S256) for Clearance's audience, the user typing their name
and password into the provider's form; the code exchanged at the token endpoint and the access
token checked by Clearance's own verifier. A wrong code_verifier gets no token, and an unknown
user or a wrong password does not get past the form."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlencode

import httpx
import jwt
import pytest
from playwright.sync_api import Page

from identity.oidc import IssuerSettings, OidcSettings, OidcVerifier
from tests.identity.oidc_provider import (
    AUDIENCE,
    OidcProvider,
    free_port,
    oidc_provider,
    password,
    signing_key,
)
from tests.web.network_log import NetworkLog
from tests.web.site import LoopbackSite, Reply

CLIENT = "clearance-web"
SIGNED_IN = (b'<!doctype html><html lang="en"><head><title>Signed in</title></head>'
             b"<body><main><h1>Signed in</h1></main></body></html>")


@dataclass
class Login:
    provider: OidcProvider
    site: LoopbackSite  # the redirect URI's host, recording what the provider sent back
    discovery: dict[str, str]

    @property
    def redirect_uri(self) -> str:
        return self.site.url("/callback")

    def authorize_url(self, state: str, verifier: str) -> str:
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
        return self.discovery["authorization_endpoint"] + "?" + urlencode({
            "client_id": CLIENT, "redirect_uri": self.redirect_uri, "response_type": "code",
            "scope": "openid", "state": state, "code_challenge": challenge.rstrip(b"=").decode(),
            "code_challenge_method": "S256", "resource": AUDIENCE})

    def exchange(self, code: str, verifier: str) -> httpx.Response:
        return httpx.post(self.discovery["token_endpoint"], timeout=10, data={
            "grant_type": "authorization_code", "code": code, "code_verifier": verifier,
            "redirect_uri": self.redirect_uri, "client_id": CLIENT, "resource": AUDIENCE})


@pytest.fixture(scope="module")
def login() -> Iterator[Login]:
    with LoopbackSite() as site:
        site.replies["/callback"] = Reply(SIGNED_IN)
        web_client = {"client_id": CLIENT, "redirect_uris": [site.url("/callback")]}
        with oidc_provider(free_port(), [signing_key("web")], ["alice", "dave"],
                           {"alice": ["staff"]}, [web_client]) as provider:
            discovery = httpx.get(f"{provider.issuer}/.well-known/openid-configuration",
                                  timeout=10).json()
            yield Login(provider, site, discovery)


def _sign_in(page: Page, login: Login, user: str, secret: str) -> tuple[str, str]:
    """Go through the provider's form; the authorization code, and the verifier it needs."""
    verifier, state = secrets.token_urlsafe(48), secrets.token_urlsafe(16)
    page.goto(login.authorize_url(state, verifier))
    page.get_by_label("Username").fill(user)
    page.get_by_label("Password").fill(secret)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{login.redirect_uri}?*")
    assert page.get_by_role("heading").inner_text() == "Signed in"
    query = login.site.visits_to("/callback")[-1].query
    assert query["state"] == [state] and query["iss"] == [login.provider.issuer]
    return query["code"][0], verifier


def test_alice_signs_in_and_her_token_is_clearances(page: Page, login: Login,
                                                    network_log: NetworkLog):
    code, verifier = _sign_in(page, login, "alice", password("alice"))
    response = login.exchange(code, verifier)
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    issuer = IssuerSettings(issuer=login.provider.issuer, audience=AUDIENCE,
                            groups_claim="groups")
    verifier_ = OidcVerifier(OidcSettings(issuers=[issuer]))
    try:
        identity = verifier_.verify(token)
    finally:
        verifier_.close()
    assert (identity.user, identity.subject) == ("alice", "alice")
    assert len(identity.groups) == 1 and identity.groups[0].endswith("group:staff")
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["client_id"] == CLIENT and claims["groups"] == ["staff"]
    # What she typed went to the provider and came back in no response.
    network_log.assert_never_seen(password("alice"))


def test_a_wrong_code_verifier_gets_no_token(page: Page, login: Login):
    code, verifier = _sign_in(page, login, "dave", password("dave"))
    refused = login.exchange(code, secrets.token_urlsafe(48))
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
    # The same code with its own verifier is good: the verifier was what was refused.
    assert login.exchange(code, verifier).status_code == 200


@pytest.mark.parametrize(("user", "secret"), [("mallory", password("mallory")),
                                              ("alice", "not-her-password")])
def test_an_unknown_user_or_a_wrong_password_does_not_sign_in(page: Page, login: Login,
                                                              user: str, secret: str):
    before = len(login.site.visits_to("/callback"))
    page.goto(login.authorize_url("s", secrets.token_urlsafe(48)))
    page.get_by_label("Username").fill(user)
    page.get_by_label("Password").fill(secret)
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.get_by_role("button", name="Sign in").click()
    assert posted.value.status == 401
    assert page.get_by_role("alert").inner_text() == "Unknown user or wrong password."
    assert page.url.startswith(f"{login.provider.issuer}/interaction/")
    assert len(login.site.visits_to("/callback")) == before
