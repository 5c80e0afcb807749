"""Tamper-evident, append-only audit log: JSON lines chained by sha256, plus a head file.

Each line is one record with three added fields:
- `seq`: 1-based position in the log;
- `prev_hash`: the previous record's `hash` (64 zeros for the first record);
- `hash`: sha256 hex of the canonical JSON of the record without `hash`.

Editing, deleting, reordering or truncating records breaks the chain, and `verify_audit_log`
reports the line. Deleting the *last* records leaves a valid chain, so after each append the
seq and hash of the last record are also written to `<log>.head`; verify compares the two.

The chain is not keyed: someone who can rewrite both files can forge a consistent log. It makes
tampering evident, not impossible; ship the head hash elsewhere if that matters.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import threading
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from retrieval.errors import AuditWriteError

GENESIS_HASH = "0" * 64
CHAIN_FIELDS = ("seq", "prev_hash", "hash")

# Tail read size when looking for the last line; records are small, so one block is typical.
_TAIL_BLOCK = 8192


def canonical_json(record: dict[str, Any]) -> str:
    """The canonical serialization that hashes are computed over."""
    # allow_nan=False: NaN/Infinity are not JSON and would make the log unreadable elsewhere.
    return json.dumps(
        record, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def record_hash(record: dict[str, Any]) -> str:
    """sha256 hex of the canonical JSON of `record` without its `hash` field."""
    body = {k: v for k, v in record.items() if k != "hash"}
    return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


def head_path_for(path: Path) -> Path:
    """The head file that sits beside a log: `<log>.head`."""
    path = Path(path)
    return path.with_name(path.name + ".head")


def admin_record(action: str, *, caller: str, request_id: str | None,
                 **details: Any) -> dict[str, Any]:
    """The audit record of an admin change (policy, ACL, quarantine, keys), from API or CLI."""
    return {"time": datetime.now(UTC).isoformat(), "request_id": request_id, "action": action,
            "caller": caller, "outcome": "ok", **details}


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of `verify_audit_log`: ok when `problems` is empty."""

    ok: bool
    records: int
    problems: list[str] = field(default_factory=list)


