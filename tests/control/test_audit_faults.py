"""Disk faults in the audit log, the pause switch and the readiness checks, simulated in-process
(ENOSPC raised where the disk would raise it), so they run wherever the suite runs; the same
faults on a real full filesystem are in tests/test_faults.py."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path
from typing import Any

import pytest

import control.audit as audit_module
import retrieval.readiness as readiness
from control.audit import (
    UNFINISHED_REASON,
    AuditLog,
    failure_record,
    request_outcomes,
    verify_audit_log,
)
from control.pause import PauseSwitch
from retrieval.errors import AuditWriteError, StateWriteError


def _enospc(*args: Any, **kwargs: Any) -> Any:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _record(request_id: str, outcome: str = "ok") -> dict[str, Any]:
    return {"request_id": request_id, "action": "search", "caller": "user:dave",
            "outcome": outcome}


def _lines(log: AuditLog) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.path.read_text(encoding="utf-8").splitlines()]


def test_a_head_that_cannot_be_written_takes_the_line_back(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch):
    # The fault of a full disk: the line fits in the log's last block, the head file does not.
    log = AuditLog(tmp_path / "audit.jsonl")
    log.append(_record("r1"))
    monkeypatch.setattr(audit_module, "_write_head", _enospc)
    with pytest.raises(AuditWriteError, match="No space left"):
        log.append(_record("r2"))
    monkeypatch.undo()
    assert [r["request_id"] for r in _lines(log)] == ["r1"]  # no "ok" for the failed request
    assert request_outcomes(log.path) == {"r1": "ok"}
    log.append(_record("r3"))
    result = verify_audit_log(log.path)
    assert result.ok and result.records == 2 and result.unfinished == 0, result.problems


def test_a_line_left_after_the_head_is_recorded_as_failed_by_the_next_append(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    log = AuditLog(tmp_path / "audit.jsonl")
    log.append(_record("r1"))
    # The head fails and so does taking the line back (or the process died in between).
    monkeypatch.setattr(audit_module, "_write_head", _enospc)
    monkeypatch.setattr(audit_module.os, "ftruncate", _enospc)
    with pytest.raises(AuditWriteError):
        log.append(_record("r2"))
    monkeypatch.undo()
    assert [r["request_id"] for r in _lines(log)] == ["r1", "r2"]
    # Readers and verify know the head is the commit point: r2 was never on record.
    pending = verify_audit_log(log.path)
    assert pending.ok and pending.unfinished == 1, pending.problems
    assert request_outcomes(log.path) == {"r1": "ok", "r2": "failed"}

    log.append(_record("r3"))
    lines = _lines(log)
    assert [(r["request_id"], r["outcome"]) for r in lines] == [
        ("r1", "ok"), ("r2", "ok"), ("r2", "failed"), ("r3", "ok")]
    followup = lines[2]
    assert followup["amends"] == lines[1]["seq"] and followup["reason"] == UNFINISHED_REASON
    assert followup["caller"] == "user:dave" and followup["action"] == "search"
    result = verify_audit_log(log.path)
    assert result.ok and result.unfinished == 0 and result.failed_later == 1, result.problems
    assert request_outcomes(log.path) == {"r1": "ok", "r2": "failed", "r3": "ok"}


def test_a_followup_must_amend_an_earlier_record(tmp_path: Path):
    log = AuditLog(tmp_path / "audit.jsonl")
    log.append(_record("r1"))
    log.append(failure_record("r1", "search", "internal error", amends=1))
    assert verify_audit_log(log.path).ok
    log.append(failure_record("r9", "search", "forged", amends=99))
    result = verify_audit_log(log.path)
    assert not result.ok and "amends 99" in result.problems[0]


def test_records_removed_from_the_end_are_still_a_break(tmp_path: Path):
    log = AuditLog(tmp_path / "audit.jsonl")
    for n in range(3):
        log.append(_record(f"r{n}"))
    kept = log.path.read_text(encoding="utf-8").splitlines(keepends=True)[:2]
    log.path.write_text("".join(kept), encoding="utf-8")
    result = verify_audit_log(log.path)
    assert not result.ok and "head mismatch" in result.problems[0]


def test_a_pause_that_cannot_be_written_or_audited_changes_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    pause_file = tmp_path / "pause.json"
    switch = PauseSwitch(pause_file)
    switch.pause("generation", by="user:root", reason="review")
    before = pause_file.read_bytes()
    audited: list[str] = []

    # The new state cannot be written (full disk): the old file stays, nothing is audited.
    real_open = Path.open

    def full_open(self: Path, *args: Any, **kwargs: Any) -> Any:
        if self.name.endswith(".tmp"):
            _enospc()
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", full_open)
    with pytest.raises(StateWriteError) as refused:
        switch.pause("service", by="user:root", reason="x",
                     before_commit=lambda: audited.append("pause"))
    monkeypatch.undo()
    assert refused.value.full and "No space left" in str(refused.value)
    assert audited == [] and pause_file.read_bytes() == before

    # The audit record cannot be written: the new state never takes effect.
    def audit_fails() -> None:
        raise AuditWriteError("audit log could not be written: [Errno 28] No space left")

    with pytest.raises(AuditWriteError):
        switch.resume("generation", before_commit=audit_fails)
    assert pause_file.read_bytes() == before
    assert switch.current().generation is not None and switch.current().service is None
    assert not list(tmp_path.glob(".*.tmp"))

    # And when both work, the record is written before the change shows.
    seen: list[bytes] = []
    switch.resume("generation", before_commit=lambda: seen.append(pause_file.read_bytes()))
    assert seen == [before] and switch.current().generation is None


def test_readiness_names_a_full_a_read_only_and_an_unwritable_audit_log(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    log = AuditLog(tmp_path / "audit" / "audit.jsonl")
    assert readiness.audit_log_problem(log.path) is None  # not written yet: its parent counts
    log.append(_record("r1"))
    assert readiness.audit_log_problem(log.path) is None

    monkeypatch.setattr(readiness, "MIN_FREE_BYTES", 1 << 62)  # more than any disk has
    full = readiness.audit_log_problem(log.path)
    assert full is not None and full.full and "is full" in str(full)
    monkeypatch.undo()

    real_statvfs = os.statvfs

    class ReadOnly:
        def __init__(self, path: Any) -> None:
            self._st = real_statvfs(path)

        def __getattr__(self, name: str) -> Any:
            return os.ST_RDONLY | self._st.f_flag if name == "f_flag" else getattr(self._st, name)

    monkeypatch.setattr(readiness.os, "statvfs", ReadOnly)
    read_only = readiness.audit_log_problem(log.path)
    assert read_only is not None and "read-only" in str(read_only) and not read_only.full
    monkeypatch.undo()

    # As root, permissions do not stop a write: os.access says so, so ask it for a non-root.
    monkeypatch.setattr(readiness.os, "access", lambda path, mode: Path(path) != log.path)
    denied = readiness.audit_log_problem(log.path)
    assert denied is not None and "not writable" in str(denied)
