"""Every response a browser context receives, so a test can say a string reached none of them.

Each response is kept with its URL, status, every header (Set-Cookie too) and its body, read
when the request finishes: JSON, HTML, scripts and event streams alike (an event stream's body
is whole once the server ends it). Chromium keeps no body for a redirect, so a redirect is
kept by its status and headers, Location among them. A request that failed is kept with why.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from playwright.sync_api import BrowserContext, Request, Response


@dataclass
class Seen:
    """One response (or a request that got none: status 0)."""

    url: str
    status: int
    headers: dict[str, str]
    body: bytes | None = None
    note: str = "pending"  # why there is no body: "pending", "redirect" or the failure

    @property
    def text(self) -> str:
        return (self.body or b"").decode("utf-8", errors="replace")

    def holds(self, needle: str) -> bool:
        header_text = "\n".join(f"{k}: {v}" for k, v in self.headers.items())
        return any(needle in part for part in (self.url, header_text, self.text))


class NetworkLog:
    """Records the responses of `context` from now on; create it before the page navigates."""

    def __init__(self, context: BrowserContext) -> None:
        self._context = context
        self.entries: list[Seen] = []
        self._open: dict[Request, Seen] = {}
        context.on("response", self._response)
        context.on("requestfinished", self._finished)
        context.on("requestfailed", self._failed)

    def _response(self, response: Response) -> None:
        # Kept before asking for the headers: while Playwright fetches them it may deliver
        # the request's end already.
        seen = Seen(response.url, response.status, dict(response.headers))
        self.entries.append(seen)
        self._open[response.request] = seen
        seen.headers = response.all_headers()  # with Set-Cookie, which .headers leaves out

    def _finished(self, request: Request) -> None:
        seen = self._open.get(request)
        if seen is None:
            return
        if 300 <= seen.status < 400:
            seen.note = "redirect"  # Chromium keeps no body of a 3xx
        else:
            response = request.response()
            try:
                seen.body, seen.note = ((response.body(), "") if response
                                        else (None, "no response"))
            except Exception as exc:  # the body went before it could be read
                seen.note = f"body not readable: {exc}"
        del self._open[request]  # only now: settle() waits for the body read above

    def _failed(self, request: Request) -> None:
        seen = self._open.pop(request, None)
        if seen is None:
            seen = Seen(request.url, 0, {})
            self.entries.append(seen)
        seen.note = f"failed: {request.failure}"

    def settle(self, timeout_s: float = 10.0) -> None:
        """Wait until every response seen so far has been read to its end. Call it before a
        page of the context navigates: Chromium drops a page's response bodies when it leaves
        the page, and one not read by then is reported unread (never taken as clean)."""
        deadline = time.monotonic() + timeout_s
        while self._open and time.monotonic() < deadline and self._context.pages:
            self._context.pages[0].wait_for_timeout(50)  # lets Playwright deliver its events

    def containing(self, needle: str) -> list[Seen]:
        """The responses whose URL, headers or body hold `needle`."""
        return [seen for seen in self.entries if seen.holds(needle)]

    def unread(self) -> list[Seen]:
        """Responses whose body could not be read (redirects, which have none, and requests
        that failed before any response aside)."""
        return [seen for seen in self.entries
                if seen.body is None and seen.note != "redirect" and seen.status != 0]

    def assert_never_seen(self, needle: str) -> None:
        """Fail if `needle` is in any response, or if a body could not be read to say."""
        self.settle()
        found = [f"{seen.status} {seen.url}" for seen in self.containing(needle)]
        assert not found, f"{needle!r} reached the browser in: {found}"
        unread = [f"{seen.status} {seen.url} ({seen.note})" for seen in self.unread()]
        assert not unread, f"bodies not read, so {needle!r} may be in them: {unread}"
