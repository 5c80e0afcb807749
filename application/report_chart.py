"""The report's chart: daily retrievals and the abstention rate, as a PNG (the one importer of
matplotlib, on its Agg backend: no display needed)."""

from __future__ import annotations

import io
from typing import Any


def usage_chart(days: list[dict[str, Any]]) -> bytes:
    """A PNG of retrievals per day (bars) and the chats' abstention rate (line)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    labels = [d["day"] for d in days]
    figure = Figure(figsize=(max(6.0, 0.4 * len(days) + 3), 4.5), dpi=100)
    usage, rate = figure.subplots(2, 1, sharex=True)
    usage.bar(range(len(days)), [d["requests"] for d in days], color="#4a78b0")
    usage.set_ylabel("retrievals")
    usage.set_title("Clearance: daily usage and abstention")
    rates = [None if d["abstention_rate"] is None else 100 * d["abstention_rate"] for d in days]
    rate.plot(range(len(days)), [float("nan") if r is None else r for r in rates],
              marker="o", color="#c0504d")
    rate.set_ylabel("abstained (% of chats)")
    rate.set_ylim(0, 100)
    rate.set_xticks(range(len(days)), labels, rotation=45, ha="right", fontsize=8)
    if not days:
        usage.text(0.5, 0.5, "no retrievals in this period", ha="center",
                   transform=usage.transAxes)
    figure.tight_layout()
    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()
