"""Cheap checks that state files can be written: for /healthz, and before a pause or resume.

Nothing here writes or fsyncs: the filesystem's free space and flags (statvfs) and the file's
permissions (os.access) say whether an append or a replace would fail for want of space or
permission, at the cost of a few system calls per probe. A full filesystem is one with less
than MIN_FREE_BYTES available to unprivileged writers. Messages name no path: /healthz shows
them to anyone.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from control.audit import head_path_for

MIN_FREE_BYTES = 1 << 20  # an audit record is about 1 KB; a state file a few


@dataclass(frozen=True)
class Unwritable:
    """Why something cannot be written now; `full` when for want of space."""

    message: str
    full: bool = False

    def __str__(self) -> str:
        return self.message


def _existing(path: Path) -> Path:
    """`path`, or its nearest ancestor that exists (a directory made on first write)."""
    while not path.exists() and path.parent != path:
        path = path.parent
    return path


def filesystem_problem(directory: Path, what: str) -> Unwritable | None:
    """Why files under `directory` cannot be written now (full, read-only), or None."""
    where = _existing(Path(directory))
    try:
        st = os.statvfs(where)
    except OSError as exc:
        return Unwritable(f"cannot check the filesystem of {what}: {exc.strerror or exc}")
    if st.f_flag & os.ST_RDONLY:
        return Unwritable(f"{what} is on a read-only filesystem")
    free = st.f_bavail * st.f_frsize
    if free < MIN_FREE_BYTES:
        return Unwritable(f"the filesystem of {what} is full ({free} bytes free)", full=True)
    if st.f_files and st.f_favail == 0:
        return Unwritable(f"the filesystem of {what} is full (no free inodes)", full=True)
    return None


def audit_log_problem(path: Path) -> Unwritable | None:
    """Why a record could not be appended to the audit log at `path` now, or None."""
    path = Path(path)
    problem = filesystem_problem(path.parent, "the audit log")
    if problem is not None:
        return problem
    for target, what in ((path, "log"), (head_path_for(path), "head")):
        if target.exists() and not os.access(target, os.R_OK | os.W_OK):
            return Unwritable(f"the audit {what} file is not writable")
    if not os.access(_existing(path.parent), os.W_OK | os.X_OK):
        return Unwritable("the audit log's directory is not writable")
    return None
