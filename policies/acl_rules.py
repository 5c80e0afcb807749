"""A source's ACL rules and the ACL they give a document: shared by ingestion and retrieval.

Ingestion stamps each chunk with its document's ACL when it builds an index version
(ingest/sources.py); retrieval computes the same ACL again at query time, so that a rule or an
override changed since the build applies to every version (retrieval/access.py), and explains
which rule decided (retrieval/explain.py). Both use the functions here, so neither imports the
other.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator

from policies.principals import check_principals, normalize, tokens


class AclRule(BaseModel):
    """Files whose path (relative to the source) matches `glob` are readable by `allow`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    glob: str = Field(min_length=1)
    allow: list[str] = Field(min_length=1)

    @field_validator("glob")
    @classmethod
    def _nfc_glob(cls, glob: str) -> str:
        return normalize(glob)  # document paths are matched in NFC

    @field_validator("allow")
    @classmethod
    def _principals(cls, allow: list[str]) -> list[str]:
        return check_principals(allow)


class AclSource(Protocol):
    """What ACL evaluation reads of a declared source (ingest.settings.SourceSettings is one)."""

    @property
    def name(self) -> str: ...

    @property
    def tenant(self) -> str: ...

    @property
    def acl(self) -> Sequence[AclRule]: ...


def matching_rule(rules: Sequence[AclRule], uri: str) -> int | None:
    """The index of the first rule whose glob matches `uri`, or None.

    Globs match the whole relative path and `*` also crosses `/` (fnmatch rules), so
    `board/*` covers everything under board/.
    """
    return next((i for i, rule in enumerate(rules) if fnmatch.fnmatchcase(uri, rule.glob)), None)


def acl_for(rules: Sequence[AclRule], uri: str) -> tuple[str, ...] | None:
    """The `allow` list of the first rule whose glob matches `uri`, or None."""
    index = matching_rule(rules, uri)
    return None if index is None else tuple(dict.fromkeys(rules[index].allow))


def document_acl(
    source: AclSource, uri: str, override: Sequence[str] | None = None
) -> tuple[str, ...] | None:
    """A document's ACL as tokens of its source's tenant (policies/principals.py): its override
    (`clearance acl set`) if it has one, else the first matching rule; None if neither."""
    principals = override if override is not None else acl_for(source.acl, uri)
    return None if principals is None else tokens(source.tenant, principals)


def effective_acl(
    source: AclSource,
    uri: str,
    overrides: Mapping[str, Sequence[str]],
    link_target: str | None = None,
) -> tuple[str, ...] | None:
    """`document_acl` with the document's override; for a link followed to `link_target`, only
    the tokens the target's ACL (with its own override) also has: () if none, None if either
    side has no ACL at all."""
    acl = document_acl(source, uri, overrides.get(f"{source.name}:{uri}"))
    if link_target is None or acl is None:
        return acl
    target = document_acl(source, link_target, overrides.get(f"{source.name}:{link_target}"))
    return None if target is None else tuple(t for t in acl if t in target)
