"""The web page's sign-in: /auth/* (identity/web_session.py, identity/oidc_login.py).

A sign-in presents its credential (a personal API key, or the access token the identity provider
gave for the authorization code) once to the same checks as every API request
(api/deps.py get_scope): a key that is revoked, a token that does not verify or a deactivated
user is refused here as it would be anywhere. The session cookie then carries that credential,
which is checked again on every request the page makes.

Sign-in and sign-out are audited (action "signin" / "signout"); a refused sign-in is audited
with its reason, and the browser is sent back to the page with a fixed reason code only
(`/?signin=<code>`), never the provider's text.
"""

from __future__ import annotations

import hmac
import logging
import time
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from api.deps import (
    LimitsDep,
    Public,
    RequestIdDep,
    ServicesDep,
    get_scope,
    web_session,
)
from api.schemas import RequestBody
from api.web_cookies import (
    clear_login_cookie,
    clear_session_cookie,
    same_origin,
    set_login_cookie,
    set_session_cookie,
)
from application.services import Services
from control.audit import admin_record
from identity.oidc import TokenRejected, looks_like_jwt
from identity.oidc_login import LoginFailed
from identity.web_session import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    SessionRejected,
    SessionSealer,
    SignedInWith,
    WebSession,
    new_login,
    new_session,
)
from retrieval.scope import Scope

log = logging.getLogger(__name__)
# The page's own calls, not part of the public API: left out of the OpenAPI document.
router = APIRouter()

# Browsers keep a cookie of at most 4096 bytes; sealing adds about a third and a little more.
MAX_TOKEN_CHARS = 2700
# Why a sign-in at the identity provider failed, as the page is told (it words each one).
FailureCode = Literal["expired", "refused", "state", "provider", "token", "user", "unavailable"]


class KeySignIn(RequestBody):
    key: str = Field(min_length=1, max_length=500, description="A personal API key (clr_...)")


class PauseOut(BaseModel):
    service: bool
    generation: bool
    message: str | None = Field(description="What the administrator's pause means for the page")


class SessionOut(BaseModel):
    user: str
    signed_in_with: SignedInWith
    csrf_token: str = Field(description="Send it as X-CSRF-Token on every POST the page makes")
    expires_at: str
    paused: PauseOut


class SignInOptions(BaseModel):
    key: bool = Field(description="Sign-in with a personal API key")
    organisation: bool = Field(description="Sign-in at the organisation's identity provider")


def _sessions(services: Services) -> SessionSealer:
    if services.web_sessions is None:
        raise HTTPException(status_code=404, detail="the web page is turned off ([web] "
                                                    "enabled = false)")
    return services.web_sessions


@router.get("/auth/options", dependencies=[Public], response_model=SignInOptions,
            include_in_schema=False)
def sign_in_options(services: ServicesDep) -> dict[str, bool]:
    _sessions(services)
    return {"key": True, "organisation": services.web_login is not None}


@router.post("/auth/key", dependencies=[Public], response_model=SessionOut,
             include_in_schema=False)
def sign_in_with_key(body: KeySignIn, request: Request, services: ServicesDep,
                     limits: LimitsDep, request_id: RequestIdDep) -> JSONResponse:
    sessions = _sessions(services)
    if not same_origin(request):
        raise HTTPException(status_code=403, detail="sign in from this service's own page")
    key = body.key.strip()
    if looks_like_jwt(key):
        raise HTTPException(status_code=422, detail="key: paste a personal API key (clr_...); "
                                                    "to use your organisation's account, "
                                                    "choose 'Sign in with your organisation'")
    scope = get_scope(request, services, limits, request_id, authorization=f"Bearer {key}")
    expires_at = time.time() + services.settings.web.session_hours * 3600
    return _signed_in(request, services, sessions, scope, "key", key, expires_at, request_id)


@router.get("/auth/session", dependencies=[Public], response_model=SessionOut,
            include_in_schema=False)
def current_session(request: Request, services: ServicesDep, limits: LimitsDep,
                    request_id: RequestIdDep) -> dict[str, Any]:
    """Who the page is signed in as, checked now, and what is paused."""
    sessions = _sessions(services)
    if SESSION_COOKIE not in request.cookies:
        raise HTTPException(status_code=401, detail="not signed in: sign in at /",
                            headers={"WWW-Authenticate": "Bearer"})
    session = web_session(request, services, limits, request_id)
    # The session's credential, checked now (the cookie is opened once, above).
    scope = get_scope(request, services, limits, request_id,
                      authorization=f"Bearer {session.credential}")
    return _session_fields(services, sessions, session, scope)


@router.post("/auth/logout", dependencies=[Public], status_code=204,
             include_in_schema=False)
def sign_out(request: Request, services: ServicesDep, limits: LimitsDep,
             request_id: RequestIdDep) -> Response:
    sessions = _sessions(services)
    response = Response(status_code=204)
    if SESSION_COOKIE in request.cookies:
        try:
            session = web_session(request, services, limits, request_id)
        except HTTPException as exc:
            if exc.status_code != 401:  # a missing CSRF token: not signed out
                raise
        else:
            if services.web_signouts is not None:  # a copy of the cookie is refused too
                services.web_signouts.sign_out(sessions.session_id(session), session.expires_at)
            _audit(services, "signout", session.user, request_id,
                   signed_in_with=session.signed_in_with)
    clear_session_cookie(response, request, services.settings.web)
    return response


