"""Small file helpers: durable JSON writes, and a stamp that tells a file changed."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any


def write_json_atomic(path: Path, data: Any) -> None:
    """Replace `path` with `data` as JSON so readers see the old or the new file, never half.

    The temp file is fsynced before the rename and the directory after it, so a crash leaves
    one complete file; a leftover `.<name>.tmp` from a killed writer is overwritten next time.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        with contextlib.suppress(OSError):  # some filesystems refuse fsync on a directory
            os.fsync(fd)
    finally:
        os.close(fd)


def file_stamp(path: Path) -> tuple[int, ...] | None:
    """Changes with any write or replacement of the file, even a same-size edit within one mtime
    tick or one that restores the mtime (inode and ctime change too); None if it is missing."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size)
