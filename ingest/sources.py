"""Find the files of each declared source and the ACL that applies to each one (the rules
themselves: policies/acl_rules.py).

No symbolic link is followed by default: not a link to a file, not a link to a directory, and
no file is read whose directory was reached through one. A link inside a source once made its
target readable under the link path's ACL (`public/notes.docx -> ../board/plan.docx` opened a
board document to all staff). A source with `links = "within_source"` follows links to regular
files of the same source, one hop, and such a document is readable only by principals that both
the link's ACL and its target's allow (the intersection; empty: nobody, reported). Every link
not followed is reported with where it leads.

A file whose path has a control character, a line or paragraph separator, a bidi control or
bytes that are not UTF-8 is not read either (reported): document ids go into audit records,
policy lines (`doc:ID`), commands and logs, where such a character forges or hides text.
"""

from __future__ import annotations

import hashlib
import os
import stat
import unicodedata
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from ingest.errors import ConfigError
from ingest.settings import SourceSettings
from policies.acl_rules import effective_acl
from policies.principals import normalize

# Trojan-source bidi controls (CVE-2021-42574): they reorder how the text around them shows.
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})  # controls, lone surrogates, separators


@dataclass(frozen=True)
class SourceFile:
    """One file of a source, with its stable id and the principals allowed to read it."""

    source: str
    path: Path  # the file read; for a followed link its target, so no read goes through a link
    uri: str  # path relative to the source root, with forward slashes, Unicode NFC
    modified_at: datetime
    acl: tuple[str, ...] | None  # ACL tokens; None or (): nobody may read it
    link_target: str | None = None  # a followed link: its target's uri

    @property
    def doc_id(self) -> str:
        """Stable across versions: it depends only on the source name and relative path."""
        return f"{self.source}:{self.uri}"

    def no_acl_reason(self) -> str:
        """Why nobody may read this file (its ACL is None or empty)."""
        if self.link_target is None:
            return "no ACL rule matches this file"
        return (f"symbolic link to {self.link_target}: no principal is allowed by both the "
                "link's ACL and its target's")


@dataclass(frozen=True)
class Skipped:
    """A path of a source that was not read for what it is (a link, an unsafe name), and why."""

    source: str
    uri: str
    reason: str

    @property
    def doc_id(self) -> str:
        return f"{self.source}:{self.uri}"


def unsafe_character(text: str) -> str | None:
    """The first character of `text` that may not be in a document id, as U+XXXX, or None."""
    for ch in text:
        if ch in _BIDI or unicodedata.category(ch) in _UNSAFE_CATEGORIES:
            return f"U+{ord(ch):04X}"
    return None


def printable(text: str) -> str:
    """`text` (a file name, a reason naming one) as one line that shows what it holds: control,
    format (bidi, zero-width) and separator characters, lone surrogates and backslashes are
    written as escapes."""
    out = []
    for ch in text:
        if ch == "\\":
            out.append("\\\\")
        elif unicodedata.category(ch) in {"Cc", "Cf", "Cs", "Zl", "Zp"}:
            out.append(ch.encode("unicode_escape").decode("ascii") if ch.isascii()
                       else f"\\u{ord(ch):04x}" if ord(ch) <= 0xFFFF else f"\\U{ord(ch):08x}")
        else:
            out.append(ch)
    return "".join(out)


def discover(
    sources: Sequence[SourceSettings], skipped: list[Skipped] | None = None
) -> Iterator[SourceFile]:
    """Every regular file under each source root, in a stable order.

    Hidden files and directories are skipped silently. Links not followed and files with unsafe
    names (see the module docstring) are appended to `skipped`. A source root given through a
    link is resolved once: the operator declared that path.
    """
    report = skipped if skipped is not None else []
    for source in sources:
        root = source.path.resolve()
        if not root.is_dir():
            raise ConfigError(
                f"source {source.name!r}: {source.path} is not a directory; "
                "fix its path in the config file"
            )
        yield from _walk(source, root, report)


def _walk(source: SourceSettings, root: Path, skipped: list[Skipped]) -> Iterator[SourceFile]:
    # followlinks=False: a link to a directory is listed in `dirnames` but never entered.
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        if os.path.realpath(dirpath) != dirpath:  # replaced by a link after it was listed
            dirnames[:] = []
            skipped.append(Skipped(source.name, _relative(here, root),
                                   "directory replaced by a symbolic link, not read"))
            continue
        kept = []
        for name in sorted(d for d in dirnames if not d.startswith(".")):
            if (here / name).is_symlink():
                skipped.append(_link_not_followed(source, root, here / name, directory=True))
            else:
                kept.append(name)
        dirnames[:] = kept
        for name in sorted(filenames):
            if not name.startswith("."):
                path = here / name
                found = _file(source, root, path, _relative(path, root), skipped)
                if found is not None:
                    yield found


def _relative(path: Path, root: Path) -> str:
    # NFC, like every name the policy compares it with: a file saved with an NFD name (macOS)
    # gets the same id as the name typed in a deny rule or a command.
    return normalize(path.relative_to(root).as_posix())


def _file(
    source: SourceSettings, root: Path, path: Path, uri: str, skipped: list[Skipped]
) -> SourceFile | None:
    bad = unsafe_character(uri)
    if bad is not None:
        skipped.append(Skipped(source.name, uri, f"file name has the character {bad}, which a "
                               "document id may not hold; not read (rename the file)"))
        return None
    try:
        info = path.lstat()
    except FileNotFoundError:
        return None  # deleted since it was listed
    if stat.S_ISLNK(info.st_mode):
        return _link(source, root, path, uri, skipped)
    if not stat.S_ISREG(info.st_mode):
        return None  # a FIFO, socket or device: reading it could block or never end
    mtime = datetime.fromtimestamp(info.st_mtime, tz=UTC)
    return SourceFile(source.name, path, uri, mtime, effective_acl(source, uri, {}))


