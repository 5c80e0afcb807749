"""One contract for the control plane, run on both backends: files under data_dir (the embedded
default) and the real PostgreSQL server (tests/postgres_server.py).

Each test opens the state twice, as two processes or two replicas would (`plane.other()`), so a
change made through one must be seen by the other at its next call, and concurrent changes
through both must all be kept.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from control.acl_overrides import AclOverrides
from control.audit import AuditLog, AuditStore
from control.backend import PgStateBackend
from control.directory import Directory
from control.errors import AuditWriteError, StateUnreadable
from control.jobs import Job, JobRecords, JobStore, PgJobStore
from control.keys import KeyStore
from control.pause import PauseSwitch
from control.pg_audit import PgAuditLog
from control.policy_store import policy_document
from control.postgres import Database
from control.provisioning import ProvisionedDirectory
from control.quarantine import Quarantine
from control.web_signouts import SignedOutSessions
from policies import DEFAULT_MODEL
from policies.enforcer import PolicyEngine
from policies.policy_file import Membership, PolicyError

POLICY = "g, user:alice, group:staff\np, role:admin, policy, write\ng, user:root, role:admin\n"


@dataclass
class Plane:
    """One opening of the control plane's state, and how to open it again elsewhere."""

    backend: str
    keys: KeyStore
    overrides: AclOverrides
    quarantine: Quarantine
    pause: PauseSwitch
    policy: PolicyEngine
    directory: Directory
    provisioned: ProvisionedDirectory
    jobs: JobRecords
    audit: AuditStore
    signouts: SignedOutSessions
    other: Callable[[], Plane]
    corrupt: Callable[[str, str], None]  # (document name, raw text) → stored as-is


def _file_plane(root: Path, key: Path) -> Plane:
    (root / "policy.csv").write_text(POLICY, encoding="utf-8") if not (
        root / "policy.csv").exists() else None
    files = {"keys": root / "keys.json", "acl_overrides": root / "document_acls.json",
             "quarantine": root / "quarantine.json", "pause": root / "pause.json",
             "policy": root / "policy.csv", "web_signouts": root / "web_signouts.json"}

    def corrupt(name: str, raw: str) -> None:
        files[name].write_text(raw, encoding="utf-8")

    provisioned = ProvisionedDirectory(root / "provisioning.json", "default")
    return Plane("files", KeyStore(files["keys"]), AclOverrides(files["acl_overrides"]),
                 Quarantine(files["quarantine"]), PauseSwitch(files["pause"]),
                 PolicyEngine(DEFAULT_MODEL, policy_document(files["policy"]), provisioned),
                 Directory(root / "directory.json"), provisioned, JobStore(root / "jobs"),
                 AuditLog(root / "audit" / "audit.jsonl", key),
                 SignedOutSessions(files["web_signouts"]),
                 other=lambda: _file_plane(root, key), corrupt=corrupt)


def _pg_plane(url: str, key: Path) -> Plane:
    db = Database(url, max_size=4)
    _opened.append(db)
    where = PgStateBackend(db)
    with db.connection() as conn:
        conn.execute("INSERT INTO control_state (name, value) VALUES ('policy', %s) "
                     "ON CONFLICT (name) DO NOTHING", (psycopg.types.json.Jsonb(POLICY),))

    def corrupt(name: str, raw: str) -> None:
        with db.connection() as conn:
            conn.execute("INSERT INTO control_state (name, value) VALUES (%s, %s::jsonb) "
                         "ON CONFLICT (name) DO UPDATE SET value = excluded.value, "
                         "version = control_state.version + 1", (name, raw))

    provisioned = ProvisionedDirectory(where, "default")
    return Plane("postgres", KeyStore(where), AclOverrides(where), Quarantine(where),
                 PauseSwitch(where),
                 PolicyEngine(DEFAULT_MODEL, policy_document(where), provisioned),
                 Directory(where), provisioned, PgJobStore(db), PgAuditLog(db, key),
                 SignedOutSessions(where),
                 other=lambda: _pg_plane(url, key), corrupt=corrupt)


_opened: list[Database] = []


