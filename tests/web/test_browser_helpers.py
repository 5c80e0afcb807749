"""The browser tests' own tools on pages of their own, under the strict Content-Security-Policy
the staff page will have: axe reports an inaccessible element and nothing on a clean page, and
NetworkLog finds a string in a JSON response, an event stream, a redirect's headers, and not
where it is absent."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page

from tests.web.browser import axe_violations
from tests.web.network_log import NetworkLog
from tests.web.site import LoopbackSite, Reply

CSP = {"Content-Security-Policy": "default-src 'self'; script-src 'self'; object-src 'none'; "
                                  "base-uri 'none'; frame-ancestors 'none'"}
CLEAN = (b'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Clean</title>'
         b'</head><body><main><h1>Search</h1><label for="q">Question</label>'
         b'<input id="q" name="q"><button type="button">Ask</button>'
         b'<script src="/app.js"></script></main></body></html>')
CANARY = "canary-7f3c1e"


def _page(body: bytes) -> Reply:
    return Reply(body, headers=CSP)


def test_axe_reports_an_image_without_alt_text(page: Page, site: LoopbackSite):
    site.replies["/"] = _page(CLEAN.replace(b"</main>", b'<img src="/chart.png"></main>'))
    page.goto(site.url("/"))
    violations = axe_violations(page)
    assert [v["id"] for v in violations] == ["image-alt"]
    assert violations[0]["impact"] == "critical"
    assert violations[0]["nodes"][0]["target"] == ["img"]


def test_axe_finds_nothing_on_a_clean_page(page: Page, site: LoopbackSite):
    site.replies["/"] = _page(CLEAN)
    site.replies["/app.js"] = Reply(b"document.body.dataset.ready = '1';",
                                    content_type="text/javascript")
    page.goto(site.url("/"))
    page.wait_for_function("() => document.body.dataset.ready === '1'")  # the CSP allows it
    assert axe_violations(page, impacts=("minor", "moderate", "serious", "critical")) == []


def test_network_log_finds_a_string_in_json_and_in_an_event_stream(
        page: Page, site: LoopbackSite, network_log: NetworkLog):
    site.replies["/"] = _page(CLEAN)
    site.replies["/app.js"] = Reply(
        b"fetch('/old').then((r) => r.json()).then(() => fetch('/events'))"
        b".then((r) => r.text()).then((t) => { document.body.dataset.done = t.length; });",
        content_type="text/javascript")
    site.replies["/old"] = Reply(status=302, headers={"Location": f"/api?next={CANARY}-r"})
    site.replies["/api"] = Reply(f'{{"answer": "{CANARY}-json"}}'.encode(),
                                 content_type="application/json")
    site.replies["/events"] = Reply([b"event: token\ndata: no\n\n",
                                     f"event: token\ndata: {CANARY}-sse\n\n".encode()],
                                    content_type="text/event-stream")
    page.goto(site.url("/"))
    page.wait_for_function("() => document.body.dataset.done")
    network_log.settle()
    assert network_log.unread() == []
    assert [s.url for s in network_log.containing(f"{CANARY}-json")] == [
        site.url(f"/api?next={CANARY}-r")]
    [stream] = network_log.containing(f"{CANARY}-sse")
    assert stream.headers["content-type"] == "text/event-stream"
    assert f"data: {CANARY}-sse" in stream.text
    redirect = [s for s in network_log.containing(f"{CANARY}-r") if s.status == 302]
    assert redirect and redirect[0].note == "redirect"
    network_log.assert_never_seen("canary-absent")
    with pytest.raises(AssertionError, match="reached the browser in"):
        network_log.assert_never_seen(f"{CANARY}-sse")
