"""Small file helpers: durable JSON writes, and a stamp that tells a file changed."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def write_json_atomic(path: Path, data: Any) -> None:
    """Replace `path` with `data` as JSON so readers see the old or the new file, never half.

    The temp file is fsynced before the rename and the directory after it, so a crash leaves
    one complete file; a leftover `.<name>.tmp` from a killed writer is overwritten next time.
    """
    with replacing_json(path, data):
        pass


@contextlib.contextmanager
def replacing_json(path: Path, data: Any) -> Iterator[None]:
    """As write_json_atomic, with the block run between writing the temp file and putting it in
    place: a full disk fails before the block, and a block that raises leaves `path` as it was
    (so a change can be audited before it takes effect)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with tmp.open("w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2)
            handle.flush()
            os.fsync(handle.fileno())
        yield
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
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
