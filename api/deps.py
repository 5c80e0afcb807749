"""FastAPI dependencies as Annotated aliases; tests override them via app.dependency_overrides."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import Annotated, NoReturn

from fastapi import Depends, Header, HTTPException, Request

from api.frontends import FrontendRefused, end_user, user_headers
from api.ratelimit import Limits, retry_after
from application.admin import Actor
from application.services import Services
from identity.oidc import TokenRejected, looks_like_jwt
from identity.web_session import CSRF_HEADER, SESSION_COOKIE, SessionRejected, WebSession
from retrieval.scope import Scope, scope_for


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def get_request_id(request: Request) -> str:
    """One id per request, echoed in the X-Request-ID header and the audit record."""
    if not hasattr(request.state, "request_id"):
        request.state.request_id = uuid.uuid4().hex
    request_id: str = request.state.request_id
    return request_id


RequestIdDep = Annotated[str, Depends(get_request_id)]


def get_limits(request: Request) -> Limits:
    limits: Limits = request.app.state.limits
    return limits


LimitsDep = Annotated[Limits, Depends(get_limits)]


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


KEY_HINT = "send 'Authorization: Bearer <key>' with a key from `clearance keys create NAME`"
PROVISIONING_HINT = ("send 'Authorization: Bearer <key>' with a key from `clearance keys create "
                     "NAME --provisioning`")


def _unauthorized(limits: Limits, request: Request, request_id: str, reason: str, *,
                  wrong_key: bool, hint: str = KEY_HINT) -> NoReturn:
    # Audited through the tally: the first refusal from an address in a window has its own
    # record, later ones are counted, so guessing keys cannot make a record each.
    address = _address(request)
    if wrong_key:
        limits.lockout.failed(address)
    limits.tally.refuse(f"address:{address}", action=request.url.path, reason=reason,
                        request_id=request_id, address=address)
    raise HTTPException(
        status_code=401,
        detail=f"{reason}: {hint}",
        headers={"WWW-Authenticate": "Bearer"},
    )


def _throttled(limits: Limits, request: Request, request_id: str, reason: str, wait_s: float,
               *, caller: str | None = None) -> None:
    address = _address(request)
    subject = caller or f"address:{address}"
    limits.tally.refuse(subject, action=request.url.path, reason=reason, request_id=request_id,
                        caller=caller, address=address)
    raise HTTPException(status_code=429, detail=reason,
                        headers={"Retry-After": str(retry_after(wait_s))})


def get_scope(
    request: Request,
    services: ServicesDep,
    limits: LimitsDep,
    request_id: RequestIdDep,
    authorization: Annotated[str | None, Header()] = None,
) -> Scope:
    """The caller's scope from their API key; 401 (audited) without a valid key, 429 after
    too many wrong keys from the address or too many requests with the key.

    Without an Authorization header, the web page's session cookie presents the credential it
    was signed in with (identity/web_session.py), to exactly the same checks."""
    locked = limits.lockout.locked_for(_address(request))
    if locked:
        _throttled(limits, request, request_id, "too many wrong API keys from this address; "
                   "try again after Retry-After seconds", locked)
    if not authorization and SESSION_COOKIE in request.cookies:
        session = web_session(request, services, limits, request_id)
        authorization = f"Bearer {session.credential}"
    if not authorization:
        _unauthorized(limits, request, request_id, "missing API key", wrong_key=False)
    scheme, _, key = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        _unauthorized(limits, request, request_id, "malformed Authorization header",
                      wrong_key=True)
    key = key.strip()
    frontends = services.settings.frontends
    named = [h for h in user_headers(frontends) if h in request.headers]
    via: str | None = None
    claimed: tuple[str, ...] = ()  # groups the access token claims (identity/groups.py)
    if looks_like_jwt(key) and services.oidc.enabled:
        try:
            token = services.oidc.verify(key, resource=getattr(request.state, "resource", "api"))
        except TokenRejected as exc:
            _unauthorized(limits, request, request_id, f"access token refused: {exc}",
                          wrong_key=True)
        user, key_scope, via = token.user, "admin", f"oidc:{token.issuer}"
        claimed = token.groups
    else:
        found = services.keys.identify(key)
        if found is None:
            _unauthorized(limits, request, request_id, "unknown, revoked or expired API key",
                          wrong_key=True)
        assert found is not None
        user, key_scope = found.user, found.scope
        if found.kind == "provisioning":
            _unauthorized(limits, request, request_id, "a provisioning key is accepted on "
                          "/scim/v2 only", wrong_key=False)
        if found.kind == "frontend":
            try:
                user, frontend = end_user(frontends, found.user, request.headers)
            except FrontendRefused as exc:
                _unauthorized(limits, request, request_id, str(exc), wrong_key=False)
            if not services.policy.knows(user):
                _unauthorized(limits, request, request_id, f"front-end {frontend.name} names "
                              f"user {user!r}, whom the policy does not know", wrong_key=False)
            via = f"frontend:{frontend.name}"
            named = []
    if named:
        _unauthorized(limits, request, request_id, f"{named[0]} names a user, which only a "
                      "front-end's key may do", wrong_key=False)
    deactivated = services.directory.deactivated(user)
    if deactivated is not None:
        _unauthorized(limits, request, request_id, f"user:{user} is deactivated (since "
                      f"{deactivated.at})", wrong_key=False)
    request.state.caller = f"user:{user}"  # for the request's audit record
    request.state.key_scope = key_scope
    wait = limits.key_wait(user)
    if wait:
        _throttled(limits, request, request_id, "too many requests with this key: the limit is "
                   f"{limits.settings.per_key_per_minute} a minute", wait, caller=f"user:{user}")
    scope = scope_for(services.policy, user, claimed=claimed)
    return replace(scope, via=via) if via else scope


ScopeDep = Annotated[Scope, Depends(get_scope)]

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
SESSION_HINT = "sign in again at /"


def web_session(request: Request, services: Services, limits: Limits,
                request_id: str) -> WebSession:
    """The web page's session from its cookie: 401 (audited) if it is not one of ours or has
    expired; 403 for a state-changing request without the session's CSRF token."""
    sessions = services.web_sessions
    if sessions is None:
        _unauthorized(limits, request, request_id, "the web page is turned off ([web] enabled "
                      "= false): its session cookie is not accepted", wrong_key=False)
    assert sessions is not None
    try:
        session = sessions.open(request.cookies[SESSION_COOKIE])
    except SessionRejected as exc:
        _unauthorized(limits, request, request_id, str(exc), wrong_key=False,
                      hint=SESSION_HINT)
    signouts = services.web_signouts
    if signouts is not None and signouts.signed_out(sessions.session_id(session)):
        _unauthorized(limits, request, request_id, "this session was signed out",
                      wrong_key=False, hint=SESSION_HINT)
    if request.method not in SAFE_METHODS and not sessions.csrf_matches(
            session, request.headers.get(CSRF_HEADER)):
        address = _address(request)
        reason = (f"a request made with the web page's session needs its {CSRF_HEADER} header: "
                  "reload the page")
        limits.tally.refuse(f"address:{address}", action=request.url.path, reason=reason,
                            request_id=request_id, address=address)
        raise HTTPException(status_code=403, detail=reason)
    return session


