"""Settings owned by ingestion: the declared sources with their ACL rules, and chunking."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ByteSize, ConfigDict, Field, field_validator

from policies.acl_rules import AclRule
from policies.principals import DEFAULT_TENANT, is_tenant

_MiB = 1 << 20
# Sizes are bytes, or strings with a unit: "100 MiB", "2 GiB" (powers of 1024), "10 MB" (of 1000).
_FileBytes = Annotated[ByteSize, Field(ge=1, le=1 << 40)]
_TextBytes = Annotated[ByteSize, Field(ge=1, le=1 << 32)]
_MemoryBytes = Annotated[ByteSize, Field(ge=64 * _MiB, le=1 << 40)]
_Ratio = Annotated[int, Field(ge=2, le=1_000_000)]
_Seconds = Annotated[int, Field(ge=1, le=86_400)]


class FileLimits(BaseModel):
    """What parsing one file may take; a file over any limit is reported and not indexed.

    The defaults pass office documents with room to spare and stop bombs. Measured (2 busy
    cores): a 900-page text PDF adds 467 MiB and takes 150 s of CPU, a 4 MiB .txt 131 MiB and
    7 s, a SciFact abstract or an example-corpus file at most 65 MiB and 0.4 s; a real .docx
    member inflates at most 32 times (styles), its document.xml 11.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_file_bytes: _FileBytes = ByteSize(100 * _MiB)  # any file, checked before it is read
    # .txt, .md and .html: their file size; every format: the text parsing yields. Parsing and
    # chunking cost grows with it, and chunking runs in the build process itself.
    max_text_bytes: _TextBytes = ByteSize(4 * _MiB)
    max_inflated_bytes: _FileBytes = ByteSize(256 * _MiB)  # a .docx's members, inflated
    max_inflation_ratio: _Ratio = 100  # inflated / compressed, for members over 1 MiB
    memory_bytes: _MemoryBytes = ByteSize(1024 * _MiB)  # address space the parser may add
    cpu_seconds: _Seconds = 300
    wall_seconds: _Seconds = 600  # the parser is killed: a hang, or a machine too busy

    def overridden(self, overrides: SourceLimits) -> FileLimits:
        """These limits with a source's own values in place of the global ones."""
        return self.model_copy(update=overrides.model_dump(exclude_none=True))


class SourceLimits(BaseModel):
    """A source's own limits; a key left out keeps the global `[ingest.limits]` value."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_file_bytes: _FileBytes | None = None
    max_text_bytes: _TextBytes | None = None
    max_inflated_bytes: _FileBytes | None = None
    max_inflation_ratio: _Ratio | None = None
    memory_bytes: _MemoryBytes | None = None
    cpu_seconds: _Seconds | None = None
    wall_seconds: _Seconds | None = None


class SourceSettings(BaseModel):
    """A directory the service may read, who owns it, and who may read which files in it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    path: Path
    owner: str = Field(min_length=1)
    tenant: str = DEFAULT_TENANT  # its documents are readable only by principals of this tenant
    acl: list[AclRule] = Field(default_factory=list)
    limits: SourceLimits = SourceLimits()  # overrides of [ingest.limits]
    # Symbolic links: "skip" (default) follows none; "within_source" follows links to files of
    # this source, readable only by principals both the link's ACL and the target's allow.
    links: Literal["skip", "within_source"] = "skip"

    @field_validator("tenant")
    @classmethod
    def _tenant(cls, tenant: str) -> str:
        if not is_tenant(tenant):
            raise ValueError(f"{tenant!r} is not a tenant name: lower-case letters, digits, "
                             "'_' and '-'")
        return tenant


class IngestSettings(BaseModel):
    """How documents are cut into chunks, and what parsing one file may take."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    chunk_size: int = Field(default=200, ge=32, le=256)  # tokens; the embedder reads 256
    chunk_overlap: int = Field(default=30, ge=0, le=128)
    keep_versions: int = Field(default=3, ge=1, le=100)  # older versions are deleted on switch
    limits: FileLimits = FileLimits()  # per file; a source may override them
