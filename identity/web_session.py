"""The staff web page's sign-in session: a sealed cookie, and the CSRF token that goes with it.

A session holds the credential the page signed in with (a personal API key, or an access token
from the organisation's identity provider) inside a cookie the browser cannot read (HttpOnly)
and the server alone can open: encrypted and authenticated with a key of the deployment's
(`[web] session_key_file`), and valid until `expires_at`, which the sealed text carries. The
server never trusts the cookie for more than that credential: every request presents it to the
same checks as an `Authorization` header (api/deps.py), so a revoked key, a deactivated user or
an expired token ends the session at once.

State-changing requests made with the cookie carry `X-CSRF-Token`, a keyed hash of the
session's own random nonce: a page of another site can neither read it nor compute it.

The pending login (the OIDC `state` and PKCE `code_verifier`) is sealed the same way into a
short-lived cookie of its own, so no server-side store is needed between the redirect to the
identity provider and its return.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from cryptography.fernet import Fernet, InvalidToken

from control.audit import load_or_create_key

SESSION_COOKIE = "clearance_session"
LOGIN_COOKIE = "clearance_login"
CSRF_HEADER = "X-CSRF-Token"
LOGIN_TTL_S = 600  # from the redirect to the identity provider to its return

SignedInWith = Literal["key", "oidc"]


class SessionRejected(Exception):
    """The cookie is not a session of this deployment, or it has expired; says which."""


@dataclass(frozen=True)
class WebSession:
    user: str
    signed_in_with: SignedInWith
    credential: str  # the bearer key or access token; never sent back to the browser
    expires_at: float  # epoch seconds
    nonce: str  # the CSRF token is derived from it


@dataclass(frozen=True)
class PendingLogin:
    state: str
    code_verifier: str
    redirect_uri: str
    expires_at: float


class SessionSealer:
    """Seals and opens sessions and pending logins with one deployment key."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise ValueError("the session key must be at least 32 bytes")
        self._fernet = Fernet(base64.urlsafe_b64encode(_derive(key, b"seal")))
        self._csrf_key = _derive(key, b"csrf")
        self._id_key = _derive(key, b"session-id")

    @classmethod
    def from_file(cls, path: Path) -> SessionSealer:
        """With the key in `path`, made (0600) on first use."""
        return cls(load_or_create_key(path))

    def seal(self, session: WebSession) -> str:
        return self._seal({"kind": "session", **asdict(session)})

    def open(self, cookie: str, now: float | None = None) -> WebSession:
        data = self._open(cookie, "session")
        try:
            session = WebSession(user=str(data["user"]), signed_in_with=data["signed_in_with"],
                                 credential=str(data["credential"]),
                                 expires_at=float(data["expires_at"]), nonce=str(data["nonce"]))
        except (KeyError, TypeError, ValueError):
            raise SessionRejected("the session cookie is not a session of this service") from None
        if session.expires_at <= (time.time() if now is None else now):
            raise SessionRejected("the session has expired: sign in again")
        return session

    def seal_login(self, login: PendingLogin) -> str:
        return self._seal({"kind": "login", **asdict(login)})

    def open_login(self, cookie: str, now: float | None = None) -> PendingLogin:
        data = self._open(cookie, "login")
        try:
            login = PendingLogin(state=str(data["state"]),
                                 code_verifier=str(data["code_verifier"]),
                                 redirect_uri=str(data["redirect_uri"]),
                                 expires_at=float(data["expires_at"]))
        except (KeyError, TypeError, ValueError):
            raise SessionRejected("the sign-in cookie is not one of this service") from None
        if login.expires_at <= (time.time() if now is None else now):
            raise SessionRejected("the sign-in took too long: start again")
        return login

    def session_id(self, session: WebSession) -> str:
        """What a sign-out records (control/web_signouts.py): a keyed hash of the nonce, from
        which neither the cookie nor its CSRF token can be made."""
        return hmac.new(self._id_key, session.nonce.encode("ascii"), hashlib.sha256).hexdigest()

    def csrf_token(self, session: WebSession) -> str:
        return hmac.new(self._csrf_key, session.nonce.encode("ascii"), hashlib.sha256).hexdigest()

    def csrf_matches(self, session: WebSession, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(self.csrf_token(session), token)

    def _seal(self, data: dict[str, object]) -> str:
        return self._fernet.encrypt(json.dumps(data).encode("utf-8")).decode("ascii")

    def _open(self, cookie: str, kind: str) -> dict[str, Any]:
        try:
            data = json.loads(self._fernet.decrypt(cookie.encode("ascii")))
        except (InvalidToken, UnicodeError, ValueError):
            raise SessionRejected("the cookie is not one this service sealed (or its key "
                                  "changed): sign in again") from None
        if not isinstance(data, dict) or data.get("kind") != kind:
            raise SessionRejected("the cookie is not one this service sealed: sign in again")
        return data


def new_session(user: str, signed_in_with: SignedInWith, credential: str,
                expires_at: float) -> WebSession:
    return WebSession(user, signed_in_with, credential, expires_at, secrets.token_urlsafe(24))


def new_login(redirect_uri: str, now: float | None = None) -> PendingLogin:
    """A pending login with a fresh state and PKCE verifier (RFC 7636: 43 to 128 characters)."""
    return PendingLogin(state=secrets.token_urlsafe(24), code_verifier=secrets.token_urlsafe(48),
                        redirect_uri=redirect_uri,
                        expires_at=(time.time() if now is None else now) + LOGIN_TTL_S)


def code_challenge(verifier: str) -> str:
    """The S256 PKCE challenge of a verifier."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _derive(key: bytes, purpose: bytes) -> bytes:
    return hmac.new(key, b"clearance-web-session:" + purpose, hashlib.sha256).digest()