def _link(
    source: SourceSettings, root: Path, path: Path, uri: str, skipped: list[Skipped]
) -> SourceFile | None:
    """The SourceFile a link stands for, if its source follows it; else it is reported."""
    if source.links == "skip":
        skipped.append(_link_not_followed(source, root, path, directory=False))
        return None
    problem, real = _link_problem(root, path)
    if problem is not None:
        skipped.append(Skipped(source.name, uri, problem))
        return None
    target = _relative(real, root)
    if target.startswith(".") or "/." in target:
        problem = f"symbolic link to {target}, a hidden file, not followed"
    elif unsafe_character(target) is not None:
        problem = f"symbolic link to {target}, whose name a document id may not hold, not followed"
    if problem is not None:
        skipped.append(Skipped(source.name, uri, problem))
        return None
    mtime = datetime.fromtimestamp(real.stat().st_mtime, tz=UTC)
    acl = effective_acl(source, uri, {}, target)
    return SourceFile(source.name, real, uri, mtime, acl, link_target=target)


def _link_problem(root: Path, path: Path) -> tuple[str | None, Path]:
    """Why a source with links = "within_source" does not follow this link (None: it does)."""
    raw = os.readlink(path)
    try:
        real = Path(os.path.realpath(path, strict=True))
    except OSError as exc:
        return _unresolved(raw, exc), path
    if not real.is_relative_to(root):
        return f"symbolic link to {raw}, which leads outside the source, not followed", real
    shown = real.relative_to(root).as_posix()
    if real.is_dir():
        return (f"symbolic link to the directory {shown}, not followed (only links to files "
                "are followed)"), real
    if not real.is_file():
        return f"symbolic link to {shown}, not a regular file, not followed", real
    if Path(os.path.normpath(path.parent / raw)) != real:
        return f"symbolic link to {shown} through other links, not followed", real
    return None, real


def _link_not_followed(
    source: SourceSettings, root: Path, path: Path, *, directory: bool
) -> Skipped:
    """A link that is reported and not read, with where it leads."""
    uri = _relative(path, root)
    raw = os.readlink(path)
    try:
        real = Path(os.path.realpath(path, strict=True))
    except OSError as exc:
        return Skipped(source.name, uri, _unresolved(raw, exc))
    if not real.is_relative_to(root):
        return Skipped(source.name, uri,
                       f"symbolic link to {raw}, which leads outside the source, not followed")
    what = "the directory " if directory else ""
    why = '(links = "skip")' if source.links == "skip" else "(only links to files are followed)"
    return Skipped(source.name, uri, f"symbolic link to {what}"
                   f"{real.relative_to(root).as_posix()}, not followed {why}")


def _unresolved(raw: str, exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError):
        return f"symbolic link to {raw}, which does not exist (a dangling link), not followed"
    return f"symbolic link to {raw}, which cannot be resolved ({exc.strerror}), not followed"


def locate(source: SourceSettings, uri: str) -> SourceFile | None:
    """The file at `uri` of `source` now, found as `discover` would find it, or None where
    discovery would not read it: a uri not in NFC (discovery writes each in NFC), a name a
    document id may not hold, a hidden or relative part (".", ".."), a directory on the way that
    is a link or not a directory, a link the source does not follow (one out of the source, say),
    or no such regular file. For a followed link, `path` is its target, as for discovery."""
    parts = uri.split("/")
    if uri != normalize(uri) or unsafe_character(uri) is not None or any(
            part in ("", ".", "..") or part.startswith(".") for part in parts):
        return None
    root = source.path.resolve()
    here = root
    for part in parts[:-1]:
        found = _entry(here, part)
        if found is None or not _real_directory(found):
            return None
        here = found
    path = _entry(here, parts[-1])
    return None if path is None else _file(source, root, path, uri, [])


def _real_directory(path: Path) -> bool:
    """A directory, not a link to one: os.walk(followlinks=False) never enters those."""
    try:
        return stat.S_ISDIR(path.lstat().st_mode)
    except OSError:
        return False


def _entry(directory: Path, name: str) -> Path | None:
    """`directory / name`, or the entry whose name is `name` in NFC (uris are, names on disk
    need not be), or None."""
    try:
        (directory / name).lstat()
        return directory / name
    except FileNotFoundError:
        pass
    except OSError:
        return None
    try:
        names = os.listdir(directory)
    except OSError:
        return None
    return next((directory / n for n in sorted(names) if normalize(n) == name), None)


def content_hash(path: Path) -> str:
    """The document version: sha256 of the file's bytes.

    The file is opened without following a link and must be a regular file, and no directory
    on its path may be a link: a file replaced after discovery is not read (OSError).
    """
    digest = hashlib.sha256()
    with _open_regular(path) as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_version(path: Path, version: str, max_bytes: int) -> bytes | None:
    """The file's bytes if they are still the document version `version` (their sha256), else
    None: changed, or larger than `max_bytes`. Opened as `content_hash` opens it (OSError if the
    file or a directory on its path was replaced by a link, or it is not a regular file); what
    is returned is what was hashed, whatever happens to the file afterwards."""
    with _open_regular(path) as handle:
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes or hashlib.sha256(data).hexdigest() != version:
        return None
    return data


@contextmanager
def _open_regular(path: Path) -> Iterator[BinaryIO]:
    if os.path.realpath(path.parent) != os.path.abspath(path.parent):
        raise OSError(f"a directory on the path {path} was replaced by a symbolic link")
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise OSError(f"{path.name} is no longer a regular file")
        yield handle
