"""Tests for the hash-chained audit log and its verifier."""

from __future__ import annotations

import json
import multiprocessing
import shutil
import threading
from multiprocessing.process import BaseProcess
from pathlib import Path

import pytest

from control import audit
from control.audit import (
    GENESIS_HASH,
    AuditLog,
    head_mac,
    head_path_for,
    key_path_for,
    read_key,
    verify_audit_log,
)
from retrieval.errors import AuditWriteError


def _fill(path: Path, n: int = 20) -> AuditLog:
    log = AuditLog(path)
    for i in range(n):
        log.append({"ts": f"2024-01-01T00:00:{i:02d}Z", "user": "alice", "query": f"q{i}", "n": i})
    return log


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines(keepends=True)


def _tampered(src: Path, dst_dir: Path, lines: list[str]) -> Path:
    """A copy of the log (and its head) with the given lines in place of the original ones."""
    dst = dst_dir / "copy.log"
    dst.write_text("".join(lines), encoding="utf-8")
    shutil.copy(head_path_for(src), head_path_for(dst))
    shutil.copy(key_path_for(src), key_path_for(dst))
    return dst


@pytest.fixture
def log_path(tmp_path: Path) -> Path:
    path = tmp_path / "audit" / "audit.log"
    _fill(path)
    return path


def test_append_chains_records(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "a.log")
    first = log.append({"user": "alice", "ts": "t1"})
    second = log.append({"user": "bob", "ts": "t2"})
    assert (first["seq"], first["prev_hash"]) == (1, GENESIS_HASH)
    assert (second["seq"], second["prev_hash"]) == (2, first["hash"])
    assert json.loads(_lines(tmp_path / "a.log")[1]) == second
    key = read_key(key_path_for(tmp_path / "a.log"))
    assert key is not None
    assert json.loads(head_path_for(tmp_path / "a.log").read_text()) == {
        "seq": 2,
        "hash": second["hash"],
        "mac": head_mac(key, 2, second["hash"]),
    }


def test_append_adds_no_time_field(tmp_path: Path) -> None:
    written = AuditLog(tmp_path / "a.log").append({"user": "alice"})
    assert set(written) == {"user", "seq", "prev_hash", "hash", "mac"}


def test_reserved_fields_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="seq"):
        AuditLog(tmp_path / "a.log").append({"seq": 5})


def test_twenty_records_verify(log_path: Path) -> None:
    result = verify_audit_log(log_path)
    assert result.ok, result.problems
    assert result.records == 20
    assert result.problems == []


def test_missing_or_empty_log_without_head_is_ok(tmp_path: Path) -> None:
    assert verify_audit_log(tmp_path / "none.log") == audit.VerifyResult(True, 0, [])
    (tmp_path / "empty.log").touch()
    assert verify_audit_log(tmp_path / "empty.log") == audit.VerifyResult(True, 0, [])


def test_edited_record_detected(log_path: Path, tmp_path: Path) -> None:
    lines = _lines(log_path)
    rec = json.loads(lines[6])
    rec["user"] = "mallory"
    lines[6] = json.dumps(rec) + "\n"
    result = verify_audit_log(_tampered(log_path, tmp_path, lines))
    assert not result.ok
    assert any("line 7" in p and "hash mismatch" in p for p in result.problems), result.problems


def test_deleted_middle_record_detected(log_path: Path, tmp_path: Path) -> None:
    lines = _lines(log_path)
    del lines[9]
    result = verify_audit_log(_tampered(log_path, tmp_path, lines))
    assert not result.ok
    assert any("line 10" in p and "seq" in p for p in result.problems), result.problems
    assert any("line 10" in p and "prev_hash" in p for p in result.problems), result.problems


def test_swapped_records_detected(log_path: Path, tmp_path: Path) -> None:
    lines = _lines(log_path)
    lines[4], lines[5] = lines[5], lines[4]
    result = verify_audit_log(_tampered(log_path, tmp_path, lines))
    assert not result.ok
    assert any(p.startswith("line 5:") for p in result.problems), result.problems
    assert any(p.startswith("line 6:") for p in result.problems), result.problems


def test_deleted_last_record_caught_by_head(log_path: Path, tmp_path: Path) -> None:
    lines = _lines(log_path)[:-1]
    copy = _tampered(log_path, tmp_path, lines)
    # The chain alone is intact: only the head shows the truncation.
    assert verify_audit_log(copy, head=tmp_path / "no-such.head").problems == [
        f"head file {tmp_path / 'no-such.head'} is missing"
    ]
    result = verify_audit_log(copy)
    assert not result.ok
    assert result.records == 19
    assert len(result.problems) == 1
    assert "head mismatch" in result.problems[0] and "line 19" in result.problems[0]


