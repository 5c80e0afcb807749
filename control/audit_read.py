"""Reading the file audit log back: its committed records, all of them or one request's.

A record is committed once the head names it (control/audit.py): records after the head (an
append that did not finish) are left out, as are lines that do not parse (`clearance audit
verify` reports those). The head is read first, so records appended while the log is read are
left out too: what is read is the log as it was at one moment.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from control.audit import _head_seq, head_path_for


def committed_records(path: Path, *, needle: bytes | None = None) -> Iterator[dict[str, Any]]:
    """The records of the log at `path` up to its head, oldest first; with `needle`, only the
    lines that contain it (a cheap test before a line is parsed)."""
    path = Path(path)
    head = _head_seq(head_path_for(path))
    if head is None:
        return
    try:
        f = path.open("rb")
    except FileNotFoundError:
        return
    with f:
        for raw in f:
            if not raw.endswith(b"\n") or (needle is not None and needle not in raw):
                continue
            try:
                record = json.loads(raw)
            except ValueError:
                continue
            if not isinstance(record, dict) or not isinstance(record.get("seq"), int):
                continue
            if record["seq"] > head:
                return
            yield record


def request_records(path: Path, request_id: str) -> list[dict[str, Any]]:
    """The committed records of one request id, oldest first. The whole log is read whether or
    not the id is found, so the time taken says nothing about whether it was."""
    # Records are canonical JSON (no spaces), so the field appears exactly like this.
    needle = b'"request_id":' + json.dumps(request_id, ensure_ascii=False).encode("utf-8")
    return [r for r in committed_records(path, needle=needle)
            if r.get("request_id") == request_id]
