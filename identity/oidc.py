"""OIDC access tokens from the organisation's identity provider: the one module that reads them.

A bearer token that is a JWT is checked against the issuers the config names, and nothing else:

- the header's `alg` must be one the issuer's config allows (RS256 and ES256 at most): `none`,
  HMAC (HS256 "signed" with a public key) and anything else are refused before any key is used;
- the unverified `iss` picks the issuer's config; an issuer not configured is refused;
- the key is the JWKS entry of the header's `kid`, from the issuer's discovery document
  (`<issuer>/.well-known/openid-configuration`, its `jwks_uri`), both fetched over HTTPS (or
  loopback HTTP) and cached; an unknown `kid` refetches the JWKS once (at most every
  `refetch_min_s`), so a key rotated at the provider is picked up without a restart, and a
  flood of made-up kids cannot make a fetch each;
- the signature, then `iss`, `aud` (the configured audience), `exp`, `nbf` and `iat`, with
  `clock_skew_s` of leeway; `exp` and `iat` are required;
- the user is the configured claim (`sub`, `email` or `preferred_username`); with
  `email_domain` (required for `email`), only addresses of that domain, mapped to their local
  part (`carol@larkspur.example` is `user:carol`). It must be a valid user name;
- the user's groups come from the `groups_claim` only where the issuer's config names one
  (identity/groups.py: which values count and the principal each becomes); otherwise the
  token carries none, and memberships come from the policy and the directory alone.

Every refusal is a TokenRejected naming what was wrong, never the token.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlparse

import httpx
import jwt
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from control.keys import user_of_address, validate_user
from identity.groups import GroupClaim, map_target
from policies.principals import DEFAULT_TENANT, is_tenant

Algorithm = Literal["RS256", "ES256"]
UserClaim = Literal["sub", "email", "preferred_username"]
_DEFAULT_ALGORITHMS: tuple[Algorithm, ...] = ("RS256",)


Resource = Literal["api", "mcp"]  # what a token is presented to


class IssuerSettings(BaseModel):
    """One identity provider whose access tokens are accepted (`[[oidc.issuers]]`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    issuer: str  # exactly as the tokens' `iss` says
    audience: str  # the tokens' `aud` must contain it: this service's identifier at the IdP
    # The MCP server's own identifier at the IdP (its resource URL, say): tokens for /mcp must
    # hold it in `aud`, and no API token is accepted there. Unset: no token of this issuer is
    # accepted at /mcp (API keys still are).
    mcp_audience: str | None = None
    algorithms: list[Algorithm] = Field(default_factory=lambda: list(_DEFAULT_ALGORITHMS),
                                        min_length=1)
    user_claim: UserClaim = "sub"
    email_domain: str | None = None  # claims are addresses of it; required for "email"
    clock_skew_s: int = Field(default=60, ge=0, le=300)
    jwks_cache_s: int = Field(default=3600, ge=10)
    refetch_min_s: int = Field(default=10, ge=0)
    discovery_url: str | None = None  # default: <issuer>/.well-known/openid-configuration
    # Group memberships from the token (identity/groups.py): none unless groups_claim is set.
    groups_claim: str | None = Field(default=None, min_length=1)
    groups_tenant: str = DEFAULT_TENANT  # the tenant of a claimed group (unless mapped)
    group_prefix: str | None = None  # only values starting with it count, as group:<the rest>
    group_map: dict[str, str] = Field(default_factory=dict)  # value → group:NAME, TENANT/...

    @field_validator("issuer", "discovery_url")
    @classmethod
    def _https(cls, value: str | None) -> str | None:
        if value is not None:
            check_provider_url(value)
        return value

    @model_validator(mode="after")
    def _email_domain(self) -> IssuerSettings:
        if self.user_claim == "email" and not self.email_domain:
            raise ValueError("user_claim = \"email\" needs email_domain: only addresses of that "
                             "domain are users, by their local part")
        return self

    @model_validator(mode="after")
    def _groups(self) -> IssuerSettings:
        if self.groups_claim is None:
            named = [k for k in ("groups_tenant", "group_prefix", "group_map")
                     if k in self.model_fields_set]
            if named:
                raise ValueError(f"{', '.join(named)} without groups_claim: name the claim "
                                 "that holds the groups (e.g. groups_claim = \"groups\")")
            return self
        if not is_tenant(self.groups_tenant):
            raise ValueError(f"groups_tenant {self.groups_tenant!r} is not a tenant name")
        for target in self.group_map.values():
            map_target(target, self.groups_tenant)
        return self


class OidcSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    issuers: list[IssuerSettings] = Field(default_factory=list)


def check_provider_url(url: str) -> None:
    parsed = urlparse(url)
    loopback = parsed.hostname in ("127.0.0.1", "localhost", "::1")
    if parsed.scheme != "https" and not (parsed.scheme == "http" and loopback):
        raise ValueError(f"{url!r}: an identity provider is reached over https (http only on "
                         "loopback, for tests)")


_KEY_TYPES = {"RS256": "RSA", "ES256": "EC"}


class TokenRejected(Exception):
    """The token is not accepted; the message says why (and never holds the token)."""


@dataclass(frozen=True)
class TokenIdentity:
    user: str
    issuer: str
    subject: str
    # ACL tokens of the groups the token claims, when the issuer's config uses its groups
    # claim (identity/groups.py); for this request only.
    groups: tuple[str, ...] = ()
    expires_at: float | None = None  # the token's `exp`, epoch seconds


class _Keys:
    """One issuer's discovery document and JWKS, cached."""

    def __init__(self, settings: IssuerSettings, client: httpx.Client) -> None:
        self.settings = settings
        self._client = client
        self._lock = threading.Lock()
        self._keys: dict[str, Any] = {}
        self._fetched_at = float("-inf")
        self._jwks_uri: str | None = None

    def key(self, kid: str) -> Any:
        with self._lock:
            now = time.monotonic()
            if now - self._fetched_at > self.settings.jwks_cache_s:
                self._refresh(now)
            elif kid not in self._keys and now - self._fetched_at >= self.settings.refetch_min_s:
                self._refresh(now)  # a key rotated at the provider
            key = self._keys.get(kid)
        if key is None:
            raise TokenRejected(f"unknown signing key {kid!r} for issuer "
                                f"{self.settings.issuer}")
        return key

    def _refresh(self, now: float) -> None:
        try:
            if self._jwks_uri is None:
                url = (self.settings.discovery_url or
                       self.settings.issuer.rstrip("/") + "/.well-known/openid-configuration")
                discovery = self._get(url)
                if discovery.get("issuer") != self.settings.issuer:
                    raise TokenRejected(f"the discovery document at {url} names issuer "
                                        f"{discovery.get('issuer')!r}, not "
                                        f"{self.settings.issuer!r}")
                jwks_uri = discovery.get("jwks_uri")
                if not isinstance(jwks_uri, str):
                    raise TokenRejected(f"the discovery document at {url} has no jwks_uri")
                check_provider_url(jwks_uri)
                self._jwks_uri = jwks_uri
            jwks = self._get(self._jwks_uri)
            keys: dict[str, Any] = {}
            for jwk in jwks.get("keys", []):
                if not isinstance(jwk, dict) or not isinstance(jwk.get("kid"), str):
                    continue
                if jwk.get("use", "sig") != "sig":
                    continue
                try:
                    keys[jwk["kid"]] = jwt.PyJWK.from_dict(jwk)
                except (jwt.PyJWKError, ValueError, KeyError):
                    continue  # an entry we cannot use (an unsupported key type)
            self._keys, self._fetched_at = keys, now
        except (httpx.HTTPError, ValueError) as exc:
            self._fetched_at = now  # do not hammer a provider that is down
            raise TokenRejected(f"the keys of issuer {self.settings.issuer} cannot be "
                                f"fetched: {type(exc).__name__}") from exc

    def _get(self, url: str) -> dict[str, Any]:
        response = self._client.get(url)
        response.raise_for_status()
        data = json.loads(response.content)
        if not isinstance(data, dict):
            raise ValueError(f"{url} did not return a JSON object")
        return data


class OidcVerifier:
    """Checks access tokens of the configured issuers (see the module docstring)."""

    def __init__(self, settings: OidcSettings, client: httpx.Client | None = None) -> None:
        self._client = client or httpx.Client(timeout=5.0, follow_redirects=False)
        self._issuers = {i.issuer: _Keys(i, self._client) for i in settings.issuers}
        self._groups = {
            i.issuer: GroupClaim(i.issuer, i.groups_claim, tenant=i.groups_tenant,
                                 prefix=i.group_prefix, table=i.group_map)
            for i in settings.issuers if i.groups_claim is not None
        }

    def close(self) -> None:
        self._client.close()

    @property
    def enabled(self) -> bool:
        return bool(self._issuers)

    def mcp_issuers(self) -> list[str]:
        """The issuers whose tokens /mcp accepts (those with an mcp_audience)."""
        return [i for i, keys in self._issuers.items() if keys.settings.mcp_audience]

    def verify(self, token: str, *, resource: Resource = "api") -> TokenIdentity:
        """The identity of a valid token for `resource` (the API, or the MCP server: each has
        its own audience); TokenRejected says why any other token is refused."""
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise TokenRejected(f"not a well-formed JWT ({type(exc).__name__})") from None
        issuer = unverified.get("iss")
        keys = self._issuers.get(issuer) if isinstance(issuer, str) else None
        if keys is None:
            raise TokenRejected(f"issuer {issuer!r} is not one this service accepts")
        settings = keys.settings
        audience = settings.audience if resource == "api" else settings.mcp_audience
        if audience is None:
            raise TokenRejected(f"issuer {issuer} issues no tokens for the MCP server (its "
                                "mcp_audience is not set)")
        alg = header.get("alg")
        if alg not in settings.algorithms:
            raise TokenRejected(f"algorithm {alg!r} is not accepted for issuer {issuer} "
                                f"(only {', '.join(settings.algorithms)})")
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise TokenRejected("the token names no signing key (kid)")
        jwk = keys.key(kid)
        if jwk.key_type != _KEY_TYPES[alg]:
            raise TokenRejected(f"key {kid!r} is not a {alg} key")
        try:
            claims = jwt.decode(
                token, jwk.key, algorithms=[alg], audience=audience, issuer=issuer,
                leeway=settings.clock_skew_s,
                options={"require": ["exp", "iat", "iss", "aud"], "verify_iat": True},
            )
        except jwt.ExpiredSignatureError:
            raise TokenRejected("the token has expired") from None
        except jwt.ImmatureSignatureError:
            raise TokenRejected("the token is not valid yet (nbf or iat in the future)") from None
        except jwt.InvalidAudienceError:
            raise TokenRejected(f"the token is not for this service (aud must hold "
                                f"{audience!r})") from None
        except jwt.InvalidIssuerError:
            raise TokenRejected("the token's issuer does not match") from None
        except jwt.MissingRequiredClaimError as exc:
            raise TokenRejected(f"the token has no {exc.claim!r} claim") from None
        except jwt.PyJWTError as exc:
            raise TokenRejected(f"the token does not verify ({type(exc).__name__})") from None
        user = _user(claims, settings)
        groups = self._groups[issuer].tokens(claims) if issuer in self._groups else ()
        exp = claims.get("exp")
        return TokenIdentity(user, settings.issuer, str(claims.get("sub")), groups,
                             float(exp) if isinstance(exp, int | float) else None)


def _user(claims: dict[str, Any], settings: IssuerSettings) -> str:
    value = claims.get(settings.user_claim)
    if not isinstance(value, str) or not value:
        raise TokenRejected(f"the token has no {settings.user_claim!r} claim naming the user")
    try:
        if settings.email_domain:  # an address of the organisation's domain: its local part
            return user_of_address(value, settings.email_domain)
        return validate_user(value)
    except ValueError as exc:
        raise TokenRejected(f"the token's {settings.user_claim!r} is not a valid user name "
                            f"({exc})") from None


def looks_like_jwt(token: str) -> bool:
    """A bearer token of three base64url parts (an API key starts with `clr_` instead)."""
    return token.count(".") == 2 and not token.startswith("clr_")
