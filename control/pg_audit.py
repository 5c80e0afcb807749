"""The audit log kept in PostgreSQL: the same signed hash chain as the file log, one row a record.

Each row of `audit_records` holds one record's line exactly as the file log would write it
(canonical JSON with seq, prev_hash, hash and mac), and `audit_head` holds the signed head. An
append locks the head row (`SELECT ... FOR UPDATE`), so appends from every replica queue there
and the chain never forks; the record and the new head commit in one transaction, so there are
no unfinished appends. `verify` reads the head and every record in one REPEATABLE READ snapshot
and runs the file log's checks over them (control/audit.ChainCheck): the verdict is the same
while other replicas append. The key that signs records stays a file (`audit_key_file`, shared
by the replicas), so someone who can write the database but does not hold the key cannot
rewrite the chain unnoticed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg

from control.audit import (
    CHAIN_FIELDS,
    GENESIS_HASH,
    ChainCheck,
    HeadInfo,
    VerifyResult,
    _read_head,
    _verify_key,
    canonical_json,
    head_mac,
    load_or_create_key,
    note_request_recorded,
    record_hash,
    record_mac,
)
from control.errors import AuditReadError, AuditWriteError
from control.postgres import Database
from observability import metrics


class PgAuditLog:
    """An append-only, signed audit log in the control-plane database (see the module
    docstring); the interface of control.audit.AuditLog."""

    def __init__(self, db: Database, key_path: Path) -> None:
        self.db = db
        self.key_path = Path(key_path)
        self._key: bytes | None = None

    def describe(self) -> str:
        return f"audit_records in {self.db.where}"

    def append(self, record: dict[str, Any]) -> dict[str, Any]:
        """Append one record after the head, under the head row's lock, and return it."""
        reserved = [k for k in CHAIN_FIELDS if k in record]
        if reserved:
            raise ValueError(f"audit record must not set {', '.join(reserved)}: the log assigns "
                             "them")
        canonical_json(record)
        started = time.monotonic()
        try:
            if self._key is None:
                self._key = load_or_create_key(self.key_path)
            key = self._key
            with self.db.transaction("audit") as conn:
                conn.execute("INSERT INTO audit_head (id, seq, hash, mac) VALUES (1, 0, %s, %s) "
                             "ON CONFLICT (id) DO NOTHING",
                             (GENESIS_HASH, head_mac(key, 0, GENESIS_HASH)))
                row = conn.execute("SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE"
                                   ).fetchone()
                assert row is not None
                written = {**record, "seq": int(row[0]) + 1, "prev_hash": row[1]}
                written["hash"] = record_hash(written)
                written["mac"] = record_mac(key, written["hash"])
                conn.execute("INSERT INTO audit_records (seq, line) VALUES (%s, %s)",
                             (written["seq"], canonical_json(written)))
                conn.execute("UPDATE audit_head SET seq = %s, hash = %s, mac = %s WHERE id = 1",
                             (written["seq"], written["hash"],
                              head_mac(key, written["seq"], written["hash"])))
        except (OSError, psycopg.Error) as exc:
            metrics.record_audit("postgres", time.monotonic() - started, failed=True)
            raise AuditWriteError(f"audit log ({self.describe()}) could not be written: {exc}"
                                  ) from exc
        metrics.record_audit("postgres", time.monotonic() - started, failed=False)
        note_request_recorded(written["seq"])
        return written

    def anchor(self) -> dict[str, Any]:
        """The head as an anchor (seq, hash, mac); OSError if there is none."""
        try:
            with self.db.connection("audit") as conn:
                row = conn.execute("SELECT seq, hash, mac FROM audit_head WHERE id = 1"
                                   ).fetchone()
        except psycopg.Error as exc:
            raise OSError(f"audit head in {self.db.where} cannot be read: {exc}") from exc
        if row is None:
            raise OSError(f"the audit log in {self.db.where} has no head yet (no records)")
        return {"seq": int(row[0]), "hash": row[1], "mac": row[2]}

    def verify(self, anchor: Path | None = None) -> VerifyResult:
        """The chain, signatures, head and (optionally) an anchor file, in one snapshot."""
        problems: list[str] = []
        key = _verify_key(self.key_path, problems)
        key_problem = bool(problems)
        anchor_info = _read_head(Path(anchor), Path(anchor), problems) if anchor else None
        head_info: HeadInfo | None = None
        try:
            with self.db.connection("audit") as conn, conn.transaction():
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                row = conn.execute("SELECT seq, hash, mac FROM audit_head WHERE id = 1"
                                   ).fetchone()
                if row is not None:
                    head_info = (int(row[0]), row[1], row[2])
                check = ChainCheck(key, problems, head_info, anchor_info,
                                   key_problem=key_problem)
                with conn.cursor(name="audit_verify") as cursor:
                    cursor.execute("SELECT line FROM audit_records ORDER BY seq")
                    check.read(_lines(cursor))
        except psycopg.Error as exc:
            problems.append(f"audit log in {self.db.where} could not be read: {exc}")
            check = ChainCheck(key, problems, key_problem=key_problem)
        if head_info is None and check.records:
            problems.append(f"the audit head in {self.db.where} is missing: whether records "
                            "were removed from the end cannot be checked")
        return check.result(key_path=self.key_path, head=(head_info, "audit_head"),
                            anchor=(anchor_info, anchor))

    def records(self) -> list[dict[str, Any]]:
        """Every record, oldest first (reports and tests), read in one snapshot."""
        try:
            with self.db.connection("audit") as conn:
                lines = conn.execute("SELECT line FROM audit_records ORDER BY seq").fetchall()
        except psycopg.Error as exc:
            raise AuditReadError(f"audit log ({self.describe()}) cannot be read: {exc}"
                                 ) from exc
        return [json.loads(line) for (line,) in lines]

    def request_records(self, request_id: str) -> list[dict[str, Any]]:
        """The records of one request id, oldest first, through the index of migration 2."""
        try:
            with self.db.connection("audit") as conn:
                rows = conn.execute(
                    "SELECT line FROM audit_records WHERE (line::jsonb) ->> 'request_id' = %s "
                    "ORDER BY seq", (request_id,)).fetchall()
        except psycopg.Error as exc:
            raise AuditReadError(f"audit log ({self.describe()}) cannot be read: {exc}"
                                 ) from exc
        return [json.loads(line) for (line,) in rows]


def _lines(cursor: psycopg.Cursor[Any]) -> Iterator[bytes]:
    for (line,) in cursor:
        yield line.encode("utf-8") + b"\n"
