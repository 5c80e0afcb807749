"""The report (application/report.py) as Markdown, for the terminal and for pasting."""

from __future__ import annotations

from typing import Any


def _pct(rate: float | None) -> str:
    return "-" if rate is None else f"{rate * 100:.1f}%"


def _table(head: list[str], rows: list[list[object]]) -> list[str]:
    if not rows:
        return ["(none)", ""]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join("-" if c is None else str(c) for c in row) + " |"
              for row in rows]
    return [*lines, ""]


def render_report(report: dict[str, Any]) -> str:
    usage, answers, unusual = report["usage"], report["answers"], report["unusual_access"]
    t = report["thresholds"]
    out = [f"# Clearance report, {report['generated_at']}", "",
           f"From {report['since'] or 'the first record'}: {report['records']} audit records "
           f"of {report['audit_log']}.", "", "## Usage by day", ""]
    out += _table(["day", "retrievals", "chats", "abstained", "abstention"],
                  [[d["day"], d["requests"], d["chats"], d["abstained"],
                    _pct(d["abstention_rate"])] for d in usage["days"]])
    out += ["## Usage by tenant (of the caller)", ""]
    out += _table(["tenant", "retrievals"], [[k, v] for k, v in usage["by_tenant"].items()])
    out += ["## Usage by source (retrievals that returned its documents)", ""]
    out += _table(["source", "retrievals", "results"],
                  [[k, v["requests"], v["results"]] for k, v in usage["by_source"].items()])
    ratings = answers["ratings"]
    out += ["## Answers", "", f"{answers['chats']} chats, abstention rate "
            f"{_pct(answers['abstention_rate'])}; rated up {ratings['up']}, down "
            f"{ratings['down']}.", ""]
    out += _table(["mode", "chats"], [[k, v] for k, v in answers["modes"].items()])
    out += ["## Content gaps: questions abstained most", "",
            "Text as the audit log keeps it (personal data redacted); a question asked by "
            f"fewer than {t['gap_min_askers']} callers is shown by its keyed hash only.", ""]
    out += _table(["asked", "callers", "question", "nearest sources", "owners"],
                  [[g["asked"], g["askers"], g["question"] or f"(hash {g['query_hmac']})",
                    ", ".join(g["nearest_sources"]) or "-", ", ".join(g["owners"]) or "-"]
                   for g in report["content_gaps"]])
    out += ["## Answers rated down", ""]
    out += _table(["rated", "request", "mode", "question", "cited", "comment"],
                  [[d["rated_at"][:19], d["request_id"], d["mode"], d["question"],
                    ", ".join(c["doc_id"] for c in d["cited"]) or "-", d["comment"]]
                   for d in report["down_rated"]])
    out += ["## Unusual access", "", "Most refusals:", ""]
    out += _table(["caller", "refusals"],
                  [[r["caller"], r["refusals"]] for r in unusual["most_refused"]])
    out += ["Hits dropped by the permission re-check (the filter let through what the caller "
            "may not read):", ""]
    out += _table(["caller", "hits dropped", "requests"],
                  [[r["caller"], r["dropped"], r["requests"]] for r in unusual["denied_hits"]])
    out += [f"Sudden rise: refusals today at least {t['rise_min']} and over "
            f"{t['rise_factor']:g} x the caller's daily median of the {t['history_days']} days "
            "before:", ""]
    out += _table(["caller", "today", "median"],
                  [[r["caller"], r["today"], r["median"]] for r in unusual["rises"]])
    out += [f"## Sources (stale: newest file changed over {t['stale_after_days']} days ago)",
            ""]
    out += _table(["source", "owner", "tenant", "documents", "newest change", "last ingested",
                   "stale"],
                  [[s["name"], s["owner"], s["tenant"], s["documents"], s["newest_modified"],
                    s["last_ingested"], "STALE" if s["stale"] else "no"]
                   for s in report["sources"]])
    return "\n".join(out).rstrip() + "\n"
