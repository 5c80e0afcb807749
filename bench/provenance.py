"""What a benchmark result was measured on: the commit, and any uncommitted product files."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def git_state() -> dict[str, Any]:
    """The commit measured and whether product files (outside bench/) had uncommitted changes."""
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True)
        return done.stdout.rstrip("\n")
    return {"head": git("rev-parse", "--short", "HEAD"),
            "dirty": [line[3:] for line in git("status", "--porcelain").splitlines()
                      if not line[3:].startswith("bench/")]}