@pytest.fixture(params=["files", "postgres"])
def plane(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Plane]:
    key = tmp_path / "audit.key"
    if request.param == "files":
        yield _file_plane(tmp_path, key)
    else:
        yield _pg_plane(request.getfixturevalue("database_url"), key)
    while _opened:
        _opened.pop().close()


def test_keys_created_and_revoked_through_one_apply_on_the_other(plane: Plane):
    other = plane.other()
    key = plane.keys.create("bob")
    assert other.keys.authenticate(key) == "bob"
    assert other.keys.users() == ["bob"]
    assert other.keys.revoke("bob") == 1
    assert plane.keys.authenticate(key) is None
    assert plane.keys.revoke("bob") == 0
    assert plane.keys.authenticate("clr_not-a-key") is None
    with pytest.raises(ValueError):
        plane.keys.create("../etc")


def test_acl_overrides_set_and_cleared_through_one_apply_on_the_other(plane: Plane):
    other = plane.other()
    assert plane.overrides.set("hr:pay.md", ["user:bob", "group:hr"]) == ("user:bob", "group:hr")
    stamp, acls = other.overrides.current()
    assert acls == {"hr:pay.md": ("user:bob", "group:hr")}
    with pytest.raises(ValueError):
        other.overrides.set("hr:pay.md", ["not a principal"])
    assert plane.overrides.current()[1]["hr:pay.md"] == ("user:bob", "group:hr")
    assert other.overrides.clear("hr:pay.md") is True
    assert plane.overrides.current()[1] == {} and plane.overrides.current()[0] != stamp
    assert plane.overrides.clear("hr:pay.md") is False


def test_quarantine_add_is_idempotent_and_release_applies_on_the_other(plane: Plane):
    other = plane.other()
    first = plane.quarantine.add("document", "hr:pay.md", by="user:root", reason="leak")
    again = other.quarantine.add("document", "hr:pay.md", by="user:bob", reason="second")
    assert again == first
    plane.quarantine.add("source", "handbook", by="user:root", reason="review")
    assert other.quarantine.current().holds("hr:pay.md", "hr")
    assert other.quarantine.current().holds("x:y", "handbook")
    assert other.quarantine.release("document", "hr:pay.md") == first
    assert not plane.quarantine.current().holds("hr:pay.md", "hr")
    assert plane.quarantine.release("document", "hr:pay.md") is None


def test_pause_and_resume_apply_on_the_other(plane: Plane):
    other = plane.other()
    first = plane.pause.pause("generation", by="user:root", reason="incident")
    assert other.pause.pause("generation", by="user:bob", reason="again") == first
    state = other.pause.current()
    assert state.generation_paused and not state.service_paused
    assert other.pause.resume("generation") == first
    assert not plane.pause.current().generation_paused
    assert plane.pause.resume("generation") is None


def test_policy_changes_apply_on_the_other_and_a_bad_one_changes_nothing(plane: Plane):
    other = plane.other()
    def groups(p: Plane) -> frozenset[str]:
        return p.policy.subject("bob").by_tenant["default"]

    assert "group:staff" not in groups(other)
    assert plane.policy.change(add=[Membership("user:bob", "group:staff")]) == (1, 0)
    assert "group:staff" in groups(other)
    assert plane.policy.change(add=[Membership("user:bob", "group:staff")]) == (0, 0)
    version = other.policy.version
    assert other.policy.change(remove=[Membership("user:bob", "group:staff")]) == (0, 1)
    assert "group:staff" not in groups(plane)
    assert plane.policy.version != version
    assert plane.policy.allows("root", "policy", "write")


def test_job_records_saved_through_one_load_on_the_other(plane: Plane):
    other = plane.other()
    job = Job(id="job-20261202T000000-abc123", source="handbook")
    plane.jobs.save(job)
    assert other.jobs.load(job.id) == job
    job.state, job.documents_done = "running", 3
    other.jobs.save(job)
    loaded = plane.jobs.load(job.id)
    assert loaded is not None and (loaded.state, loaded.documents_done) == ("running", 3)
    assert plane.jobs.load("job-unknown") is None
    assert plane.jobs.load("../../etc/passwd") is None


