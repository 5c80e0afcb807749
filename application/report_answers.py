"""The report's figures about answers: content gaps (questions abstained) and down-rated answers.

Pure functions over audit records and ratings. What is shown of a question is the audit log's
own text of it, which is redacted before it is written (answers/redaction.py: e-mail addresses,
phone, card and IBAN numbers, custom patterns); who asked is never shown, only how many asked.
A question asked by fewer than `min_askers` different callers is shown by its keyed hash only,
so an owner cannot read what one person asked, however it was worded.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from typing import Any

from application.report_figures import retrievals, sources_of
from control.feedback import Feedback


def content_gaps(records: list[dict[str, Any]], owners: Mapping[str, str], *, top: int,
                 min_askers: int) -> list[dict[str, Any]]:
    """The questions abstained most often: how often, by how many callers, the sources nearest
    to them (whose owners could fill the gap), and their redacted text when enough asked."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in retrievals(records):
        if r["action"] == "chat" and r["outcome"] == "abstain":
            groups[str(r.get("query_hmac") or r.get("query"))].append(r)
    rows: list[dict[str, Any]] = []
    for key, asked in groups.items():
        askers = len({r.get("caller") for r in asked})
        nearest = Counter(s for r in asked for s in sources_of(r))
        rows.append({
            "question": asked[-1].get("query") if askers >= min_askers else None,
            "query_hmac": key[:16],
            "asked": len(asked),
            "askers": askers,
            "last_asked": asked[-1].get("time"),
            "nearest_sources": sorted(nearest),
            "owners": sorted({owners.get(s, "(no owner declared)") for s in nearest}),
        })
    rows.sort(key=lambda g: (-int(g["asked"]), -int(g["askers"]), str(g["query_hmac"])))
    return rows[:top]


def cited_documents(record: dict[str, Any]) -> list[dict[str, str]]:
    """The documents (id and version) an answer cited, in the order it returned them."""
    cited = set(record.get("cited") or [])
    seen: dict[tuple[str, str], None] = {}
    for hit in record.get("results") or []:
        if isinstance(hit, dict) and hit.get("chunk_id") in cited:
            seen[(str(hit.get("doc_id")), str(hit.get("doc_version")))] = None
    return [{"doc_id": d, "doc_version": v} for d, v in seen]


def down_rated(records: list[dict[str, Any]], ratings: list[Feedback], *, top: int
               ) -> list[dict[str, Any]]:
    """Answers rated down, newest first: the question (redacted), the answer's mode, the
    documents it cited and the comment (redacted when it was stored)."""
    chats = {r.get("request_id"): r for r in retrievals(records) if r["action"] == "chat"}
    rows = []
    for entry in sorted(ratings, key=lambda e: e.at, reverse=True):
        chat = chats.get(entry.request_id)
        if entry.rating != "down" or chat is None:
            continue
        rows.append({"request_id": entry.request_id, "rated_at": entry.at,
                     "asked_at": chat.get("time"), "question": chat.get("query"),
                     "mode": chat.get("mode"), "cited": cited_documents(chat),
                     "comment": entry.comment})
    return rows[:top]


def rating_counts(records: list[dict[str, Any]], ratings: list[Feedback]) -> dict[str, int]:
    """Ratings of the answers in `records`, up and down (the last rating of each counts)."""
    asked = {r.get("request_id") for r in retrievals(records) if r["action"] == "chat"}
    counts = Counter(e.rating for e in ratings if e.request_id in asked)
    return {"up": counts["up"], "down": counts["down"]}
