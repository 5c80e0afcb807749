"""The web page's cookies and response headers, set the same way by every route that sends them.

Cookies are HttpOnly (no script reads them), SameSite=Lax (another site's page cannot make the
browser send them with a POST), Secure when the browser reached the service over https (or
always, with `[web] cookie_secure = "always"`), and scoped to the path that reads them.
Pages carry a Content-Security-Policy with no inline script or style, so text that reached a
page could not run even if it were ever put there as HTML (it never is: the page renders every
answer, citation and document as text).
"""

from __future__ import annotations

from fastapi import Request, Response

from application.settings import WebSettings
from identity.web_session import LOGIN_COOKIE, LOGIN_TTL_S, SESSION_COOKIE

CONTENT_SECURITY_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; "
                           "img-src 'self'; connect-src 'self'; form-action 'self'; "
                           "frame-ancestors 'none'; base-uri 'none'")
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
CALLBACK_PATH = "/auth/callback"


def _secure(request: Request, web: WebSettings) -> bool:
    return web.cookie_secure == "always" or request.url.scheme == "https"


def set_session_cookie(response: Response, request: Request, web: WebSettings, sealed: str,
                       max_age_s: int) -> None:
    response.set_cookie(SESSION_COOKIE, sealed, max_age=max(1, max_age_s), path="/",
                        httponly=True, secure=_secure(request, web), samesite="lax")


def clear_session_cookie(response: Response, request: Request, web: WebSettings) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True,
                           secure=_secure(request, web), samesite="lax")


def set_login_cookie(response: Response, request: Request, web: WebSettings,
                     sealed: str) -> None:
    # Only the callback reads it; Lax still sends it on the provider's top-level redirect back.
    response.set_cookie(LOGIN_COOKIE, sealed, max_age=LOGIN_TTL_S, path=CALLBACK_PATH,
                        httponly=True, secure=_secure(request, web), samesite="lax")


def clear_login_cookie(response: Response, request: Request, web: WebSettings) -> None:
    response.delete_cookie(LOGIN_COOKIE, path=CALLBACK_PATH, httponly=True,
                           secure=_secure(request, web), samesite="lax")


def same_origin(request: Request) -> bool:
    """False when the browser says the request came from another site's page (`Origin`)."""
    origin = request.headers.get("origin")
    if origin is None:
        return True  # not a browser's cross-site request: those always carry Origin on POST
    base = f"{request.url.scheme}://{request.url.netloc}"
    return origin == base
