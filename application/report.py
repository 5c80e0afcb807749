"""`clearance report` and `GET /v1/admin/report`: how the service is used, from the audit log.

One use case for the CLI and the route. It reads every committed audit record and every rating
once, keeps those from `since` (a UTC day) on, and counts (application/report_figures.py,
application/report_answers.py): usage by day, tenant and source; answer modes and the
abstention rate; the questions abstained most (content gaps, redacted); answers rated down with
the documents they cited; unusual access (most refusals, denied-document hits, a sudden rise
against the caller's own history, which uses the days before `since` too); and stale sources
from the current index version. A part that cannot be read (the audit log, the ratings, the
index) fails the whole report: no figure is given from part of the data.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from application import report_answers as answers
from application import report_figures as figures
from application.settings import ReportSettings
from application.source_facts import source_facts
from control.audit import AuditStore
from control.feedback import FeedbackStore
from ingest.settings import SourceSettings
from retrieval.versions import VersionCatalog


def make_report(*, audit: AuditStore, feedback: FeedbackStore, catalog: VersionCatalog,
                sources: Sequence[SourceSettings], settings: ReportSettings,
                since: date | None = None, now: datetime | None = None) -> dict[str, Any]:
    """The report as JSON-able data (see the module docstring)."""
    now = now or datetime.now(UTC)
    every = list(audit.records())
    start = since.isoformat() if since else None
    records = [r for r in every if start is None or (figures.record_day(r) or "") >= start]
    ratings = [e for e in feedback.entries() if start is None or e.at[:10] >= start]
    owners = {s.name: s.owner for s in sources}
    top = settings.top
    return {
        "generated_at": now.isoformat(timespec="seconds"),
        "since": start,
        "audit_log": audit.describe(),
        "records": len(records),
        "usage": {"days": figures.daily(records), "by_tenant": figures.by_tenant(records),
                  "by_source": figures.by_source(records)},
        "answers": {**figures.answer_modes(records),
                    "ratings": answers.rating_counts(records, ratings)},
        "content_gaps": answers.content_gaps(records, owners, top=top,
                                             min_askers=settings.gap_min_askers),
        "down_rated": answers.down_rated(records, ratings, top=top),
        "unusual_access": {
            "most_refused": figures.most_refused(records, top),
            "denied_hits": figures.denied_hits(records, top),
            "rises": figures.rises(every, now.date(), factor=settings.rise_factor,
                                   minimum=settings.rise_min,
                                   history_days=settings.history_days),
        },
        "sources": stale_sources(catalog, sources, now, settings.stale_after_days),
        "thresholds": settings.model_dump(),
    }


def stale_sources(catalog: VersionCatalog, sources: Sequence[SourceSettings], now: datetime,
                  stale_after_days: int) -> list[dict[str, Any]]:
    """Each declared source in the current version: documents, newest change, last ingest, and
    whether it is stale (its newest file changed over `stale_after_days` ago, or it has no
    documents in the index)."""
    version, facts = source_facts(catalog)
    cutoff = (now - timedelta(days=stale_after_days)).isoformat()
    rows = []
    for source in sources:
        fact = facts.get(source.name)
        newest = fact.newest_modified if fact else None
        rows.append({"name": source.name, "owner": source.owner, "tenant": source.tenant,
                     "index_version": version, "documents": fact.documents if fact else 0,
                     "newest_modified": newest,
                     "last_ingested": fact.last_ingested if fact else None,
                     "stale": newest is None or newest < cutoff})
    return rows
