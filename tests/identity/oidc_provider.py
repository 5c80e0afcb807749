"""A real OpenID provider in a child process: panva/node-oidc-provider (pinned in
tests/identity/provider/package.json, installed by `make test` with npm ci) on Node 20, on a
free loopback port. Each test user is a client of its own, issued JWT access tokens for
Clearance's audience through the client credentials grant; a user given groups has them in
the token's "groups" claim."""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypedDict

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

HERE = Path(__file__).resolve().parent / "provider"
AUDIENCE = "https://clearance.test"


class WebClient(TypedDict):
    """A public client of the authorization code grant (a page signing its users in)."""

    client_id: str
    redirect_uris: list[str]


def signing_key(kid: str) -> dict[str, Any]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key))
    return {**jwk, "kid": kid, "use": "sig", "alg": "RS256"}


WEB_CLIENT_ID = "clearance-web"


def web_login_config(issuer: str) -> str:
    """The config lines that accept the provider's tokens and sign the staff page in there."""
    return (f'\n[[oidc.issuers]]\nissuer = "{issuer}"\naudience = "{AUDIENCE}"\n\n'
            f'[web.login]\nissuer = "{issuer}"\nclient_id = "{WEB_CLIENT_ID}"\n')


def password(user: str) -> str:
    """The user's password at the login form (and their client secret)."""
    return f"secret-{user}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class OidcProvider:
    """The provider on one port; `start(keys)` (re)starts it signing with the first key."""

    def __init__(self, port: int, users: list[str],
                 groups: dict[str, list[str]] | None = None,
                 web_clients: list[WebClient] | None = None) -> None:
        self.port, self.users, self.groups = port, users, groups or {}
        self.web_clients = web_clients or []
        self.issuer = f"http://127.0.0.1:{port}"
        self._proc: subprocess.Popen[str] | None = None

    def start(self, keys: list[dict[str, Any]]) -> str:
        if not (HERE / "node_modules" / "oidc-provider").is_dir():
            raise RuntimeError(f"oidc-provider is not installed: run `npm ci --prefix {HERE}` "
                               "(`make test` does)")
        self.stop()
        proc = subprocess.Popen(["node", str(HERE / "provider.mjs"), str(self.port)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        self._proc = proc
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(json.dumps({"keys": keys, "users": self.users, "groups": self.groups,
                                     "audience": AUDIENCE, "web_clients": self.web_clients}))
        proc.stdin.close()
        line = proc.stdout.readline()
        if not line.startswith("listening "):
            self.stop()
            raise RuntimeError(f"the provider did not start: {line}")
        return self.issuer

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.kill()
        proc.wait(timeout=10)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


@contextmanager
def oidc_provider(port: int, keys: list[dict[str, Any]], users: list[str],
                  groups: dict[str, list[str]] | None = None,
                  web_clients: list[WebClient] | None = None) -> Iterator[OidcProvider]:
    provider = OidcProvider(port, users, groups, web_clients)
    try:
        provider.start(keys)
        yield provider
    finally:
        provider.stop()


def access_token(issuer: str, user: str, resource: str = AUDIENCE) -> str:
    response = httpx.post(f"{issuer}/token", auth=(user, password(user)), timeout=10,
                          data={"grant_type": "client_credentials", "resource": resource,
                                "scope": "search"})
    response.raise_for_status()
    return str(response.json()["access_token"])
