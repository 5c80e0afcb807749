"""`clearance report` and `clearance record`: the CLI's adapters over application/report.py
and application/record.py (the routes in api/routes/reports.py call the same use cases)."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path

from application.settings import Settings


def report_command(args: argparse.Namespace, settings: Settings) -> int:
    from application.report import make_report
    from application.report_text import render_report
    from application.services import open_audit, open_catalog, open_feedback

    report = make_report(audit=open_audit(settings), feedback=open_feedback(settings),
                         catalog=open_catalog(settings), sources=settings.sources,
                         settings=settings.report, since=args.since)
    if args.plot:
        from application.report_chart import usage_chart

        try:
            Path(args.plot).write_bytes(usage_chart(report["usage"]["days"]))
        except OSError as exc:
            raise ValueError(f"cannot write the chart to {args.plot}: {exc.strerror or exc}"
                             ) from None
    print(json.dumps(report, indent=2) if args.json else render_report(report).rstrip("\n"))
    if args.plot:
        print(f"chart of daily usage and abstention written to {args.plot}", file=sys.stderr)
    return 0


def record_command(args: argparse.Namespace, settings: Settings) -> int:
    from application.record import make_record
    from application.record_text import render_record
    from application.services import open_audit, open_catalog, open_policy

    record = make_record(settings=settings, policy=open_policy(settings),
                         catalog=open_catalog(settings), audit=open_audit(settings))
    print(json.dumps(record, indent=2) if args.json else render_record(record).rstrip("\n"))
    return 0


def day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a day: write YYYY-MM-DD") from None
