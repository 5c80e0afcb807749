"""Ratings of answers (`POST /v1/feedback`): one per answered request, the last rating kept.

Kept like the other control-plane state: by default one JSON document under data_dir
(`feedback.json`, changed under the state files' cross-process lock), or with `database_url`
rows of the `feedback` table (migration 2). Both take the same calls: `put` writes one rating
and runs `before_commit` (its audit record) before the change is in place, so a rating whose
record cannot be written is not kept; `entries` lists them for the report.

Re-rating replaces: a second rating of the same request overwrites rating, comment and time,
and `ratings` counts how many were given (each one is on the audit log).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import psycopg

from control.errors import StateUnreadable, StateWriteError
from control.postgres import Database
from control.state_file import JsonStateFile

Rating = Literal["up", "down"]
RATINGS: tuple[Rating, ...] = ("up", "down")


@dataclass(frozen=True)
class Feedback:
    """One answer's rating: the request rated, who rated it (who asked), and when."""

    request_id: str
    caller: str
    rating: Rating
    comment: str | None
    at: str  # ISO 8601, UTC
    ratings: int = 1  # how many times it was rated; the last one is kept


class FeedbackStore(Protocol):
    where: str

    def put(self, entry: Feedback, before_commit: Callable[[], None]) -> Feedback:
        """Keep `entry` (replacing an earlier rating of its request); the entry as kept.
        StateWriteError if it cannot be written; nothing changes if `before_commit` raises."""
        ...

    def entries(self) -> list[Feedback]:
        """Every rating, oldest first."""
        ...


def _entry(raw: dict[str, Any]) -> Feedback:
    if raw.get("rating") not in RATINGS:
        raise ValueError(f"rating {raw.get('rating')!r} is not up or down")
    return Feedback(str(raw["request_id"]), str(raw["caller"]), raw["rating"],
                    None if raw.get("comment") is None else str(raw["comment"]),
                    str(raw["at"]), int(raw.get("ratings", 1)))


def _parse(raw: Any) -> dict[str, Feedback]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ValueError("not a JSON object of request id → rating")
    return {key: _entry(value) for key, value in raw.items()}


class FileFeedback:
    """Ratings in one JSON file (see the module docstring)."""

    def __init__(self, path: Path) -> None:
        self._file = JsonStateFile(
            Path(path), parse=_parse, dump=lambda v: {k: asdict(e) for k, e in v.items()},
            unreadable=lambda where, exc: StateUnreadable(
                f"feedback file {where} is unreadable ({exc}); restore it from a backup"),
            what="feedback file", mode=0o600)
        self.where = self._file.where

    def put(self, entry: Feedback, before_commit: Callable[[], None]) -> Feedback:
        with self._file.change(before_commit) as change:
            earlier = change.value.get(entry.request_id)
            kept = Feedback(**{**asdict(entry),
                               "ratings": (earlier.ratings + 1) if earlier else 1})
            change.value = {**change.value, entry.request_id: kept}
        return kept

    def entries(self) -> list[Feedback]:
        return sorted(self._file.current()[1].values(), key=lambda e: e.at)


class PgFeedback:
    """Ratings as rows of the control-plane database's `feedback` table."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.where = f"(feedback in {db.where})"

    def put(self, entry: Feedback, before_commit: Callable[[], None]) -> Feedback:
        try:
            with self.db.transaction() as conn:
                row = conn.execute(
                    "INSERT INTO feedback (request_id, caller, rating, comment, rated_at) "
                    "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (request_id) DO UPDATE SET "
                    "rating = excluded.rating, comment = excluded.comment, "
                    "rated_at = excluded.rated_at, ratings = feedback.ratings + 1 "
                    "RETURNING ratings",
                    (entry.request_id, entry.caller, entry.rating, entry.comment, entry.at),
                ).fetchone()
                before_commit()  # the audit record; if it fails, the rating rolls back
        except psycopg.Error as exc:
            raise StateWriteError(f"cannot write the rating {self.where}: {exc}",
                                  full=False) from exc
        return Feedback(**{**asdict(entry), "ratings": int(row[0]) if row else 1})

    def entries(self) -> list[Feedback]:
        try:
            with self.db.connection() as conn:
                rows = conn.execute(
                    "SELECT request_id, caller, rating, comment, rated_at, ratings "
                    "FROM feedback ORDER BY rated_at, request_id").fetchall()
        except psycopg.Error as exc:
            raise StateUnreadable(f"ratings {self.where} cannot be read: {exc}") from exc
        return [Feedback(r[0], r[1], r[2], r[3], r[4].isoformat(), int(r[5])) for r in rows]
