"""A seeded audit log for the report tests: events chosen here, written as the service writes
its records (a real signed AuditLog), and the figures the report should give computed from the
events themselves, not from the report's code."""

from __future__ import annotations

import hashlib
import random
import statistics
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from control.audit import AuditStore

TENANT_OF = {"alice": "default", "bob": "default", "dave": "default", "omar": "acme"}
SOURCES = ("handbook", "hr", "engineering")


@dataclass(frozen=True)
class Retrieval:
    day: date
    user: str
    action: str  # search or chat
    outcome: str  # ok, empty, abstain
    sources: tuple[str, ...]  # one result per entry
    query: str
    request_id: str
    dropped: int = 0


@dataclass
class World:
    today: date
    retrievals: list[Retrieval] = field(default_factory=list)
    refusals: list[tuple[date, str, int]] = field(default_factory=list)  # day, subject, count

    def expected_days(self) -> dict[str, tuple[int, int, int]]:
        days: dict[str, list[int]] = {}
        for r in self.retrievals:
            row = days.setdefault(r.day.isoformat(), [0, 0, 0])
            row[0] += 1
            row[1] += r.action == "chat"
            row[2] += r.action == "chat" and r.outcome == "abstain"
        return {d: (a, b, c) for d, (a, b, c) in days.items()}

    def refusals_by_subject(self) -> Counter[str]:
        counts: Counter[str] = Counter()
        for _, subject, n in self.refusals:
            counts[subject] += n
        return counts

    def rising(self, factor: float, minimum: int, history: int) -> set[str]:
        out = set()
        for subject in {s for _, s, _ in self.refusals}:
            per = Counter()
            for d, s, n in self.refusals:
                if s == subject:
                    per[d] += n
            before = [per[self.today - timedelta(days=i)] for i in range(1, history + 1)]
            if per[self.today] >= minimum and per[self.today] > factor * statistics.median(before):
                out.add(subject)
        return out


def fingerprint(query: str) -> str:
    """Stands in for the redactor's keyed hash: the report only groups by it."""
    return hashlib.sha256(query.encode("utf-8")).hexdigest()


def _stamp(day: date, n: int) -> str:
    return datetime(day.year, day.month, day.day, 9, 0, n % 60, tzinfo=UTC).isoformat()


def _principals(user: str) -> list[str]:
    tenant = TENANT_OF[user]
    prefix = "" if tenant == "default" else f"{tenant}/"
    return [f"{prefix}user:{user}", f"{prefix}group:staff"]


def seed(audit: AuditStore, today: date, rng: random.Random) -> World:
    """Chats and searches over the last ten days, three abstained questions (one asked by two
    callers, one by one), refusals with one caller rising sharply today, and hits dropped."""
    world = World(today)
    n = 0
    for back in range(10):
        day = today - timedelta(days=back)
        for _ in range(rng.randint(2, 6)):
            n += 1
            user = rng.choice(sorted(TENANT_OF))
            action = rng.choice(("search", "chat"))
            sources = tuple(rng.choice(SOURCES) for _ in range(rng.randint(0, 3)))
            outcome = "ok" if sources else "abstain" if action == "chat" else "empty"
            world.retrievals.append(Retrieval(day, user, action, outcome, sources,
                                              f"question {n}", f"{n:032x}"))
    gaps = [("alice", "Where is the parking policy?"), ("bob", "Where is the parking policy?"),
            ("alice", "Where is the parking policy?"), ("dave", "Salary of [EMAIL]?")]
    for user, question in gaps:
        n += 1
        world.retrievals.append(Retrieval(today, user, "chat", "abstain", ("handbook",),
                                          question, f"{n:032x}"))
    n += 1
    world.retrievals.append(Retrieval(today, "dave", "search", "ok", ("hr",), "pay",
                                      f"{n:032x}", dropped=2))
    for back in range(1, 29):  # mallory: one refusal a day for four weeks, then twelve today
        world.refusals.append((today - timedelta(days=back), "user:mallory", 1))
    world.refusals += [(today, "user:mallory", 12), (today, "user:bob", 4),
                       (today, "address:10.0.0.9", 7)]
    for i, r in enumerate(world.retrievals):
        audit.append(_record(r, i))
    for i, (day, subject, count) in enumerate(world.refusals):
        audit.append(_refusal(day, subject, count, i))
    return world


def _record(r: Retrieval, i: int) -> dict[str, Any]:
    results = [{"chunk_id": f"c{i}-{k}", "doc_id": f"{s}:doc{k}.md", "doc_version": f"v{k}",
                "score": 0.5} for k, s in enumerate(r.sources)]
    record: dict[str, Any] = {
        "time": _stamp(r.day, i), "request_id": r.request_id, "action": r.action,
        "caller": f"user:{r.user}", "principals": _principals(r.user), "denied": [],
        "policy_version": "p", "query": r.query, "query_hmac": fingerprint(r.query),
        "index_version": "v1", "ranking": "hybrid-dbsf", "results": results,
        "dropped": r.dropped, "outcome": r.outcome}
    if r.action == "chat":
        record["mode"] = "abstain" if r.outcome == "abstain" else "extractive"
        record["cited"] = [h["chunk_id"] for h in results[:1]] if r.outcome == "ok" else []
    return record


def _refusal(day: date, subject: str, count: int, i: int) -> dict[str, Any]:
    if subject.startswith("address:"):
        return {"action": "refusals", "request_id": None, "caller": None,
                "address": subject.removeprefix("address:"), "count": count,
                "window_start": _stamp(day, i), "last_at": _stamp(day, i), "reason": "n"}
    return {"time": _stamp(day, i), "request_id": f"refused-{i}", "action": "request",
            "caller": subject, "outcome": "refused",
            "method": "GET", "path": "/v1/admin/keys", "status": 403} if count == 1 else {
        "action": "refusals", "request_id": None, "caller": subject, "address": "10.0.0.1",
        "count": count, "window_start": _stamp(day, i), "last_at": _stamp(day, i),
        "reason": "n"}
