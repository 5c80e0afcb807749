"""Tamper-evident, append-only audit log: JSON lines chained by sha256, plus a head file.

Each line is one record with three added fields:
- `seq`: 1-based position in the log;
- `prev_hash`: the previous record's `hash` (64 zeros for the first record);
- `hash`: sha256 hex of the canonical JSON of the record without `hash`.

Editing, deleting, reordering or truncating records breaks the chain, and `verify_audit_log`
reports the line. Deleting the *last* records leaves a valid chain, so after each append the
seq and hash of the last record are also written to `<log>.head`; verify compares the two.
Verify reads the head and the log's length under the appenders' lock (shared), so a log being
appended to gets the same verdict as a quiet one.

The head is the commit point of an append: a record is on record once the head names it. If the
line is written but the head is not (a full disk fits the line in the log's last block but not
a new head file; a process killed in between), the line is removed again; if even that fails,
the record stays after the head, verify counts it as unfinished rather than a break, and the
next append first writes a follow-up record for it with outcome "failed" and `amends` = its seq.
A request that fails after its record was written gets such a follow-up too
(`failure_record`). A request's outcome is that of its last record (`request_outcomes`).

Records and the head are also signed: `mac` is HMAC-SHA256, under the audit key, of the record's
hash (of "head:SEQ:HASH" for the head). The key is made at the first append (32 random bytes,
hex, mode 0600) in `<log>.key`, or where the config's `audit_key_file` says. So verify, with no
flag, catches a log rewritten by someone without the key: an edited record re-hashed, a record
inserted or appended, the whole chain rebuilt from the start, or the last records cut off with
the head rewritten to match (a missing head, for a log with records, is a problem too). Keep the
key where the data directory's other readers and backups cannot reach it (a secret mount):
someone who has it can forge anything. An anchor, the head copied elsewhere (`clearance audit
anchor`), is a checkpoint that a later, longer log still verifies against (`verify --anchor
FILE`): it catches a log cut back to before the anchor even by someone who holds the key.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import os
import secrets
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from control.errors import AuditWriteError
from observability import metrics

GENESIS_HASH = "0" * 64
CHAIN_FIELDS = ("seq", "prev_hash", "hash", "mac")
_KEY_CHARS = 64  # 32 bytes, hex

# Tail read size when looking for the last line; records are small, so one block is typical.
_TAIL_BLOCK = 8192
# The outcome of a request that failed after a record of it was written (`failure_record`).
FAILED = "failed"
UNFINISHED_REASON = ("its record was written but the append did not finish (the head was not "
                     "updated): the request was not answered")
# At most this many unfinished records are followed up by one append.
_MAX_FOLLOWUPS = 100


# The seqs of the records written for the request being handled (api/request_records.py); None
# outside a request. A list, so that threads and tasks started for the request add to it.
_REQUEST_RECORDS: ContextVar[list[int] | None] = ContextVar("audit_records_of_request",
                                                            default=None)


@contextmanager
def counting_request_records() -> Iterator[list[int]]:
    """Collect the records written while the block runs (one request): their seqs, and 0 for a
    request counted into an aggregated record (`note_request_recorded`)."""
    seqs: list[int] = []
    token = _REQUEST_RECORDS.set(seqs)
    try:
        yield seqs
    finally:
        _REQUEST_RECORDS.reset(token)


def note_request_recorded(seq: int = 0) -> None:
    """The request being handled is on record (`seq`), or counted into one (0)."""
    seqs = _REQUEST_RECORDS.get()
    if seqs is not None:
        seqs.append(seq)


def canonical_json(record: dict[str, Any]) -> str:
    """The canonical serialization that hashes are computed over."""
    # allow_nan=False: NaN/Infinity are not JSON and would make the log unreadable elsewhere.
    return json.dumps(
        record, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def record_hash(record: dict[str, Any]) -> str:
    """sha256 hex of the canonical JSON of `record` without its `hash` and `mac` fields."""
    body = {k: v for k, v in record.items() if k not in ("hash", "mac")}
    return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


def record_mac(key: bytes, digest: str) -> str:
    """The signature of a record: HMAC-SHA256 of its hash under the audit key."""
    return hmac.new(key, f"record:{digest}".encode(), hashlib.sha256).hexdigest()


def head_mac(key: bytes, seq: int, digest: str) -> str:
    """The signature of a head (or an anchor) naming record `seq` with hash `digest`."""
    return hmac.new(key, f"head:{seq}:{digest}".encode(), hashlib.sha256).hexdigest()


def head_path_for(path: Path) -> Path:
    """The head file that sits beside a log: `<log>.head`."""
    path = Path(path)
    return path.with_name(path.name + ".head")


def key_path_for(path: Path) -> Path:
    """The default audit key file: `<log>.key`."""
    path = Path(path)
    return path.with_name(path.name + ".key")


def read_key(path: Path) -> bytes | None:
    """The audit key in `path`, or None if there is none; OSError if it is unreadable or not
    a key."""
    try:
        text = Path(path).read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return None
    except UnicodeDecodeError as exc:
        raise OSError(f"audit key {path} is not a key ({exc})") from exc
    if len(text) != _KEY_CHARS or any(c not in "0123456789abcdef" for c in text):
        raise OSError(f"audit key {path} is not a key (64 hex characters)")
    return bytes.fromhex(text)


def load_or_create_key(path: Path) -> bytes:
    """The audit key, made (0600) if there is none yet; two processes making it at once agree
    on one (O_EXCL)."""
    key = read_key(path)
    if key is not None:
        return key
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = read_key(path)
        if key is None:
            raise OSError(f"audit key {path} vanished while it was being read") from None
        return key
    try:
        _write_all(fd, secrets.token_hex(_KEY_CHARS // 2).encode("ascii") + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    _fsync_dir(path.parent)
    key = read_key(path)
    assert key is not None
    return key


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
    # Records after the head (appends that did not finish: their requests were not answered;
    # the next append records them as failed), and follow-up records of failed requests.
    unfinished: int = 0
    failed_later: int = 0


class AuditStore(Protocol):
    """The audit log wherever it is kept: a file (AuditLog) or the PostgreSQL control plane
    (control/pg_audit.PgAuditLog)."""

    def append(self, record: dict[str, Any]) -> dict[str, Any]: ...

    def verify(self, anchor: Path | None = None) -> VerifyResult: ...

    def anchor(self) -> dict[str, Any]: ...

    def describe(self) -> str: ...

    def records(self) -> Iterable[dict[str, Any]]:
        """Every committed record, oldest first (reports)."""
        ...

    def request_records(self, request_id: str) -> list[dict[str, Any]]:
        """The committed records of one request id, oldest first (feedback checks who asked)."""
        ...


class AuditLog:
    """An append-only audit log safe to share between threads and between processes."""

    def __init__(self, path: Path, key_path: Path | None = None) -> None:
        self.path = Path(path)
        self.head_path = head_path_for(self.path)
        self.key_path = Path(key_path) if key_path else key_path_for(self.path)
        self._key: bytes | None = None
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
        started = time.monotonic()
        with self._lock:
            try:
                written = self._append_locked(record)
            except OSError as exc:
                metrics.record_audit("file", time.monotonic() - started, failed=True)
                raise AuditWriteError(f"audit log {self.path} could not be written: {exc}") from exc
        metrics.record_audit("file", time.monotonic() - started, failed=False)
        note_request_recorded(written["seq"])
        return written

    def verify(self, anchor: Path | None = None) -> VerifyResult:
        """verify_audit_log on this log, its head and its key."""
        return verify_audit_log(self.path, key_path=self.key_path, anchor=anchor)

    def anchor(self) -> dict[str, Any]:
        """The head as an anchor (anchor_of)."""
        return anchor_of(self.path)

    def describe(self) -> str:
        return str(self.path)

    def records(self) -> Iterator[dict[str, Any]]:
        from control.audit_read import committed_records

        return committed_records(self.path)

    def request_records(self, request_id: str) -> list[dict[str, Any]]:
        from control.audit_read import request_records

        return request_records(self.path, request_id)

    def _append_locked(self, record: dict[str, Any]) -> dict[str, Any]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self._key is None:
            self._key = load_or_create_key(self.key_path)
        key = self._key
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            # Held until close: another process appending waits here, so it reads our last line.
            fcntl.flock(fd, fcntl.LOCK_EX)
            size = os.fstat(fd).st_size
            last_seq, last_hash = _last_record(fd, size, self.path)
            # Records after the head belong to appends that never finished: say they failed
            # before chaining anything onto them.
            records = [*_failed_followups(fd, size, self.head_path, last_seq), record]
            lines = []
            for rec in records:
                written = {**rec, "seq": last_seq + 1, "prev_hash": last_hash}
                written["hash"] = record_hash(written)
                written["mac"] = record_mac(key, written["hash"])
                lines.append(canonical_json(written) + "\n")
                last_seq, last_hash = written["seq"], written["hash"]
            try:
                _write_all(fd, "".join(lines).encode("utf-8"))
                os.fsync(fd)
                # Under the same lock, so heads from concurrent appenders cannot land out of
                # order. The head is the commit point: a line it does not cover is not on record.
                _write_head(self.head_path, last_seq, last_hash, key)
            except OSError:
                # Remove the lines, partial or whole: a record must not say "ok" for a request
                # that then fails (the head write is what fails on a full disk, after a line
                # that fitted). If even that fails, the lines stay after the head, and the next
                # append records them as failed.
                try:
                    os.ftruncate(fd, size)
                    os.fsync(fd)
                except OSError:
                    pass
                raise
            return written
        finally:
            os.close(fd)


def failure_record(request_id: str | None, action: str | None, reason: str, *,
                   caller: str | None = None, amends: int | None = None) -> dict[str, Any]:
    """A follow-up record: the request `request_id` failed after an earlier record of it was
    written (`amends`: that record's seq, when known). A request's outcome is that of its last
    record (`request_outcomes`)."""
    return {"time": datetime.now(UTC).isoformat(), "request_id": request_id, "action": action,
            "caller": caller, "outcome": FAILED, "reason": reason,
            **({"amends": amends} if amends is not None else {})}


def _failed_followups(fd: int, size: int, head: Path, last_seq: int) -> list[dict[str, Any]]:
    """A failure record for each record after the head (their appends did not finish, so
    their requests were not answered); none without a readable head."""
    head_seq = _head_seq(head)
    if head_seq is None or head_seq >= last_seq:
        return []
    count = min(last_seq - head_seq, _MAX_FOLLOWUPS)
    followups = []
    for raw in _tail_lines(fd, size, count):
        try:
            rec = json.loads(raw)
        except ValueError:
            continue
        if (isinstance(rec, dict) and isinstance(rec.get("seq"), int) and rec["seq"] > head_seq
                and rec.get("outcome") != FAILED):  # a failure needs no follow-up
            followups.append(failure_record(
                rec.get("request_id"), rec.get("action"), UNFINISHED_REASON,
                caller=rec.get("caller"), amends=rec["seq"]))
    return followups


def _head_seq(head: Path) -> int | None:
    try:
        seq = json.loads(head.read_bytes())["seq"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return seq if isinstance(seq, int) else None


def _tail_lines(fd: int, size: int, count: int) -> list[bytes]:
    """The last `count` complete lines of the file, oldest first."""
    buf = b""
    pos = size
    while pos > 0 and buf.count(b"\n") <= count:
        step = min(_TAIL_BLOCK, pos)
        pos -= step
        buf = os.pread(fd, step, pos) + buf
    lines = buf.split(b"\n")[:-1]  # the text after the last newline is not a line
    if pos > 0:
        lines = lines[1:]  # the first piece may be a line cut short by the block boundary
    return lines[-count:]


def request_outcomes(path: Path) -> dict[str, str]:
    """Each request id's outcome: that of its last record, and "failed" for a record after the
    head (its append did not finish, so the request was not answered)."""
    path = Path(path)
    head_seq = _head_seq(head_path_for(path))
    outcomes: dict[str, str] = {}
    with path.open("rb") as f:
        for raw in f:
            try:
                rec = json.loads(raw)
            except ValueError:
                continue
            if not isinstance(rec, dict) or not isinstance(rec.get("request_id"), str):
                continue
            unfinished = head_seq is not None and isinstance(rec.get("seq"), int) \
                and rec["seq"] > head_seq
            outcomes[rec["request_id"]] = FAILED if unfinished else str(rec.get("outcome"))
    return outcomes


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


def head_fields(seq: int, digest: str, key: bytes) -> dict[str, Any]:
    """What a head (and an anchor) holds: the last record's seq and hash, signed."""
    return {"seq": seq, "hash": digest, "mac": head_mac(key, seq, digest)}


def anchor_of(path: Path) -> dict[str, Any]:
    """The log's head as an anchor (seq, hash, mac): read under the appenders' lock, so it names
    a finished append. OSError if there is no head."""
    path = Path(path)
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        data = json.loads(head_path_for(path).read_bytes())
    finally:
        os.close(fd)
    return {"seq": data["seq"], "hash": data["hash"], "mac": data.get("mac")}


def _write_head(head: Path, seq: int, digest: str, key: bytes) -> None:
    tmp = head.with_name(f"{head.name}.{os.getpid()}.tmp")
    data = json.dumps(head_fields(seq, digest, key)).encode("utf-8")
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


def verify_audit_log(path: Path, head: Path | None = None, *, key_path: Path | None = None,
                     anchor: Path | None = None) -> VerifyResult:
    """Check a log's hash chain, its records' signatures and its head (see the module docstring).

    `head` defaults to `<path>.head` (missing: a problem once the log has records), `key_path`
    to `<path>.key`. `anchor`, a head copied earlier: the log must still hold that record.
    """
    path = Path(path)
    problems: list[str] = []
    key_path = Path(key_path) if key_path else key_path_for(path)
    key = _verify_key(key_path, problems)
    key_problem = bool(problems)
    anchor_info = _read_head(path, anchor, problems) if anchor is not None else None
    check: ChainCheck | None = None
    try:
        fd: int | None = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        fd = None
    except OSError as exc:
        fd = None
        problems.append(f"log {path} could not be read: {exc}")
    log_exists = fd is not None or path.exists()
    if fd is None:
        head_info = _read_head(path, head, problems)
        check = ChainCheck(key, problems, key_problem=key_problem)
    else:
        try:
            # The head and the log's length are read under the appenders' lock, shared: a
            # whole append is then either in both or in neither. The log is read after, up to
            # that length, while appends go on (the part before it does not change).
            head_info, size = _head_and_length(fd, path, head, problems)
            check = ChainCheck(key, problems, head_info, anchor_info, key_problem=key_problem)
            with os.fdopen(fd, "rb") as f:
                fd = None
                check.read(_lines_up_to(f, size))
        except OSError as exc:
            problems.append(f"log {path} could not be read: {exc}")
            check = check or ChainCheck(key, problems, key_problem=key_problem)
        finally:
            if fd is not None:
                os.close(fd)
    if head is None and head_info is None and check.records and not any(
            "head file" in p for p in problems):
        problems.append(f"head file {head_path_for(path)} is missing: whether records were "
                        "removed from the end cannot be checked")
    if head_info is not None and not log_exists and head_info[0] > 0:
        problems.append(f"log {path} is missing but the head says {head_info[0]} records exist")
        head_info = None
    return check.result(key_path=key_path, head=(head_info, head or head_path_for(path)),
                        anchor=(anchor_info, anchor))


def _verify_key(key_path: Path, problems: list[str]) -> bytes | None:
    try:
        return read_key(key_path)
    except OSError as exc:
        problems.append(f"{exc}: the records' signatures cannot be checked")
        return None


HeadInfo = tuple[int, str, str | None]


class ChainCheck:
    """The checks of `verify_audit_log` over a sequence of lines, wherever they are kept (a
    file, or the PostgreSQL backend's rows): seq order, the hash chain, each record's hash and
    signature, follow-ups, and at the end the head and an anchor."""

    def __init__(self, key: bytes | None, problems: list[str],
                 head_info: HeadInfo | None = None, anchor_info: HeadInfo | None = None, *,
                 key_problem: bool = False) -> None:
        self.key = key
        self.key_problem = key_problem  # the key could not be read (already a problem)
        self.problems = problems
        self.head_info = head_info
        self.anchor_info = anchor_info
        self.records = 0
        self.failed_later = 0
        self.bad_signatures: list[int] = []
        self.last_line = 0
        self.last_seq = 0
        self.last_hash: str | None = GENESIS_HASH
        self.hash_at_head: str | None = None  # the hash of the record whose seq the head names
        self.hash_at_anchor: str | None = None

    def read(self, lines: Iterable[bytes]) -> None:
        problems = self.problems
        expected_seq = 1
        # None after a broken line: the next record's prev_hash cannot be checked.
        prev: str | None = GENESIS_HASH
        for lineno, raw in enumerate(lines, start=1):
            self.last_line = lineno
            if not raw.endswith(b"\n"):
                problems.append(f"line {lineno}: incomplete last line (no newline)")
                prev, self.last_hash = None, None
                break
            rec = _parse_record(raw, lineno, problems)
            if rec is None:
                expected_seq += 1
                prev, self.last_hash = None, None
                continue
            self.records += 1
            seq = rec["seq"]
            if seq != expected_seq:
                problems.append(f"line {lineno}: seq is {seq}, expected {expected_seq}")
            if prev is not None and rec["prev_hash"] != prev:
                problems.append(
                    f"line {lineno}: prev_hash does not match the hash of the line before"
                )
            if record_hash(rec) != rec["hash"]:
                problems.append(f"line {lineno}: hash mismatch (record was edited)")
            if self.key is not None and not _signed(rec, self.key):
                self.bad_signatures.append(lineno)
            if rec.get("outcome") == FAILED:
                self.failed_later += 1
            if "amends" in rec:
                amends = rec["amends"]
                if not isinstance(amends, int) or not 0 < amends < seq:
                    problems.append(f"line {lineno}: amends {amends!r}, which is not "
                                    "the seq of an earlier record")
            if self.head_info is not None and seq == self.head_info[0]:
                self.hash_at_head = rec["hash"]
            if self.anchor_info is not None and seq == self.anchor_info[0]:
                self.hash_at_anchor = rec["hash"]
            # Resync on the stored values so one bad record is reported once, not on
            # every line after it.
            expected_seq = seq + 1
            prev = rec["hash"]
            self.last_seq, self.last_hash = seq, rec["hash"]

    def result(self, *, key_path: object, head: tuple[HeadInfo | None, object],
               anchor: tuple[HeadInfo | None, object]) -> VerifyResult:
        """The verdict; `head` and `anchor` are (what was read, where it came from)."""
        problems = self.problems
        if self.bad_signatures:
            shown = ", ".join(map(str, self.bad_signatures[:10]))
            more = (f" and {len(self.bad_signatures) - 10} more"
                    if len(self.bad_signatures) > 10 else "")
            problems.append(f"line(s) {shown}{more}: signature does not match (written without "
                            f"the audit key {key_path}: forged or rewritten)")
        if self.key is None and self.records and not self.key_problem:
            problems.append(f"audit key {key_path} is missing: the records' signatures cannot "
                            "be checked; restore the key from where it is kept")
        for name, (info, where) in (("head", head), ("anchor", anchor)):
            if info is not None and self.key is not None and not _head_signed(info, self.key):
                problems.append(f"{name} {_where(name, where)}: signature does not match "
                                "(written without the audit key)")
        anchor_info, anchor_where = anchor
        if anchor_info is not None:
            anchor_seq, anchor_hash = anchor_info[:2]
            if anchor_seq > self.last_seq:
                problems.append(f"the log ends at seq {self.last_seq}, before the anchor's seq "
                                f"{anchor_seq}: records were removed from the end")
            elif anchor_seq > 0 and self.hash_at_anchor != anchor_hash:
                problems.append(f"record seq {anchor_seq} does not match the anchor "
                                f"{anchor_where}: the log was rewritten")
        unfinished = 0
        head_info = head[0]
        if head_info is not None:
            head_seq, head_hash = head_info[:2]
            if (head_seq < self.last_seq and self.hash_at_head == head_hash
                    and self.last_hash is not None):
                # The head is the commit point: records after it were written by appends that
                # did not finish, so their requests failed. Not a break; the next append says so.
                unfinished = self.last_seq - head_seq
            elif (head_seq, head_hash) != (self.last_seq, self.last_hash):
                where = f"line {self.last_line}" if self.last_line else "the empty log"
                problems.append(
                    f"head mismatch: head says seq {head_seq} hash {head_hash[:12]}…, "
                    f"{where} ends with seq {self.last_seq} (records removed from the end?)"
                )
        return VerifyResult(ok=not problems, records=self.records, problems=problems,
                            unfinished=unfinished, failed_later=self.failed_later)


def _where(name: str, where: object) -> str:
    return f"file {where}" if isinstance(where, Path) else str(where)


def _head_and_length(fd: int, path: Path, head: Path | None, problems: list[str]
                     ) -> tuple[tuple[int, str, str | None] | None, int]:
    """The head and the log's length, read under the appenders' lock (shared)."""
    fcntl.flock(fd, fcntl.LOCK_SH)
    try:
        return _read_head(path, head, problems), os.fstat(fd).st_size
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


def _lines_up_to(f: BinaryIO, size: int) -> Iterator[bytes]:
    """The lines of `f` within its first `size` bytes (a last one cut at `size`)."""
    left = size
    for raw in f:
        if left <= 0:
            return
        if len(raw) > left:
            raw = raw[:left]
        left -= len(raw)
        yield raw


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


def _signed(rec: dict[str, Any], key: bytes) -> bool:
    mac = rec.get("mac")
    return isinstance(mac, str) and hmac.compare_digest(mac, record_mac(key, rec["hash"]))


def _head_signed(info: tuple[int, str, str | None], key: bytes) -> bool:
    seq, digest, mac = info
    return isinstance(mac, str) and hmac.compare_digest(mac, head_mac(key, seq, digest))


def _read_head(path: Path, head: Path | None, problems: list[str]
               ) -> tuple[int, str, str | None] | None:
    if head is None:
        head = head_path_for(path)
        if not head.exists():
            return None
    head = Path(head)
    try:
        data = json.loads(head.read_bytes())
        seq, digest, mac = data["seq"], data["hash"], data.get("mac")
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
    return seq, digest, mac if isinstance(mac, str) else None