def test_audit_appends_through_both_make_one_chain_that_verifies(plane: Plane):
    other = plane.other()
    seqs = [log.append({"action": "test", "i": i})["seq"]
            for i, log in enumerate([plane.audit, other.audit] * 5)]
    assert seqs == list(range(1, 11))
    result = other.audit.verify()
    assert result.ok, result.problems
    assert result.records == 10
    with pytest.raises(ValueError):
        plane.audit.append({"action": "test", "seq": 99})


def test_an_anchor_verifies_against_a_longer_log(plane: Plane, tmp_path: Path):
    for i in range(3):
        plane.audit.append({"action": "test", "i": i})
    anchor = tmp_path / "anchor.json"
    import json

    anchor.write_text(json.dumps(plane.audit.anchor()), encoding="utf-8")
    for i in range(3):
        plane.other().audit.append({"action": "test", "i": i})
    result = plane.audit.verify(anchor)
    assert result.ok and result.records == 6, result.problems


def test_concurrent_changes_through_both_are_all_kept(plane: Plane):
    planes = [plane, plane.other()]
    errors: list[BaseException] = []

    def work(p: Plane, worker: int) -> None:
        try:
            for i in range(15):
                p.overrides.set(f"src:w{worker}-{i}.md", [f"user:u{worker}"])
                p.keys.create(f"w{worker}")
                p.policy.change(add=[Membership(f"user:w{worker}-{i}", "group:staff")])
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(planes[w % 2], w)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    check = plane.other()
    assert len(check.overrides.current()[1]) == 60
    assert check.keys.users() == ["w0", "w1", "w2", "w3"]
    members = [m for m in check.policy.policy.memberships if m.member.startswith("user:w")]
    assert len(members) == 60


def test_a_change_whose_audit_record_fails_is_not_made(plane: Plane):
    def refuse() -> None:
        raise AuditWriteError("the audit log is full")

    with pytest.raises(AuditWriteError):
        plane.quarantine.add("source", "hr", by="user:root", reason="x", before_commit=refuse)
    with pytest.raises(AuditWriteError):
        plane.overrides.set("hr:a.md", ["user:bob"], before_commit=refuse)
    with pytest.raises(AuditWriteError):
        plane.keys.create("bob", before_commit=refuse)
    with pytest.raises(AuditWriteError):
        plane.pause.pause("service", by="user:root", reason="x", before_commit=refuse)
    other = plane.other()
    assert other.quarantine.entries() == []
    assert other.overrides.current()[1] == {}
    assert other.keys.users() == []
    assert not other.pause.current().service_paused


def test_damaged_state_fails_closed(plane: Plane):
    plane.quarantine.add("source", "hr", by="user:root", reason="x")
    plane.keys.create("bob")
    plane.corrupt("quarantine", '{"entries": 5}')
    plane.corrupt("keys", '{"keys": [{"id": 1}]}')
    plane.corrupt("acl_overrides", '["not", "a", "map"]')
    plane.corrupt("pause", '{"service": 7}')
    with pytest.raises(StateUnreadable):
        plane.quarantine.current()
    with pytest.raises(StateUnreadable):
        plane.keys.authenticate("clr_x")
    with pytest.raises(StateUnreadable):
        plane.overrides.current()
    state = plane.pause.current()
    assert state.service_paused and state.generation_paused and state.problem


def test_a_policy_that_stops_parsing_leaves_the_last_good_one(plane: Plane):
    before = plane.policy.version
    plane.corrupt("policy", '"g, user:bob"' if plane.backend == "postgres" else "g, user:bob")
    assert plane.policy.version == before
    assert plane.policy.last_error is not None
    with pytest.raises(PolicyError):
        plane.other()