def actor(scope: Scope, request_id: str) -> Actor:
    """Who an admin action is done for: the caller's principal and the request id."""
    return Actor(f"user:{scope.user}", request_id)


# Every route declares what it needs, through exactly one of these dependencies; a test walks
# the app's routes and fails on any that declares nothing (tests/api/test_route_permissions.py).
PUBLIC = ("public", "")  # no API key: health, readiness, and /metrics (its own token)
CALLER = ("documents", "read")  # any caller with a key; results filtered by their own access
PROVISIONING = ("scim", "provision")  # the identity provider's provisioning key: /scim/v2 only


def require(resource: str, action: str) -> Callable[..., Scope]:
    """A dependency that lets the call through only if Casbin grants `action` on `resource`."""

    def check(scope: ScopeDep, services: ServicesDep, request: Request) -> Scope:
        if getattr(request.state, "key_scope", "admin") != "admin":
            raise HTTPException(
                status_code=403,
                detail=f"this key's scope is {request.state.key_scope}: it may search, chat "
                "and complete, not take admin actions; use a key of scope admin",
            )
        if not services.policy.allows(scope.user, resource, action):
            raise HTTPException(
                status_code=403,
                detail=f"user:{scope.user} may not {action} {resource}; "
                "ask an administrator for a role that grants it",
            )
        return scope

    check.permission = (resource, action)  # type: ignore[attr-defined]
    return check


def _caller(scope: ScopeDep, services: ServicesDep, request: Request,
            request_id: RequestIdDep) -> Scope:
    """A caller with a valid key, while the service is not paused (503, audited, if it is)."""
    state = services.pause.current()
    if state.service_paused:
        message = state.service_message()
        services.retrieval.record_refusal(request.url.path, request_id, message,
                                          caller=f"user:{scope.user}")
        raise HTTPException(status_code=503, detail=message, headers={"Retry-After": "60"})
    return scope


def _public() -> None:
    return None


def _provisioner(request: Request, services: ServicesDep, limits: LimitsDep,
                 request_id: RequestIdDep,
                 authorization: Annotated[str | None, Header()] = None) -> tuple[str, str]:
    """The identity provider's SCIM client, by its provisioning key: (actor, request id). Any
    other key or token gets 401, as a provisioning key gets 401 everywhere else."""
    locked = limits.lockout.locked_for(_address(request))
    if locked:
        _throttled(limits, request, request_id, "too many wrong API keys from this address; "
                   "try again after Retry-After seconds", locked)
    scheme, _, key = (authorization or "").partition(" ")
    if not authorization or scheme.lower() != "bearer" or not key.strip():
        _unauthorized(limits, request, request_id, "SCIM needs a provisioning key",
                      wrong_key=bool(authorization), hint=PROVISIONING_HINT)
    if looks_like_jwt(key.strip()):
        _unauthorized(limits, request, request_id, "SCIM needs a provisioning key, not an "
                      "access token", wrong_key=False, hint=PROVISIONING_HINT)
    found = services.keys.identify(key.strip())
    if found is None:
        _unauthorized(limits, request, request_id, "unknown, revoked or expired provisioning "
                      "key", wrong_key=True, hint=PROVISIONING_HINT)
    assert found is not None
    if found.kind != "provisioning":
        _unauthorized(limits, request, request_id, "SCIM needs a provisioning key, not a "
                      "caller's key", wrong_key=False, hint=PROVISIONING_HINT)
    request.state.caller = f"provisioning:{found.user}"
    return request.state.caller, request_id


_caller.permission = CALLER  # type: ignore[attr-defined]
_public.permission = PUBLIC  # type: ignore[attr-defined]
_provisioner.permission = PROVISIONING  # type: ignore[attr-defined]

# Annotate search and chat callers with this: the caller's own scope, no admin permission.
CallerDep = Annotated[Scope, Depends(_caller)]
# Put `dependencies=[Public]` on a route that needs no key.
Public = Depends(_public)
# Annotate the SCIM routes with this: the provisioning key's (actor, request id).
ProvisionerDep = Annotated[tuple[str, str], Depends(_provisioner)]
