"""Ratings on both control-plane backends (files under data_dir, a real PostgreSQL): only the
caller who was answered may rate, anyone else gets exactly what an unknown id gets, each rating
is audited, a re-rating replaces the last, and a rating whose record fails is not kept."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from answers.redaction import Redactor
from answers.settings import RedactionSettings
from application.errors import Invalid, NotFound
from application.feedback import MAX_COMMENT_CHARS, NOT_YOURS, FeedbackService
from control.audit import AuditLog, AuditStore, failure_record
from control.errors import AuditWriteError
from control.feedback import FeedbackStore, FileFeedback, PgFeedback
from control.pg_audit import PgAuditLog
from control.postgres import Database

ALICE_ID, FAILED_ID = "a" * 32, "f" * 32


def _chat(request_id: str, caller: str) -> dict[str, Any]:
    return {"time": "2026-01-05T10:00:00+00:00", "request_id": request_id, "action": "chat",
            "caller": caller, "query": "q", "query_hmac": "h", "results": [], "cited": [],
            "mode": "extractive", "outcome": "ok"}


@pytest.fixture(params=["files", "postgres"])
def world(request: pytest.FixtureRequest, tmp_path: Path
          ) -> Iterator[tuple[FeedbackService, FeedbackStore, AuditStore]]:
    key = tmp_path / "audit.key"
    db: Database | None = None
    if request.param == "files":
        audit: AuditStore = AuditLog(tmp_path / "audit" / "audit.jsonl", key)
        store: FeedbackStore = FileFeedback(tmp_path / "feedback.json")
    else:
        db = Database(request.getfixturevalue("database_url"), max_size=2)
        audit, store = PgAuditLog(db, key), PgFeedback(db)
    audit.append(_chat(ALICE_ID, "user:alice"))
    audit.append(_chat(FAILED_ID, "user:alice"))
    audit.append(failure_record(FAILED_ID, "chat", "the client went away"))
    redactor = Redactor(RedactionSettings(), tmp_path / "redaction.key")
    yield FeedbackService(store, audit, redactor), store, audit
    if db is not None:
        db.close()


def _feedback_records(audit: AuditStore) -> list[dict[str, Any]]:
    return [r for r in audit.records() if r["action"] == "feedback"]


def test_the_asker_rates_and_a_rerating_replaces_it(world):
    service, store, audit = world
    first = service.rate("user:alice", ALICE_ID, "down", "wrong: mail bob@example.com",
                         request_id="r1")
    assert (first.rating, first.ratings, first.comment) == ("down", 1,
                                                            "wrong: mail [EMAIL]")
    again = service.rate("user:alice", f"chatcmpl-{ALICE_ID}", "up", None, request_id="r2")
    assert (again.request_id, again.rating, again.ratings, again.comment) == (
        ALICE_ID, "up", 2, None)
    [kept] = store.entries()
    assert (kept.request_id, kept.caller, kept.rating, kept.ratings) == (
        ALICE_ID, "user:alice", "up", 2)
    records = _feedback_records(audit)
    assert [(r["request_id"], r["rated_request"], r["rating"], r["outcome"]) for r in records] == [
        ("r1", ALICE_ID, "down", "ok"), ("r2", ALICE_ID, "up", "ok")]
    assert records[0]["comment"] == "wrong: mail [EMAIL]" and records[0]["redacted"] == {
        "email": 1}
    assert "bob@example.com" not in str(list(audit.records()))


@pytest.mark.parametrize("caller, rated", [
    ("user:bob", ALICE_ID),        # another caller's answer
    ("user:alice", "0" * 32),       # no such request
    ("user:alice", FAILED_ID),      # a request that failed after its record
])
def test_anyone_else_gets_what_an_unknown_id_gets(world, caller, rated):
    service, store, audit = world
    with pytest.raises(NotFound) as refused:
        service.rate(caller, rated, "down", "x", request_id="r9")
    assert str(refused.value) == NOT_YOURS
    assert store.entries() == []
    [record] = _feedback_records(audit)
    assert (record["caller"], record["rated_request"], record["outcome"]) == (
        caller, rated, "refused")


def test_bad_input_is_refused_before_anything_is_read(world):
    service, store, audit = world
    with pytest.raises(Invalid, match=r"up.*down"):
        service.rate("user:alice", ALICE_ID, "meh", None, request_id="r")
    with pytest.raises(Invalid, match=str(MAX_COMMENT_CHARS)):
        service.rate("user:alice", ALICE_ID, "up", "x" * (MAX_COMMENT_CHARS + 1), request_id="r")
    assert store.entries() == [] and _feedback_records(audit) == []


def test_a_rating_whose_record_cannot_be_written_is_not_kept(world, monkeypatch):
    service, store, audit = world

    def broken(record: dict[str, Any]) -> dict[str, Any]:
        raise AuditWriteError("disk full")

    monkeypatch.setattr(audit, "append", broken)
    with pytest.raises(AuditWriteError):
        service.rate("user:alice", ALICE_ID, "up", None, request_id="r")
    assert store.entries() == []
