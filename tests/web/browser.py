"""Debian's Chromium driven by Playwright (from PyPI), and axe-core's accessibility checks.

Playwright never downloads a browser here: it launches /usr/bin/chromium (installed by .ci/run)
with the flags below, in a fresh empty profile of its own. The background-networking flags keep
Chromium from calling out to its update, sync and field-trial services, whose connections the
machine's closed network refuses. axe-core comes from the npm registry, pinned in
tests/web/package-lock.json and installed by `make test` (npm ci).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Page, Playwright

CHROMIUM = Path("/usr/bin/chromium")
AXE = Path(__file__).resolve().parent / "node_modules" / "axe-core" / "axe.min.js"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         # Even so, Debian's build (its Google API keys in /etc/chromium.d) looks up Google's
         # hosts at start; no name but localhost resolves, so nothing leaves the machine.
         "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1")


def missing_prerequisites() -> list[str]:
    """What the browser tests need and this machine lacks, each with how to get it."""
    missing = []
    if not CHROMIUM.is_file():
        missing.append(f"{CHROMIUM} (Debian's chromium: `.ci/run` installs it, or "
                       "`apt-get install chromium chromium-driver`)")
    if not AXE.is_file():
        missing.append(f"{AXE} (axe-core: run `make test`, or "
                       f"`npm ci --prefix {AXE.parents[2]}`)")
    return missing


def launch(playwright: Playwright) -> Browser:
    """Headless system Chromium; Playwright gives it an empty user-data-dir of its own."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=list(FLAGS),
                                      headless=True)


def axe_violations(page: Page, impacts: Iterable[str] = ("serious", "critical")
                   ) -> list[dict[str, Any]]:
    """axe-core's violations on the page as it is now, those of the given impacts.

    axe is evaluated through the DevTools protocol rather than added as a script tag: the
    pages have a Content-Security-Policy without inline scripts, which refuses a tag
    (`page.add_script_tag` fails there) but not an evaluation, so no bypass_csp is needed.
    """
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(AXE.read_text(encoding="utf-8"))
    violations: list[dict[str, Any]] = page.evaluate(
        "async () => (await window.axe.run(document)).violations")
    wanted = set(impacts)
    return [v for v in violations if v.get("impact") in wanted]
