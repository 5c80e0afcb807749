"""Principal names, tenants, and the tokens that chunk ACLs and callers share.

A principal is "user:<name>", "group:<name>" or "role:<name>", compared exactly (case matters)
after Unicode NFC normalisation, so the same name typed in two normal forms is one principal.
A tenant is a Casbin domain. In the default tenant a principal's token is the principal itself;
in tenant T it is "T/<principal>", so "group:hr" of two tenants never match each other (a
principal cannot start with a tenant name and "/", since it starts with "user:", "group:" or
"role:", and a tenant name has no ":").
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

DEFAULT_TENANT = "default"
PRINCIPAL_RE = re.compile(r"^(user|group|role):[^\s,]+$")
TENANT_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


def normalize(value: str) -> str:
    """The NFC form: principals are stored and compared in it."""
    return unicodedata.normalize("NFC", value)


def is_principal(value: str) -> bool:
    """True for "user:<name>", "group:<name>" or "role:<name>" with no spaces or commas."""
    return bool(PRINCIPAL_RE.match(value))


def check_principals(values: Iterable[str]) -> list[str]:
    """The principals in NFC, without repeats; ValueError naming those that are not principals."""
    normalized = [normalize(v) for v in values]
    bad = [p for p in normalized if not is_principal(p)]
    if bad:
        raise ValueError(f"{bad} are not principals: write user:<name>, group:<name> or "
                         "role:<name>")
    return list(dict.fromkeys(normalized))


def is_tenant(value: str) -> bool:
    """Lower-case letters, digits, '_' and '-'; at most 64 characters."""
    return bool(TENANT_RE.match(value))


def token(tenant: str, principal: str) -> str:
    """The ACL token of `principal` in `tenant` (see the module docstring)."""
    principal = normalize(principal)
    return principal if tenant == DEFAULT_TENANT else f"{tenant}/{principal}"


def tokens(tenant: str, principals: Iterable[str]) -> tuple[str, ...]:
    """Tokens of several principals, in order, without repeats."""
    return tuple(dict.fromkeys(token(tenant, p) for p in principals))


def split_token(value: str) -> tuple[str, str]:
    """(tenant, principal) of an ACL token: the inverse of token()."""
    head = value.split(":", 1)[0]
    if "/" in head:
        tenant, _, principal = value.partition("/")
        return tenant, principal
    return DEFAULT_TENANT, value