class AuditLog:
    """An append-only audit log safe to share between threads and between processes."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.head_path = head_path_for(self.path)
        # Threads of this instance queue here; other processes and instances queue on flock.
        self._lock = threading.Lock()

    def append(self, record: dict[str, Any]) -> dict[str, Any]:
        """Append one record, fsync it and the head file, and return the record as written."""
        reserved = [k for k in CHAIN_FIELDS if k in record]
        if reserved:
            fields = ", ".join(reserved)
            raise ValueError(f"audit record must not set {fields}: the log assigns them")
        # Serialize once before touching the file so a bad record fails without I/O.
        canonical_json(record)
        with self._lock:
            try:
                return self._append_locked(record)
            except OSError as exc:
                raise AuditWriteError(f"audit log {self.path} could not be written: {exc}") from exc

    def _append_locked(self, record: dict[str, Any]) -> dict[str, Any]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            # Held until close: another process appending waits here, so it reads our last line.
            fcntl.flock(fd, fcntl.LOCK_EX)
            size = os.fstat(fd).st_size
            last_seq, last_hash = _last_record(fd, size, self.path)
            written = {**record, "seq": last_seq + 1, "prev_hash": last_hash}
            written["hash"] = record_hash(written)
            line = (canonical_json(written) + "\n").encode("utf-8")
            try:
                _write_all(fd, line)
                os.fsync(fd)
            except OSError:
                # Remove a partial line so the log stays appendable; if even that fails, the
                # partial line remains and verify reports it.
                try:
                    os.ftruncate(fd, size)
                    os.fsync(fd)
                except OSError:
                    pass
                raise
            # Under the same lock, so heads from concurrent appenders cannot land out of order.
            _write_head(self.head_path, written["seq"], written["hash"])
            return written
        finally:
            os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _last_record(fd: int, size: int, path: Path) -> tuple[int, str]:
    """(seq, hash) of the last line, reading backwards from the end of the file."""
    if size == 0:
        return 0, GENESIS_HASH
    buf = b""
    pos = size
    while pos > 0:
        step = min(_TAIL_BLOCK, pos)
        pos -= step
        buf = os.pread(fd, step, pos) + buf
        # A newline before the final byte marks the start of the last line.
        start = buf.rfind(b"\n", 0, len(buf) - 1)
        if start != -1:
            buf = buf[start + 1 :]
            break
    try:
        if not buf.endswith(b"\n"):
            raise ValueError("the last line is incomplete")
        last = json.loads(buf)
        seq, digest = last["seq"], last["hash"]
        if not isinstance(seq, int) or not isinstance(digest, str):
            raise ValueError("seq/hash have the wrong type")
    except (ValueError, KeyError, TypeError) as exc:
        # Chaining onto a broken tail would hide it; refuse until someone looks at the log.
        raise OSError(f"last record is unreadable ({exc}); run verify on {path}") from exc
    return seq, digest


def _write_head(head: Path, seq: int, digest: str) -> None:
    tmp = head.with_name(f"{head.name}.{os.getpid()}.tmp")
    data = json.dumps({"seq": seq, "hash": digest}).encode("utf-8")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, head)
    except OSError:
        with suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(head.parent)


def _fsync_dir(directory: Path) -> None:
    # Makes the rename durable; some filesystems refuse fsync on directories, which is harmless.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def verify_audit_log(path: Path, head: Path | None = None) -> VerifyResult:
    """Check the hash chain of a log and, when there is one, its head file.

    `head` defaults to `<path>.head` when that file exists; an explicit `head` that is missing
    is a problem.
    """
    path = Path(path)
    problems: list[str] = []
    head_info = _read_head(path, head, problems)

    records = 0
    last_line = 0
    last_seq = 0
    last_hash: str | None = GENESIS_HASH
    log_exists = path.exists()
    if log_exists:
        try:
            with path.open("rb") as f:
                expected_seq = 1
                # None after a broken line: the next record's prev_hash cannot be checked.
                prev: str | None = GENESIS_HASH
                for lineno, raw in enumerate(f, start=1):
                    last_line = lineno
                    if not raw.endswith(b"\n"):
                        problems.append(f"line {lineno}: incomplete last line (no newline)")
                        prev, last_hash = None, None
                        break
                    rec = _parse_record(raw, lineno, problems)
                    if rec is None:
                        expected_seq += 1
                        prev, last_hash = None, None
                        continue
                    records += 1
                    seq = rec["seq"]
                    if seq != expected_seq:
                        problems.append(f"line {lineno}: seq is {seq}, expected {expected_seq}")
                    if prev is not None and rec["prev_hash"] != prev:
                        problems.append(
                            f"line {lineno}: prev_hash does not match the hash of the line before"
                        )
                    if record_hash(rec) != rec["hash"]:
                        problems.append(f"line {lineno}: hash mismatch (record was edited)")
                    # Resync on the stored values so one bad record is reported once, not on
                    # every line after it.
                    expected_seq = seq + 1
                    prev = rec["hash"]
                    last_seq, last_hash = seq, rec["hash"]
        except OSError as exc:
            problems.append(f"log {path} could not be read: {exc}")

    if head_info is not None:
        head_seq, head_hash = head_info
        if not log_exists and head_seq > 0:
            problems.append(f"log {path} is missing but the head says {head_seq} records exist")
        elif (head_seq, head_hash) != (last_seq, last_hash):
            where = f"line {last_line}" if last_line else "the empty log"
            problems.append(
                f"head mismatch: head says seq {head_seq} hash {head_hash[:12]}…, "
                f"{where} ends with seq {last_seq} (records removed from the end?)"
            )

    return VerifyResult(ok=not problems, records=records, problems=problems)


def _parse_record(raw: bytes, lineno: int, problems: list[str]) -> dict[str, Any] | None:
    try:
        rec = json.loads(raw)
    except ValueError as exc:
        problems.append(f"line {lineno}: unparseable JSON ({exc})")
        return None
    if not (
        isinstance(rec, dict)
        and isinstance(rec.get("seq"), int)
        and isinstance(rec.get("prev_hash"), str)
        and isinstance(rec.get("hash"), str)
    ):
        problems.append(f"line {lineno}: not an audit record (seq, prev_hash or hash missing)")
        return None
    return rec


def _read_head(path: Path, head: Path | None, problems: list[str]) -> tuple[int, str] | None:
    if head is None:
        head = head_path_for(path)
        if not head.exists():
            return None
    head = Path(head)
    try:
        data = json.loads(head.read_bytes())
        seq, digest = data["seq"], data["hash"]
        if not isinstance(seq, int) or not isinstance(digest, str):
            raise ValueError("seq/hash have the wrong type")
    except FileNotFoundError:
        problems.append(f"head file {head} is missing")
        return None
    except OSError as exc:
        problems.append(f"head file {head} could not be read: {exc}")
        return None
    except (ValueError, KeyError, TypeError) as exc:
        problems.append(f"head file {head} is unreadable: {exc}")
        return None
    return seq, digest