def test_partial_last_line_detected(log_path: Path, tmp_path: Path) -> None:
    lines = _lines(log_path)
    lines[-1] = lines[-1][: len(lines[-1]) // 2]
    result = verify_audit_log(_tampered(log_path, tmp_path, lines))
    assert not result.ok
    assert any("line 20" in p and "incomplete" in p for p in result.problems), result.problems


def test_unparseable_line_detected(log_path: Path, tmp_path: Path) -> None:
    lines = _lines(log_path)
    lines[2] = "not json\n"
    result = verify_audit_log(_tampered(log_path, tmp_path, lines))
    assert any("line 3" in p and "unparseable" in p for p in result.problems), result.problems


def test_missing_log_with_head_is_a_problem(log_path: Path) -> None:
    log_path.unlink()
    result = verify_audit_log(log_path)
    assert not result.ok
    assert "missing" in result.problems[0]


def test_explicit_missing_head_is_a_problem(log_path: Path, tmp_path: Path) -> None:
    result = verify_audit_log(log_path, head=tmp_path / "elsewhere.head")
    assert not result.ok
    assert result.records == 20


def test_append_after_partial_line_refuses(log_path: Path) -> None:
    # Chaining onto a broken tail would hide it: the log must be looked at first.
    with log_path.open("ab") as f:
        f.write(b'{"seq": 21, "us')
    with pytest.raises(AuditWriteError, match="could not be written"):
        AuditLog(log_path).append({"user": "alice"})


def test_failed_write_leaves_log_verifiable(
    log_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def half_then_full(fd: int, data: bytes) -> None:
        audit.os.write(fd, data[: len(data) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(audit, "_write_all", half_then_full)
    with pytest.raises(AuditWriteError, match="No space left on device"):
        AuditLog(log_path).append({"user": "alice"})
    monkeypatch.undo()

    assert verify_audit_log(log_path).ok
    assert AuditLog(log_path).append({"user": "alice"})["seq"] == 21
    assert verify_audit_log(log_path).records == 21


def test_unwritable_location_raises(tmp_path: Path) -> None:
    # A regular file where the directory should be: fails even when the tests run as root.
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    path = blocker / "audit.log"
    with pytest.raises(AuditWriteError, match=f"audit log {path} could not be written"):
        AuditLog(path).append({"user": "alice"})


def test_threads_share_one_log(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "a.log")
    threads = [
        threading.Thread(target=lambda t=t: [log.append({"t": t, "i": i}) for i in range(25)])
        for t in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result = verify_audit_log(tmp_path / "a.log")
    assert result.ok, result.problems
    assert result.records == 100


def _append_many(path: str, worker: int, n: int, start: multiprocessing.synchronize.Event) -> None:
    log = AuditLog(Path(path))
    start.wait()
    for i in range(n):
        log.append({"worker": worker, "i": i})


def _start_appenders(path: Path, workers: int, each: int
                     ) -> tuple[list[BaseProcess], multiprocessing.synchronize.Event]:
    """`workers` processes appending `each` records to `path`, started together, and the event
    that starts them (keep it until they are joined: they open it by name). Spawned: a fresh
    interpreter per worker, as a separate CLI process would be."""
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    procs = [ctx.Process(target=_append_many, args=(str(path), w, each, start))
             for w in range(workers)]
    for p in procs:
        p.start()
    start.set()
    return procs, start


def _join(procs: list[BaseProcess]) -> None:
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0


def test_two_processes_append_concurrently(tmp_path: Path) -> None:
    path = tmp_path / "shared.log"
    procs, _start = _start_appenders(path, 2, 50)
    _join(procs)
    result = verify_audit_log(path)
    assert result.ok, result.problems
    assert result.records == 100
    workers = [json.loads(line)["worker"] for line in _lines(path)]
    assert workers.count(0) == workers.count(1) == 50


def test_verify_while_two_processes_append_sees_a_whole_log_each_time(tmp_path: Path) -> None:
    # `clearance audit verify` on a serving deployment: every verdict is "ok", and no record is
    # taken for an unfinished append (every append here finishes).
    path = tmp_path / "busy.log"
    AuditLog(path).append({"first": True})
    procs, _start = _start_appenders(path, 2, 400)
    verdicts = []
    while any(p.is_alive() for p in procs) or len(verdicts) < 20:
        verdicts.append(verify_audit_log(path))
    _join(procs)
    verdicts.append(verify_audit_log(path))  # once the appends are done
    assert [v.problems for v in verdicts if not v.ok] == []
    assert [v.unfinished for v in verdicts if v.unfinished] == []
    counts = [v.records for v in verdicts]
    assert counts == sorted(counts) and counts[-1] == 801
