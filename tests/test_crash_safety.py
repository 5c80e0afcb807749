"""Builds killed with SIGKILL leave the served index whole, and the next build cleans up.

Three real kills of `clearance ingest` at seeded random points of a build, with the functions of
bench/kill_build.py (which does twenty, up to and past the switch). To keep this under a minute
on two cores, each build re-embeds one document only (the others are reused from the current
version) and the kills fall between the start and the switch, so each one really kills.
"""

from __future__ import annotations

from pathlib import Path

from bench.kill_build import Kill, delays, final_build, one_kill, prepare, print_table

SEED = 11
KILLS = 3


def test_killed_builds_leave_the_index_whole_and_the_next_build_cleans_up(tmp_path: Path):
    campaign, timeline, _ = prepare(tmp_path / "deployment", toggle=["handbook/welcome.md"])
    until = timeline.seen.get("switched", timeline.seen["exited"])
    kills: list[Kill] = []
    previous: list[str] = []
    for trial, delay_s in enumerate(delays(until, KILLS, SEED), start=1):
        kill = one_kill(campaign, trial, delay_s=delay_s, previous_leftovers=previous)
        kills.append(kill)
        previous = kill.leftovers
    table: list[str] = [f"timeline (s): {timeline.seen}"]
    print_table(kills, out=table.append)
    report = "\n".join(table)
    assert all(k.ok for k in kills), report
    assert any(k.phase != "exited" for k in kills), report  # at least one build really died

    left, problems = final_build(campaign)
    assert problems == [], report
    assert left == [], report  # no .building- directory, lock or temp file after a full build
