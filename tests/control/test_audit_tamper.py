"""Each way of tampering with the audit log is caught by the default verify, with no flag.

The attacker here can write the data directory (log, head) but does not hold the audit key: after
each edit they re-hash the chain and rewrite the head so that the sha256 chain is consistent
again, the strongest forgery short of the key. A key holder cutting the log back is caught by an
anchor taken earlier, which a log that has legitimately grown since still verifies against.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from api.cli import main
from control.audit import (
    GENESIS_HASH,
    AuditLog,
    anchor_of,
    head_mac,
    head_path_for,
    key_path_for,
    read_key,
    record_hash,
    record_mac,
    verify_audit_log,
)

Records = list[dict[str, Any]]


def _log(tmp_path: Path, n: int = 30) -> Path:
    path = tmp_path / "audit" / "audit.jsonl"
    log = AuditLog(path)
    for i in range(n):
        log.append({"action": "search", "caller": f"user:u{i % 3}", "outcome": "ok", "i": i})
    return path


def _read(path: Path) -> Records:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _rechain(records: Records, key: bytes | None = None) -> Records:
    """What a forger writes: seq, prev_hash and hash recomputed; the mac left as it was, or made
    with `key` by someone who holds it."""
    prev, out = GENESIS_HASH, []
    for seq, rec in enumerate(records, start=1):
        rec = {**{k: v for k, v in rec.items() if k not in ("seq", "prev_hash", "hash")},
               "seq": seq, "prev_hash": prev}
        rec["hash"] = record_hash(rec)
        if key is not None:
            rec["mac"] = record_mac(key, rec["hash"])
        prev = rec["hash"]
        out.append(rec)
    return out


def _forge(path: Path, records: Records, key: bytes | None = None) -> None:
    """Write `records` re-chained, and a head that matches them."""
    records = _rechain(records, key)
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    last_seq, last_hash = (records[-1]["seq"], records[-1]["hash"]) if records else (0, "")
    head: dict[str, Any] = {"seq": last_seq, "hash": last_hash}
    if key is not None:
        head["mac"] = head_mac(key, last_seq, last_hash)
    head_path_for(path).write_text(json.dumps(head), encoding="utf-8")


def _edit(rs: Records) -> Records:
    return [*rs[:7], {**rs[7], "caller": "user:mallory"}, *rs[8:]]


def _insert(rs: Records) -> Records:
    return [*rs[:12], {"action": "search", "caller": "user:u1", "outcome": "ok"}, *rs[12:]]


def _append(rs: Records) -> Records:
    return [*rs, {"action": "policy.change", "caller": "user:root", "outcome": "ok"}]


def _rewrite(rs: Records) -> Records:
    return [{k: v for k, v in r.items() if k != "mac"} | {"caller": "user:nobody"} for r in rs]


TAMPERS: dict[str, Callable[[Records], Records]] = {
    "rehashed edit": _edit,
    "insert": _insert,
    "delete": lambda rs: [*rs[:10], *rs[11:]],
    "reorder": lambda rs: [*rs[:4], rs[5], rs[4], *rs[6:]],
    "append": _append,
    "truncate": lambda rs: rs[:-5],
    "rewrite from the start": _rewrite,
}


@pytest.mark.parametrize("tamper", TAMPERS)
def test_a_rechained_tamper_is_caught_by_default(tmp_path: Path, tamper: str):
    path = _log(tmp_path)
    assert verify_audit_log(path).ok
    _forge(path, TAMPERS[tamper](_read(path)))
    result = verify_audit_log(path)
    assert not result.ok and any("signature does not match" in p for p in result.problems), \
        result.problems


def test_an_edit_left_unhashed_is_caught(tmp_path: Path):
    path = _log(tmp_path)
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[3] = lines[3].replace('"user:u0"', '"user:mallory"')
    path.write_text("".join(lines), encoding="utf-8")
    problems = verify_audit_log(path).problems
    assert any("line 4" in p and "hash mismatch" in p for p in problems), problems


def test_a_truncation_with_the_head_deleted_is_caught(tmp_path: Path):
    path = _log(tmp_path)
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("".join(lines[:-5]), encoding="utf-8")
    head_path_for(path).unlink()
    assert any("head file" in p and "missing" in p for p in verify_audit_log(path).problems)


def test_a_deleted_key_is_caught(tmp_path: Path):
    path = _log(tmp_path)
    key_path_for(path).unlink()
    assert any("audit key" in p and "missing" in p for p in verify_audit_log(path).problems)


def test_the_cli_default_command_says_broken(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    path = _log(tmp_path)
    assert main(["audit", "verify", "--log", str(path)]) == 0
    _forge(path, _edit(_read(path)))
    assert main(["audit", "verify", "--log", str(path)]) == 1
    assert "BROKEN" in capsys.readouterr().out


def test_an_anchor_holds_while_the_log_grows_and_catches_a_key_holder_cutting_it(
    tmp_path: Path
):
    path = _log(tmp_path, 10)
    anchor = tmp_path / "elsewhere" / "anchor.json"
    anchor.parent.mkdir()
    anchor.write_text(json.dumps(anchor_of(path)), encoding="utf-8")
    log = AuditLog(path)
    for i in range(20):  # the log grows legitimately after the anchor was taken
        log.append({"action": "search", "i": i})
    assert verify_audit_log(path, anchor=anchor).ok
    # Someone with the key cuts the log back before the anchor and re-signs everything: the
    # default verify cannot tell, the anchor can.
    key = read_key(key_path_for(path))
    copy = tmp_path / "cut" / "audit.jsonl"
    copy.parent.mkdir()
    shutil.copy(key_path_for(path), key_path_for(copy))
    _forge(copy, _read(path)[:8], key)
    assert verify_audit_log(copy).ok
    problems = verify_audit_log(copy, anchor=anchor).problems
    assert any("before the anchor" in p for p in problems), problems
    # ... and rewrites it from the start at full length: the anchored record differs.
    _forge(copy, [{**r, "caller": "user:x"} for r in _read(path)], key)
    problems = verify_audit_log(copy, anchor=anchor).problems
    assert any("does not match the anchor" in p for p in problems), problems
