"""The figures of `clearance report`, counted from audit records: pure functions, no I/O.

Each takes the records (dicts as the audit log holds them, oldest first) and returns plain
JSON-able values. What counts as what:

- a *retrieval* is a record of action search, chat, fetch, or the source viewer's view or
  download, that was answered (outcome ok, empty or abstain); its *sources* are those of the
  documents it returned, its *tenants* those of the caller's principals (a caller in two
  tenants counts in both);
- a *refusal* is a record with outcome refused (1), or an aggregated `refusals` record (its
  `count`); its subject is the caller, or `address:IP` when there was no caller;
- *denied-document hits* are hits the permission re-check dropped (`dropped`): the search
  filter let through something the caller may not read, which should never happen;
- a *rise* is a caller whose refusals on the last day are at least `minimum` and more than
  `factor` times the median of their daily refusals over the `history_days` before it (days
  without refusals count as 0).
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import date, timedelta
from typing import Any

from policies.principals import split_token

RETRIEVALS = ("search", "chat", "fetch", "view", "download")
ANSWERED = ("ok", "empty", "abstain")


def record_day(record: dict[str, Any]) -> str | None:
    """The UTC day (YYYY-MM-DD) of a record; aggregated refusals have no `time` of their own."""
    stamp = record.get("time") or record.get("last_at") or record.get("window_start")
    return stamp[:10] if isinstance(stamp, str) and len(stamp) >= 10 else None


def retrievals(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records
            if r.get("action") in RETRIEVALS and r.get("outcome") in ANSWERED]


def sources_of(record: dict[str, Any]) -> set[str]:
    return {str(h["doc_id"]).split(":", 1)[0] for h in record.get("results") or []
            if isinstance(h, dict) and isinstance(h.get("doc_id"), str)}


def tenants_of(record: dict[str, Any]) -> set[str]:
    return {split_token(p)[0] for p in record.get("principals") or [] if isinstance(p, str)}


def daily(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per day: retrievals, chats answered, chats abstained and the abstention rate."""
    days: dict[str, Counter[str]] = defaultdict(Counter)
    for r in retrievals(records):
        day = record_day(r)
        if day is None:
            continue
        days[day]["requests"] += 1
        if r["action"] == "chat":
            days[day]["chats"] += 1
            days[day]["abstained"] += r["outcome"] == "abstain"
    return [{"day": day, "requests": c["requests"], "chats": c["chats"],
             "abstained": c["abstained"], "abstention_rate": _rate(c["abstained"], c["chats"])}
            for day, c in sorted(days.items())]


def by_tenant(records: list[dict[str, Any]]) -> dict[str, int]:
    counts: Counter[str] = Counter()
    for r in retrievals(records):
        counts.update(tenants_of(r))
    return dict(sorted(counts.items()))


def by_source(records: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Per source: the retrievals that returned any of its documents, and how many results."""
    requests: Counter[str] = Counter()
    results: Counter[str] = Counter()
    for r in retrievals(records):
        requests.update(sources_of(r))
        results.update(str(h["doc_id"]).split(":", 1)[0] for h in r.get("results") or []
                       if isinstance(h, dict) and isinstance(h.get("doc_id"), str))
    return {s: {"requests": requests[s], "results": results[s]} for s in sorted(requests)}


def answer_modes(records: list[dict[str, Any]]) -> dict[str, Any]:
    chats = [r for r in retrievals(records) if r["action"] == "chat"]
    modes = Counter(str(r.get("mode")) for r in chats)
    return {"chats": len(chats), "modes": dict(sorted(modes.items())),
            "abstention_rate": _rate(modes["abstain"], len(chats))}


def refusals(records: Iterable[dict[str, Any]]) -> list[tuple[str, str | None, int]]:
    """(subject, day, how many) of each refusal record."""
    out = []
    for r in records:
        count = (int(r.get("count") or 0) if r.get("action") == "refusals"
                 else int(r.get("outcome") == "refused"))
        if count:
            subject = r.get("caller") or f"address:{r.get('address') or 'unknown'}"
            out.append((str(subject), record_day(r), count))
    return out


def most_refused(records: list[dict[str, Any]], top: int) -> list[dict[str, Any]]:
    counts: Counter[str] = Counter()
    for subject, _, n in refusals(records):
        counts[subject] += n
    return [{"caller": c, "refusals": n} for c, n in _top(counts, top)]


def denied_hits(records: list[dict[str, Any]], top: int) -> list[dict[str, Any]]:
    dropped: Counter[str] = Counter()
    requests: Counter[str] = Counter()
    for r in records:
        n = r.get("dropped")
        if isinstance(n, int) and n > 0 and isinstance(r.get("caller"), str):
            dropped[r["caller"]] += n
            requests[r["caller"]] += 1
    return [{"caller": c, "dropped": n, "requests": requests[c]} for c, n in _top(dropped, top)]


def rises(records: list[dict[str, Any]], today: date, *, factor: float, minimum: int,
          history_days: int) -> list[dict[str, Any]]:
    """Callers whose refusals on `today` rose sharply against their own history (see the
    module docstring)."""
    per: dict[str, Counter[str]] = defaultdict(Counter)
    for subject, day, n in refusals(records):
        if day is not None:
            per[subject][day] += n
    history = [(today - timedelta(days=i)).isoformat() for i in range(1, history_days + 1)]
    found = []
    for subject, days in per.items():
        now = days[today.isoformat()]
        median = statistics.median(days[d] for d in history)
        if now >= minimum and now > factor * median:
            found.append({"caller": subject, "today": now, "median": median,
                          "history_days": history_days})
    return sorted(found, key=lambda f: (-f["today"], f["caller"]))


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _top(counts: Counter[str], top: int) -> list[tuple[str, int]]:
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
