"""The integration record (application/record.py) as Markdown."""

from __future__ import annotations

from typing import Any


def _cell(value: object) -> str:
    return "-" if value in (None, "", []) else str(value).replace("|", "\\|")


def render_record(record: dict[str, Any]) -> str:
    out = ["# Integration record", "",
           f"Config {record['config']}; index version {record['index_version'] or '(none yet)'}"
           f"; policy version {record['policy_version']}.", "", "## Sources", "",
           "| source | path | owner | tenant | documents | last ingested | read by |",
           "|---|---|---|---|---|---|---|"]
    for s in record["sources"]:
        acl = "; ".join(f"{r['glob']}: {' '.join(r['allow'])}" for r in s["acl"])
        out.append(f"| {s['name']} | {_cell(s['path'])} | {_cell(s['owner'])} | {s['tenant']} "
                   f"| {s['documents']} | {_cell(s['last_ingested'])} | {_cell(acl)} |")
    out += ["", "## Admin actions and who holds them", "",
            "Granted by: " + ("; ".join(f"`{line}`" for line in record["roles"]) or "(no rules)"),
            "", "| permission | what | holders |", "|---|---|---|"]
    for a in record["admin"]:
        out.append(f"| {a['resource']} {a['action']} | {a['what']} | "
                   f"{_cell(', '.join(a['holders']))} |")
    out += ["", "## What leaves the boundary", "", f"Answers: {record['answers']}.", ""]
    if record["outbound"]:
        out += ["| to | endpoint | model | what is sent |", "|---|---|---|---|"]
        out += [f"| {o['what']} | {_cell(o['endpoint'])} | {_cell(o['model'])} | {o['sends']} |"
                for o in record["outbound"]]
    else:
        out.append("Nothing: no LLM, identity provider, Qdrant server or database is configured.")
    r = record["redaction"]
    kinds = ", ".join([*r["kinds"], *r["custom"]]) if r["enabled"] else "nothing (off)"
    out += ["", f"Personal data redacted: {kinds}; in {r['applies_to']}.", "",
            "## Audit", "", f"Log: {record['audit']['log']}; signing key: "
            f"{record['audit']['key']}.", "",
            "## Who may pause", "", ", ".join(record["may_pause"]) or "nobody", ""]
    return "\n".join(out)
