"""Every API request leaves one audit record (issue 14), whatever answered it.

Retrievals, admin actions and refusals write their own records. This middleware, outermost,
writes one for a request under /v1/ that ended with none: a read of admin state, /v1/models, a
400 for a body that is not JSON on an admin route, a 403, a 404, an error. A request counted into
an aggregated refusal record (api/refusals.py: repeated wrong keys) counts as recorded. The record
is written before the client can have the whole response, once its status is known; an audit log
that cannot be written then is logged (and /healthz says so), the response is not changed.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from control.audit import AuditStore, counting_request_records
from control.errors import AuditWriteError

log = logging.getLogger(__name__)

RECORDED_PREFIX = "/v1/"


def request_record(scope: Scope, status: int) -> dict[str, Any]:
    state = scope.get("state") or {}
    outcome = "ok" if status < 400 else "refused" if status < 500 else "failed"
    return {"time": datetime.now(UTC).isoformat(), "request_id": state.get("request_id"),
            "action": "request", "caller": state.get("caller"), "outcome": outcome,
            "method": scope.get("method"), "path": scope.get("path"), "status": status}


class RequestRecords:
    def __init__(self, app: ASGIApp, *, audit: AuditStore) -> None:
        self.app = app
        self.audit = audit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope.get("path", "")).startswith(RECORDED_PREFIX):
            await self.app(scope, receive, send)
            return
        status = 500  # what the client gets if the app raises before it answers

        async def sending(message: Message) -> None:
            # On record before the client can have the whole answer: at the start of one whose
            # length is known (the handler is done by then; its body may come in several
            # parts), else (a stream) before its last part.
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                sized = any(name.lower() == b"content-length"
                            for name, _ in message.get("headers", []))
                if sized and not seqs:
                    self._record(scope, status)
            elif (message["type"] == "http.response.body" and not message.get("more_body")
                  and not seqs):
                self._record(scope, status)
            await send(message)

        with counting_request_records() as seqs:
            try:
                await self.app(scope, receive, sending)
            finally:
                if not seqs:  # the app raised, or the client went away, before the end
                    self._record(scope, status)

    def _record(self, scope: Scope, status: int) -> None:
        try:
            self.audit.append(request_record(scope, status))
        except AuditWriteError as exc:
            log.error("request %s %s (%d) could not be audited: %s", scope.get("method"),
                      scope.get("path"), status, exc)
