"""Browser tests' fixtures: Debian's Chromium through Playwright (tests/web/browser.py), a page
in a fresh context, a NetworkLog of it (tests/web/network_log.py) and a loopback site
(tests/web/site.py). A machine without Chromium or axe-core fails these tests, never skips
them: CI must run them (`.ci/run` installs Chromium, `make test` axe-core)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.web.browser import launch, missing_prerequisites
from tests.web.network_log import NetworkLog
from tests.web.site import LoopbackSite


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the browser tests; closed, with Playwright's event loop, when
    they are done rather than at the end of the whole run."""
    missing = missing_prerequisites()
    if missing:
        pytest.fail("the browser tests need " + "; ".join(missing), pytrace=False)
    with sync_playwright() as playwright:
        chromium = launch(playwright)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A page in a context of its own: no cookies or storage from another test."""
    context = browser.new_context()
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def network_log(page: Page) -> NetworkLog:
    """Every response `page`'s context receives from the start of the test."""
    return NetworkLog(page.context)


@pytest.fixture
def site() -> Iterator[LoopbackSite]:
    with LoopbackSite() as served:
        yield served
