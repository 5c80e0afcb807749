"""The report reads the same figures from both control-plane backends: the file audit log and
ratings file, and the audit chain and feedback table of a real PostgreSQL."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from answers.redaction import Redactor
from answers.settings import RedactionSettings
from application.feedback import FeedbackService
from application.report import make_report
from application.settings import ReportSettings
from control.audit import AuditLog, AuditStore
from control.feedback import FeedbackStore, FileFeedback, PgFeedback
from control.pg_audit import PgAuditLog
from control.postgres import Database
from ingest.settings import SourceSettings
from retrieval.edge_store import EdgeBackend
from retrieval.versions import VersionCatalog
from tests.report_world import seed


@pytest.fixture(params=["files", "postgres"])
def stores(request: pytest.FixtureRequest, tmp_path: Path
           ) -> Iterator[tuple[AuditStore, FeedbackStore]]:
    key = tmp_path / "audit.key"
    if request.param == "files":
        yield AuditLog(tmp_path / "audit.jsonl", key), FileFeedback(tmp_path / "feedback.json")
        return
    db = Database(request.getfixturevalue("database_url"), max_size=2)
    yield PgAuditLog(db, key), PgFeedback(db)
    db.close()


def test_the_report_counts_the_seeded_log_on_either_backend(stores, tmp_path: Path):
    audit, feedback = stores
    today = datetime.now(UTC).date()
    world = seed(audit, today, random.Random(5))
    chat = next(r for r in world.retrievals if r.action == "chat" and r.outcome == "ok")
    FeedbackService(feedback, audit, Redactor(RedactionSettings(), tmp_path / "r.key")).rate(
        f"user:{chat.user}", chat.request_id, "down", "no", request_id="f")
    catalog = VersionCatalog(tmp_path / "versions", EdgeBackend(tmp_path / "index"))
    source = SourceSettings(name="handbook", path=tmp_path, owner="people-ops")
    report = make_report(audit=audit, feedback=feedback, catalog=catalog, sources=[source],
                         settings=ReportSettings(), now=datetime.now(UTC))
    days = {d["day"]: (d["requests"], d["chats"], d["abstained"])
            for d in report["usage"]["days"]}
    assert days == world.expected_days()
    assert [d["request_id"] for d in report["down_rated"]] == [chat.request_id]
    assert {r["caller"] for r in report["unusual_access"]["rises"]} == world.rising(3.0, 5, 28)
    # Nothing is indexed yet: the source is listed, with no documents, as stale.
    assert report["sources"] == [{"name": "handbook", "owner": "people-ops",
                                  "tenant": "default", "index_version": None, "documents": 0,
                                  "newest_modified": None, "last_ingested": None,
                                  "stale": True}]
