"""Rating an answer: only by whoever asked for it; kept in the control plane and audited.

The request id rated is the `request_id` of a `/v1/chat` response, or the `id` of a
`/v1/chat/completions` one (`chatcmpl-<request id>`). Who asked is read from the audit log: the
chat record of that id names its caller. Any other caller, and an id with no answered chat, get
the same NotFound with the same message (no way to learn that someone else's request exists);
the audit log alone tells the two apart (`reason`), for the report's unusual access.

Comments are free text from the caller: they are stored and audited redacted (answers/
redaction.py), like queries. A second rating of the same answer replaces the first
(control/feedback.py).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

from answers.redaction import Redactor
from application.errors import Invalid, NotFound
from control.audit import FAILED, AuditStore
from control.feedback import RATINGS, Feedback, FeedbackStore, Rating

COMPLETION_PREFIX = "chatcmpl-"
MAX_COMMENT_CHARS = 2000
# One message for every id the caller may not rate: unknown, failed, or someone else's.
NOT_YOURS = ("no answer of yours has that request id: rate the request_id of a /v1/chat "
             "response, or the id of a /v1/chat/completions one, that you asked")
ANSWERED = ("ok", "abstain")


def asker(records: list[dict[str, Any]]) -> str | None:
    """Who was answered under a request id (its records, oldest first): the caller of its chat
    record, unless a later record says the request failed; None if nobody was."""
    chats = [r for r in records if r.get("action") == "chat" and r.get("outcome") in ANSWERED]
    if not chats or any(r.get("outcome") == FAILED for r in records):
        return None
    caller = chats[0].get("caller")
    return caller if isinstance(caller, str) else None


class FeedbackService:
    """The rating use case (see the module docstring)."""

    def __init__(self, store: FeedbackStore, audit: AuditStore, redactor: Redactor) -> None:
        self.store = store
        self._audit = audit
        self._redactor = redactor

    def rate(self, caller: str, rated: str, rating: str, comment: str | None = None, *,
             request_id: str | None) -> Feedback:
        """Keep `caller`'s rating of the answer `rated`; NotFound unless they asked for it,
        Invalid for a rating other than up or down or a comment over MAX_COMMENT_CHARS."""
        if rating not in RATINGS:
            raise Invalid(f"rating must be 'up' or 'down', not {rating!r}")
        comment = (comment or "").strip() or None
        if comment is not None and len(comment) > MAX_COMMENT_CHARS:
            raise Invalid(f"comment: at most {MAX_COMMENT_CHARS} characters")
        rated = rated.removeprefix(COMPLETION_PREFIX)
        now = datetime.now(UTC).isoformat()
        base = {"time": now, "request_id": request_id, "action": "feedback", "caller": caller,
                "rated_request": rated, "rating": rating}
        owner = asker(self._audit.request_records(rated))
        if owner != caller:
            reason = "no answered chat has that id" if owner is None else (
                "the answer was another caller's")
            self._audit.append({**base, "outcome": "refused", "reason": reason})
            raise NotFound(NOT_YOURS)
        redacted = self._redactor.redact(comment) if comment is not None else None
        text = redacted.text if redacted is not None else None
        record = {**base, "outcome": "ok", "comment": text,
                  **({"redacted": dict(redacted.counts)} if redacted and redacted.counts
                     else {})}

        def audited() -> None:
            self._audit.append(record)

        return self.store.put(Feedback(rated, caller, cast(Rating, rating), text, now), audited)
