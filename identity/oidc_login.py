"""Signing in to the staff web page at the organisation's identity provider: the OAuth 2.0
authorization code flow with PKCE (RFC 7636, S256), the one module that talks to the
provider's authorization and token endpoints.

The page is a client of the provider (`[web.login]`): `client_id`, and a secret only for a
confidential client (named by an environment variable, never written in the config file). The
access token it receives is for this service's own audience (the `resource` parameter, RFC
8707), so it is checked by identity/oidc.py exactly like a token sent in an Authorization
header; nothing in the token response is believed without that check.
"""

from __future__ import annotations

import base64
import json
import os
import threading
from urllib.parse import quote_plus, urlencode

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator

from identity.oidc import check_provider_url
from identity.web_session import PendingLogin, code_challenge


class WebLoginSettings(BaseModel):
    """The web page's client at the identity provider (`[web.login]`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    issuer: str  # one of [[oidc.issuers]]: its tokens are how the page's users are checked
    client_id: str = Field(min_length=1)
    # The environment variable holding the client secret, for a confidential client; unset:
    # a public client, which PKCE alone protects.
    client_secret_env: str | None = None
    # Where the provider sends the browser back; default: this service's own
    # <scheme>://<host>/auth/callback, as the browser reached it. Register it at the provider.
    redirect_uri: str | None = None
    scopes: list[str] = Field(default_factory=lambda: ["openid"], min_length=1)
    # The resource indicator asked for (RFC 8707); default: the issuer's `audience`.
    resource: str | None = None

    @field_validator("issuer")
    @classmethod
    def _https(cls, value: str) -> str:
        check_provider_url(value)
        return value


class LoginFailed(Exception):
    """The provider did not sign the user in; the message says why (never a token)."""


class OidcLogin:
    """The authorization code flow at one provider, its endpoints read from discovery."""

    def __init__(self, settings: WebLoginSettings, resource: str,
                 client: httpx.Client | None = None, discovery_url: str | None = None) -> None:
        self.settings = settings
        self._resource = resource
        self._client = client or httpx.Client(timeout=10.0, follow_redirects=False)
        self._discovery_url = (discovery_url or settings.issuer.rstrip("/")
                               + "/.well-known/openid-configuration")
        self._endpoints: tuple[str, str] | None = None
        self._lock = threading.Lock()

    def close(self) -> None:
        self._client.close()

    def authorization_url(self, login: PendingLogin) -> str:
        """Where to send the browser to sign in (LoginFailed if the provider is unreachable)."""
        authorize, _ = self._discover()
        query = urlencode({
            "response_type": "code",
            "client_id": self.settings.client_id,
            "redirect_uri": login.redirect_uri,
            "scope": " ".join(self.settings.scopes),
            "state": login.state,
            "code_challenge": code_challenge(login.code_verifier),
            "code_challenge_method": "S256",
            "resource": self._resource,
        })
        return f"{authorize}{'&' if '?' in authorize else '?'}{query}"

    def exchange(self, code: str, login: PendingLogin) -> str:
        """The access token for `code`, with the login's PKCE verifier."""
        _, token_endpoint = self._discover()
        form = {"grant_type": "authorization_code", "code": code,
                "redirect_uri": login.redirect_uri, "code_verifier": login.code_verifier,
                "client_id": self.settings.client_id, "resource": self._resource}
        headers = {"Accept": "application/json"}
        if self.settings.client_secret_env:
            secret = os.environ.get(self.settings.client_secret_env)
            if not secret:
                raise LoginFailed(f"the web client's secret is not set: set the environment "
                                  f"variable {self.settings.client_secret_env}")
            # RFC 6749 2.3.1: each part form-encoded, then HTTP Basic.
            pair = f"{quote_plus(self.settings.client_id)}:{quote_plus(secret)}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        try:
            response = self._client.post(token_endpoint, data=form, headers=headers)
        except httpx.HTTPError as exc:
            raise LoginFailed(f"the identity provider's token endpoint cannot be reached "
                              f"({type(exc).__name__})") from None
        body = _json(response)
        if response.status_code != 200:
            error = body.get("error")
            reason = error[:100] if isinstance(error, str) else "no reason given"
            raise LoginFailed(f"the identity provider refused the sign-in code "
                              f"({response.status_code}, {reason})")
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            raise LoginFailed("the identity provider's token response has no access_token")
        return token

    def _discover(self) -> tuple[str, str]:
        with self._lock:
            if self._endpoints is not None:
                return self._endpoints
            try:
                response = self._client.get(self._discovery_url)
            except httpx.HTTPError as exc:
                raise LoginFailed(f"the identity provider cannot be reached "
                                  f"({type(exc).__name__})") from None
            document = _json(response)
            if response.status_code != 200 or document.get("issuer") != self.settings.issuer:
                raise LoginFailed(f"{self._discovery_url} is not the discovery document of "
                                  f"{self.settings.issuer}")
            endpoints = document.get("authorization_endpoint"), document.get("token_endpoint")
            if not all(isinstance(e, str) for e in endpoints):
                raise LoginFailed(f"{self._discovery_url} names no authorization or token "
                                  "endpoint")
            authorize, token = str(endpoints[0]), str(endpoints[1])
            try:
                check_provider_url(authorize)
                check_provider_url(token)
            except ValueError as exc:
                raise LoginFailed(str(exc)) from None
            self._endpoints = (authorize, token)
            return self._endpoints


def _json(response: httpx.Response) -> dict[str, object]:
    try:
        data = json.loads(response.content)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
