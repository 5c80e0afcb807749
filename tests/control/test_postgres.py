"""The PostgreSQL control plane beyond the shared contract: schema migrations and the commands
that run them, and the audit chain in the database under tampering and concurrent appends."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import psycopg
import pytest

from api.cli import main
from application.services import close_databases, open_database
from application.settings import load_settings
from control.pg_audit import PgAuditLog
from control.postgres import LATEST, Database, DatabaseError
from tests.postgres_server import PostgresServer


def test_a_service_refuses_a_database_that_is_not_migrated(postgres: PostgresServer):
    db = Database(postgres.create_database(), max_size=1)
    try:
        assert db.schema_version() == 0
        with pytest.raises(DatabaseError, match="clearance db migrate"):
            db.check_schema()
        assert [m.version for m in db.migrate()] == list(range(1, LATEST + 1))
        assert db.migrate() == []  # applied once only
        db.check_schema()
    finally:
        db.close()


def test_an_unreachable_database_is_named_without_its_password(tmp_path: Path):
    db = Database(f"postgresql://u:s3cret@/x?host={tmp_path}&port=1", max_size=1, timeout_s=1)
    try:
        with pytest.raises(DatabaseError) as info:
            db.check_schema()
        assert "s3cret" not in str(info.value) and "cannot be reached" in str(info.value)
        assert db.problem() is not None
    finally:
        db.close()


def _config(tmp_path: Path, url: str) -> Path:
    (tmp_path / "policy.csv").write_text("g, user:root, role:admin\np, role:admin, *, *\n",
                                         encoding="utf-8")
    config = tmp_path / "clearance.toml"
    config.write_text(f'data_dir = "data"\ncasbin_policy = "policy.csv"\ndatabase_url = "{url}"\n',
                      encoding="utf-8")
    return config


def test_db_commands_migrate_import_and_are_on_record(postgres: PostgresServer, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]):
    url = postgres.create_database()
    config = _config(tmp_path, url)
    assert main(["db", "status", "--config", str(config)]) == 1
    assert "behind" in capsys.readouterr().out
    assert main(["keys", "create", "bob", "--config", str(config)]) == 1
    assert "clearance db migrate" in capsys.readouterr().err
    assert main(["db", "migrate", "--config", str(config)]) == 0
    assert f"schema version {LATEST}" in capsys.readouterr().out
    assert main(["db", "migrate", "--config", str(config)]) == 0
    assert "nothing to do" in capsys.readouterr().out
    (tmp_path / "data").mkdir(exist_ok=True)
    (tmp_path / "data" / "quarantine.json").write_text(json.dumps({"entries": [
        {"kind": "source", "target": "hr", "by": "user:root", "at": "2026-01-01", "reason": "x"}
    ]}), encoding="utf-8")
    assert main(["db", "import", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "policy: copied" in out and "quarantine: copied" in out and "keys: no file" in out
    assert main(["db", "import", "--config", str(config)]) == 0
    assert "policy: the database holds it already" in capsys.readouterr().out
    assert main(["quarantine", "list", "--config", str(config)]) == 0
    assert "hr" in capsys.readouterr().out
    assert main(["audit", "verify", "--config", str(config)]) == 0
    assert "ok" in capsys.readouterr().out
    settings = load_settings(config)
    log = PgAuditLog(open_database(settings), settings.audit_key)
    actions = [(r["action"], r["caller"].split(":")[0]) for r in log.records()]
    assert actions == [("db.migrate", "cli"), ("db.import", "cli"), ("db.import", "cli")]
    close_databases()


@pytest.fixture
def audit(database_url: str, tmp_path: Path):
    db = Database(database_url, max_size=4)
    log = PgAuditLog(db, tmp_path / "audit.key")
    for i in range(6):
        log.append({"action": "test", "i": i})
    yield log, db
    db.close()


def _sql(db: Database, statement: str, *args: object) -> None:
    with db.connection() as conn:
        conn.execute(statement.encode(), args)


def _line(db: Database, seq: int) -> dict:
    with db.connection() as conn:
        row = conn.execute("SELECT line FROM audit_records WHERE seq = %s", (seq,)).fetchone()
    return json.loads(row[0])


@pytest.mark.parametrize("tamper", ["edit", "rehashed edit", "insert", "delete", "reorder",
                                    "append", "truncate", "rewrite from the start"])
def test_each_tamper_of_the_chain_in_the_database_is_caught(audit, tamper: str,
                                                            tmp_path: Path):
    from control.audit import GENESIS_HASH, canonical_json, head_mac, record_hash

    log, db = audit
    assert log.verify().ok
    if tamper == "edit":
        _sql(db, "UPDATE audit_records SET line = replace(line, '\"i\":2', '\"i\":7') "
                 "WHERE seq = 3")
    elif tamper == "rehashed edit":
        rec = _line(db, 3)
        rec["i"] = 7
        rec["hash"] = record_hash(rec)
        _sql(db, "UPDATE audit_records SET line = %s WHERE seq = 3", canonical_json(rec))
    elif tamper == "insert":
        _sql(db, "UPDATE audit_records SET seq = seq + 100 WHERE seq >= 4")
        _sql(db, "UPDATE audit_records SET seq = seq - 99 WHERE seq >= 100")
        _sql(db, "INSERT INTO audit_records (seq, line) VALUES (4, %s)",
             canonical_json({**_line(db, 3), "seq": 4}))
    elif tamper == "delete":
        _sql(db, "DELETE FROM audit_records WHERE seq = 3")
    elif tamper == "reorder":
        a, b = _line(db, 2), _line(db, 3)
        _sql(db, "UPDATE audit_records SET line = %s WHERE seq = 2", canonical_json(b))
        _sql(db, "UPDATE audit_records SET line = %s WHERE seq = 3", canonical_json(a))
    elif tamper == "append":
        last = _line(db, 6)
        rec = {"action": "forged", "seq": 7, "prev_hash": last["hash"]}
        rec["hash"] = record_hash(rec)
        rec["mac"] = "0" * 64
        _sql(db, "INSERT INTO audit_records (seq, line) VALUES (7, %s)", canonical_json(rec))
        _sql(db, "UPDATE audit_head SET seq = 7, hash = %s", rec["hash"])
    elif tamper == "truncate":
        _sql(db, "DELETE FROM audit_records WHERE seq > 4")
    else:  # rewrite from the start, without the key: a new chain and head, signed with another
        other_key = bytes(32)
        _sql(db, "DELETE FROM audit_records")
        prev = GENESIS_HASH
        for seq in range(1, 4):
            rec = {"action": "rewritten", "seq": seq, "prev_hash": prev}
            rec["hash"] = record_hash(rec)
            rec["mac"] = "f" * 64
            _sql(db, "INSERT INTO audit_records (seq, line) VALUES (%s, %s)", seq,
                 canonical_json(rec))
            prev = rec["hash"]
        _sql(db, "UPDATE audit_head SET seq = 3, hash = %s, mac = %s", prev,
             head_mac(other_key, 3, prev))
    result = log.verify()
    assert not result.ok, tamper
    assert result.problems


def test_truncation_with_an_old_signed_head_is_caught_by_an_anchor(audit, tmp_path: Path):
    log, db = audit
    old_head = log.anchor()
    for i in range(3):
        log.append({"action": "later", "i": i})
    anchor = tmp_path / "anchor.json"
    anchor.write_text(json.dumps(log.anchor()), encoding="utf-8")
    # Someone with database access cuts the log back and restores the earlier (signed) head.
    _sql(db, "DELETE FROM audit_records WHERE seq > %s", old_head["seq"])
    _sql(db, "UPDATE audit_head SET seq = %s, hash = %s, mac = %s", old_head["seq"],
         old_head["hash"], old_head["mac"])
    assert log.verify().ok  # a consistent, signed, shorter log: only the anchor can tell
    result = log.verify(anchor)
    assert not result.ok and "removed from the end" in result.problems[0]


def test_verify_gives_the_same_verdict_while_replicas_append(database_url: str, tmp_path: Path):
    key = tmp_path / "audit.key"
    dbs = [Database(database_url, max_size=4) for _ in range(3)]
    logs = [PgAuditLog(db, key) for db in dbs]
    logs[0].append({"action": "first"})
    stop = threading.Event()
    errors: list[BaseException] = []

    def append(log: PgAuditLog) -> None:
        try:
            while not stop.is_set():
                log.append({"action": "test"})
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=append, args=(logs[i % 2],)) for i in range(4)]
    for t in threads:
        t.start()
    try:
        verdicts = [logs[2].verify() for _ in range(20)]
    finally:
        stop.set()
        for t in threads:
            t.join()
    for db in dbs:
        db.close()
    assert errors == []
    assert all(v.ok for v in verdicts), [v.problems for v in verdicts if not v.ok][:1]
    assert verdicts[-1].records > verdicts[0].records  # appends went on meanwhile
    with psycopg.connect(database_url) as conn:
        seqs = [r[0] for r in conn.execute("SELECT seq FROM audit_records ORDER BY seq")]
    assert seqs == list(range(1, len(seqs) + 1))  # one chain, no fork, no gap


def test_an_unreachable_database_fails_closed(tmp_path: Path):
    from control.backend import PgStateBackend
    from control.errors import AuditWriteError, StateUnreadable, StateWriteError
    from control.keys import KeyStore
    from control.pause import PauseSwitch
    from control.quarantine import Quarantine

    db = Database(f"postgresql://u@/x?host={tmp_path}&port=1", max_size=1, timeout_s=1)
    where = PgStateBackend(db)
    try:
        with pytest.raises(StateUnreadable):
            KeyStore(where).authenticate("clr_anything")
        with pytest.raises(StateUnreadable):
            Quarantine(where).current()
        state = PauseSwitch(where).current()
        assert state.service_paused and state.generation_paused
        with pytest.raises(StateWriteError):
            Quarantine(where).add("source", "hr", by="user:root", reason="x")
        with pytest.raises(AuditWriteError):
            PgAuditLog(db, tmp_path / "audit.key").append({"action": "x"})
    finally:
        db.close()
