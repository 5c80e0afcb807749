"""Settings owned by ingestion: the declared sources with their ACL rules, and chunking."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from policies.principals import DEFAULT_TENANT, is_principal, is_tenant, normalize


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
        allow = [normalize(p) for p in allow]
        bad = [p for p in allow if not is_principal(p)]
        if bad:
            raise ValueError(
                f"{bad} not principals: write user:<name>, group:<name> or role:<name>"
            )
        return allow


class SourceSettings(BaseModel):
    """A directory the service may read, who owns it, and who may read which files in it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    path: Path
    owner: str = Field(min_length=1)
    tenant: str = DEFAULT_TENANT  # its documents are readable only by principals of this tenant
    acl: list[AclRule] = Field(default_factory=list)

    @field_validator("tenant")
    @classmethod
    def _tenant(cls, tenant: str) -> str:
        if not is_tenant(tenant):
            raise ValueError(f"{tenant!r} is not a tenant name: lower-case letters, digits, "
                             "'_' and '-'")
        return tenant


class IngestSettings(BaseModel):
    """How documents are cut into chunks."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    chunk_size: int = Field(default=200, ge=32, le=256)  # tokens; the embedder reads 256
    chunk_overlap: int = Field(default=30, ge=0, le=128)
    keep_versions: int = Field(default=3, ge=1, le=100)  # older versions are deleted on switch
