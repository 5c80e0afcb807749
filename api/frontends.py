"""Trusted front-ends (Open WebUI and the like) that ask on behalf of their signed-in users.

A front-end authenticates with a key of kind `frontend` (`clearance keys create NAME --frontend`)
and names the end user in a header; `[[frontends]]` in the config says which header it sends
for the key's NAME. The header is honoured only with that front-end's key, the user it names
must be known to the policy, and the key alone is never a user: without the header it is
refused. The same headers sent with any other key or token are refused too, so nobody can
borrow a user's identity by adding a header. The caller is then the named user (their own
permissions, their own rate limit), on record `via: frontend:NAME`.
"""

from __future__ import annotations

from collections.abc import Mapping

from application.settings import FrontendSettings
from control.keys import user_of_address, validate_user

# Open WebUI's headers (ENABLE_FORWARD_USER_INFO_HEADERS); a front-end's own are in its config.
DEFAULT_USER_HEADERS = ("X-OpenWebUI-User-Email", "X-OpenWebUI-User-Id",
                        "X-OpenWebUI-User-Name", "X-OpenWebUI-User-Role")


class FrontendRefused(Exception):
    """The request's front-end identity is not accepted; the message says why."""


def user_headers(frontends: list[FrontendSettings]) -> frozenset[str]:
    """Every header that names an end user: refused unless sent with a front-end's key."""
    return frozenset(h.lower() for h in (*DEFAULT_USER_HEADERS,
                                         *(f.user_header for f in frontends)))


def end_user(frontends: list[FrontendSettings], key_user: str, headers: Mapping[str, str]
             ) -> tuple[str, FrontendSettings]:
    """The user a front-end key's request names, and the front-end; FrontendRefused if the key
    has no `[[frontends]]` entry, the header is missing, or it names no valid user."""
    frontend = next((f for f in frontends if f.name == key_user), None)
    if frontend is None:
        raise FrontendRefused(f"the front-end key of {key_user!r} has no [[frontends]] entry "
                              "in the config naming its user header")
    value = headers.get(frontend.user_header)
    if not value:
        raise FrontendRefused(f"a front-end key is not a user: send the signed-in user in "
                              f"{frontend.user_header}")
    try:
        if frontend.email_domain:
            return user_of_address(value, frontend.email_domain), frontend
        return validate_user(value), frontend
    except ValueError as exc:
        raise FrontendRefused(f"{frontend.user_header} names no valid user ({exc})") from None
