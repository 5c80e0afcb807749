"""Find the files of each declared source and the ACL that applies to each one."""

from __future__ import annotations

import fnmatch
import hashlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ingest.errors import ConfigError
from ingest.settings import AclRule, SourceSettings
from policies.principals import normalize, tokens


@dataclass(frozen=True)
class SourceFile:
    """One file of a source, with its stable id and the principals allowed to read it."""

    source: str
    path: Path
    uri: str  # path relative to the source root, with forward slashes, Unicode NFC
    modified_at: datetime
    acl: tuple[str, ...] | None  # ACL tokens; None: no rule matched, so nobody may read it

    @property
    def doc_id(self) -> str:
        """Stable across versions: it depends only on the source name and relative path."""
        return f"{self.source}:{self.uri}"


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
    source: SourceSettings, uri: str, override: Sequence[str] | None = None
) -> tuple[str, ...] | None:
    """A document's ACL as tokens of its source's tenant (policies/principals.py): its override
    (`clearance acl set`) if it has one, else the first matching rule; None if neither."""
    principals = override if override is not None else acl_for(source.acl, uri)
    return None if principals is None else tokens(source.tenant, principals)


def discover(sources: Sequence[SourceSettings]) -> Iterator[SourceFile]:
    """Every regular file under each source root, in a stable order.

    Hidden files and directories are skipped, and so are links that lead outside the source
    root: the service reads only what was declared for it.
    """
    for source in sources:
        root = source.path.resolve()
        if not root.is_dir():
            raise ConfigError(
                f"source {source.name!r}: {source.path} is not a directory; "
                "fix its path in the config file"
            )
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                if name.startswith("."):
                    continue
                path = Path(dirpath) / name
                resolved = path.resolve()
                if not resolved.is_file() or not resolved.is_relative_to(root):
                    continue
                # NFC, like every name the policy compares it with: a file saved with an NFD
                # name (macOS) gets the same id as the name typed in a deny rule or a command.
                uri = normalize(path.relative_to(root).as_posix())
                mtime = datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)
                yield SourceFile(source.name, path, uri, mtime, document_acl(source, uri))


def content_hash(path: Path) -> str:
    """The document version: sha256 of the file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