@router.get("/auth/login", dependencies=[Public], status_code=303, include_in_schema=False)
def sign_in_at_provider(request: Request, services: ServicesDep,
                        request_id: RequestIdDep) -> Response:
    sessions = _sessions(services)
    login = services.web_login
    if login is None:
        raise HTTPException(status_code=404, detail="sign-in at the organisation's identity "
                                                    "provider is not configured ([web.login])")
    configured = login.settings.redirect_uri
    redirect_uri = configured or str(request.url_for("sign_in_callback"))
    pending = new_login(redirect_uri)
    try:
        url = login.authorization_url(pending)
    except LoginFailed as exc:
        return _failed(request, services, request_id, "unavailable", str(exc))
    response = RedirectResponse(url, status_code=303)
    set_login_cookie(response, request, services.settings.web, sessions.seal_login(pending))
    return response


@router.get("/auth/callback", dependencies=[Public], status_code=303, include_in_schema=False)
def sign_in_callback(
    request: Request, services: ServicesDep, limits: LimitsDep, request_id: RequestIdDep,
    code: Annotated[str | None, Query(max_length=2000)] = None,
    state: Annotated[str | None, Query(max_length=200)] = None,
    error: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """Where the identity provider sends the browser back with a code (or an error)."""
    sessions = _sessions(services)
    login = services.web_login
    if login is None:
        raise HTTPException(status_code=404, detail="sign-in at the organisation's identity "
                                                    "provider is not configured ([web.login])")
    cookie = request.cookies.get(LOGIN_COOKIE)
    if cookie is None:
        return _failed(request, services, request_id, "expired",
                       "no sign-in is in progress in this browser (or it took too long)")
    try:
        pending = sessions.open_login(cookie)
    except SessionRejected as exc:
        return _failed(request, services, request_id, "expired", str(exc))
    if error is not None:
        return _failed(request, services, request_id, "refused",
                       f"the identity provider answered {error[:60]!r}")
    if state is None or not hmac.compare_digest(state, pending.state):
        return _failed(request, services, request_id, "state",
                       "the sign-in's state does not match this browser's: start again")
    if not code:
        return _failed(request, services, request_id, "refused",
                       "the identity provider sent no code")
    try:
        token = login.exchange(code, pending)
        if len(token) > MAX_TOKEN_CHARS:
            raise TokenRejected(f"the access token is {len(token)} characters, too large for a "
                                f"cookie (at most {MAX_TOKEN_CHARS}): have the identity provider "
                                "leave group claims out of this client's tokens")
        identity = services.oidc.verify(token)
    except (LoginFailed, TokenRejected) as exc:
        reason: FailureCode = "provider" if isinstance(exc, LoginFailed) else "token"
        return _failed(request, services, request_id, reason, str(exc))
    try:
        scope = get_scope(request, services, limits, request_id, authorization=f"Bearer {token}")
    except HTTPException as exc:
        return _failed(request, services, request_id, "user", str(exc.detail))
    limit = time.time() + services.settings.web.session_hours * 3600
    expires_at = min(limit, identity.expires_at or limit)
    response = _signed_in(request, services, sessions, scope, "oidc", token, expires_at,
                          request_id, redirect=True)
    clear_login_cookie(response, request, services.settings.web)
    return response


def _signed_in(request: Request, services: Services, sessions: SessionSealer, scope: Scope,
               signed_in_with: SignedInWith, credential: str, expires_at: float,
               request_id: str, *, redirect: bool = False) -> JSONResponse:
    session = new_session(scope.user, signed_in_with, credential, expires_at)
    _audit(services, "signin", scope.user, request_id, signed_in_with=signed_in_with,
           **({"via": scope.via} if scope.via else {}))
    response: JSONResponse
    if redirect:
        response = RedirectResponse("/", status_code=303)  # type: ignore[assignment]
    else:
        response = JSONResponse(_session_fields(services, sessions, session, scope))
    set_session_cookie(response, request, services.settings.web, sessions.seal(session),
                       int(expires_at - time.time()))
    return response


def _session_fields(services: Services, sessions: SessionSealer, session: WebSession,
                    scope: Scope) -> dict[str, Any]:
    pause = services.pause.current()
    message = None
    if pause.service_paused:
        message = "The service is paused by an administrator: questions cannot be answered now."
    elif pause.generation_paused:
        message = ("Answer generation is paused by an administrator: answers quote the sources "
                   "directly.")
    return {
        "user": scope.user,
        "signed_in_with": session.signed_in_with,
        "csrf_token": sessions.csrf_token(session),
        "expires_at": datetime.fromtimestamp(session.expires_at, UTC).isoformat(),
        "paused": {"service": pause.service_paused, "generation": pause.generation_paused,
                   "message": message},
    }


def _failed(request: Request, services: Services, request_id: str, code: FailureCode,
            reason: str) -> Response:
    log.warning("sign-in at the identity provider failed (%s): %s", code, reason)
    services.retrieval.record_refusal("signin", request_id, reason)
    response = RedirectResponse(f"/?signin={code}", status_code=303)
    clear_login_cookie(response, request, services.settings.web)
    return response


def _audit(services: Services, action: str, user: str, request_id: str, **details: Any) -> None:
    services.audit.append(admin_record(action, caller=f"user:{user}", request_id=request_id,
                                       **details))