def test_key_lifecycle_rotation_expiry_scope_and_listing(plane: Plane):
    from datetime import timedelta

    other = plane.other()
    key, info = plane.keys.issue("svc-report", name="nightly", kind="service", scope="query",
                                 expires_in=timedelta(days=30))
    assert (info.kind, info.scope, info.state()) == ("service", "query", "active")
    found = other.keys.identify(key)
    assert found is not None and (found.user, found.scope) == ("svc-report", "query")
    listed = other.keys.list_keys("svc-report")
    assert [(k.id, k.name, k.state()) for k in listed] == [(info.id, "nightly", "active")]
    assert listed[0].last_used_at is not None  # identify noted the use
    assert "hash" not in vars(listed[0]) and key not in repr(listed)

    # Rotation with an overlap: both work; the new key keeps the name, kind, scope, lifetime.
    new_key, new, old = plane.keys.rotate(info.id, timedelta(hours=1))
    assert (new.name, new.kind, new.scope) == ("nightly", "service", "query")
    assert new.expires_at is not None and old.expires_at is not None
    assert old.expires_at < new.expires_at
    assert other.keys.authenticate(key) == other.keys.authenticate(new_key) == "svc-report"
    # Rotation without an overlap: the old key stops at once.
    newest_key, newest, _ = other.keys.rotate(new.id, timedelta(0))
    assert plane.keys.authenticate(new_key) is None
    assert plane.keys.authenticate(newest_key) == "svc-report"
    states = {k.id: k.state() for k in plane.keys.list_keys("svc-report")}
    assert states == {info.id: "active", new.id: "expired", newest.id: "active"}
    with pytest.raises(KeyError):
        plane.keys.rotate(new.id, timedelta(hours=1))  # expired
    with pytest.raises(KeyError):
        plane.keys.rotate("0" * 16, timedelta(hours=1))
    # Revocation of one key by its id.
    assert other.keys.revoke_id(newest.id) is not None
    assert plane.keys.authenticate(newest_key) is None
    assert plane.keys.revoke_id(newest.id) is None
    with pytest.raises(ValueError):
        plane.keys.issue("bob", scope="root")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        plane.keys.issue("bob", expires_in=timedelta(days=-1))


def test_a_deactivation_through_one_applies_on_the_other(plane: Plane):
    other = plane.other()
    first = plane.directory.deactivate("bob", by="user:root", reason="left")
    assert other.directory.deactivated("bob") == first
    assert other.directory.deactivate("bob", by="user:x", reason="again") == first
    assert other.directory.deactivated("alice") is None
    assert other.directory.activate("bob") == first
    assert plane.directory.deactivated("bob") is None
    assert plane.directory.activate("bob") is None
    with pytest.raises(ValueError):
        plane.directory.deactivate("../x", by="user:root", reason="")


def test_provisioned_memberships_through_one_are_in_the_others_policy(plane: Plane):
    other = plane.other()
    assert "group:finance" not in other.policy.subject("frank").tokens
    assert not other.policy.knows("frank")
    with plane.provisioned.change() as edit:
        edit.value.users["u1"] = {"user": "frank", "resource": {"userName": "frank"}}
        edit.value.groups["g1"] = {"principal": "group:finance",
                                   "resource": {"members": [{"value": "u1"}]}}
        edit.value.groups["g2"] = {"principal": "group:staff",  # a group within a group
                                   "resource": {"members": [{"value": "g1"}]}}
    subject = other.policy.subject("frank")
    assert {"user:frank", "group:finance", "group:staff"} <= subject.tokens
    assert other.policy.knows("frank")
    version = other.policy.version
    with other.provisioned.change() as edit:
        edit.value.groups["g1"]["resource"]["members"] = []
    assert "group:finance" not in plane.policy.subject("frank").tokens
    assert plane.policy.version != version  # the policy version names provisioned memberships
    assert plane.policy.knows("frank")  # still provisioned, in no group


def test_a_web_sign_out_through_one_is_refused_on_the_other_until_it_expires(plane: Plane):
    other = plane.other()
    plane.signouts.sign_out("s1", expires_at=2_000.0, now=1_000.0)
    assert other.signouts.signed_out("s1") and not other.signouts.signed_out("s2")
    # A later sign-out drops the entries of sessions that have expired since.
    other.signouts.sign_out("s2", expires_at=4_000.0, now=3_000.0)
    assert not plane.signouts.signed_out("s1") and plane.signouts.signed_out("s2")
    plane.corrupt("web_signouts", '{"signed_out": 5}')
    with pytest.raises(StateUnreadable):
        other.signouts.signed_out("s2")  # fails closed: it may hold the session presented
