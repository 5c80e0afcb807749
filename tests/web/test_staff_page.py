"""The staff web page in Debian's Chromium, against the example deployment (real parser,
embedder, embedded Qdrant, Casbin and keys) and the real OpenID provider (tests/identity/):

- alice signs in at the organisation's provider (authorization code + PKCE), dave with a
  personal key; they ask the same question and see different citations; the HR document with
  the canary string reaches alice's page only: every response dave's browser receives is read,
  and none holds it;
- a citation opens the source viewer at the cited passage; the viewer refuses dave the HR
  document exactly as it refuses a document that does not exist, and refuses alice once her
  access is revoked, audited both times;
- the answer's mode in words, feedback, the pause notice, the keyboard alone, a phone-sized
  screen, and axe-core's check (no serious or critical violation) on every view.

Screenshots go to $CLEARANCE_SCREENSHOTS when it is set (docs/screenshots in the README are
made this way), else under the test's tmp_path.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Locator, Page, expect

from api.app import create_app
from application.services import build_services, open_pause_switch
from application.settings import load_settings
from retrieval.embedder import Embedder
from tests.conftest import (
    EXAMPLE_USERS,
    Deployment,
    LiveServer,
    serve_config,
    write_example_config,
)
from tests.fakes.openai_server import fake_llm
from tests.identity.oidc_provider import (
    WEB_CLIENT_ID,
    OidcProvider,
    free_port,
    oidc_provider,
    password,
    signing_key,
    web_login_config,
)
from tests.web.browser import axe_violations
from tests.web.network_log import NetworkLog

pytestmark = pytest.mark.e2e

CANARY = "CANARY-7Q4Z-PAYROLL"
CANARY_DOC = "hr:on-call-allowance.md"
CANARY_TITLE = "On-call allowance"
QUESTION = "What is the weekly on-call allowance?"
SALARY_QUESTION = "What is the salary range of band L3?"
# An HR document only group:hr may read (alice), several sections long; the canary is in one.
CANARY_DOCUMENT = f"""# {CANARY_TITLE}

## Who is on the rota

Engineers and support staff who carry the pager outside office hours are on the on-call rota.
The rota is published by each team lead four weeks ahead, and swaps are agreed between
colleagues and recorded in the rota before the week starts.

## The allowance

Staff on the on-call rota receive a weekly on-call allowance of 412 euros, paid with the
monthly salary. The payroll code of the allowance is {CANARY}.

## Calls outside office hours

Time spent on a call outside office hours is paid as overtime on top of the allowance, and a
call that ends after midnight gives the right to start the next working day four hours later.
"""
WAIT_MS = 120_000  # an answer on a busy machine; nothing here depends on speed
MODES_IN_WORDS = {
    "Quoted from your sources", "Not found in sources you can access",
    "Model unavailable: extractive answer",
}


# A staff document whose text looks like HTML: the page must show it as text, run nothing.
MARKUP_DOCUMENT = ("Kiosk banner\n\nThe lobby kiosk banner reads <b>Welcome</b> to Larkspur "
                   "<img src=x onerror=alert(1)> and it is changed by the front desk.\n")
MARKUP_QUESTION = "What does the lobby kiosk banner read?"


@dataclass
class StaffSite:
    deployed: Deployment
    provider: OidcProvider

    @property
    def url(self) -> str:
        return self.deployed.url

    def admin(self) -> httpx.Client:
        return self.deployed.client("root")


@pytest.fixture(scope="module")
def staff_site(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder
               ) -> Iterator[StaffSite]:
    root = tmp_path_factory.mktemp("staff-page")
    config = write_example_config(root)
    (root / "docs" / "hr" / "on-call-allowance.md").write_text(CANARY_DOCUMENT,
                                                              encoding="utf-8")
    (root / "docs" / "handbook" / "kiosk-banner.txt").write_text(MARKUP_DOCUMENT,
                                                                encoding="utf-8")
    port = free_port()
    config.write_text(config.read_text(encoding="utf-8")
                      + web_login_config(f"http://127.0.0.1:{port}"), encoding="utf-8")
    with serve_config(config, embedder, EXAMPLE_USERS) as deployed:
        web_client = {"client_id": WEB_CLIENT_ID,
                      "redirect_uris": [f"{deployed.url}/auth/callback"]}
        with oidc_provider(port, [signing_key("k1")], users=["alice", "dave"],
                           web_clients=[web_client]) as provider:
            yield StaffSite(deployed, provider)


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("CLEARANCE_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def new_context(browser: Browser) -> Iterator[Any]:
    made: list[BrowserContext] = []

    def make(**options: Any) -> BrowserContext:
        context = browser.new_context(**options)
        context.set_default_timeout(WAIT_MS)
        made.append(context)
        return context

    yield make
    for context in made:
        context.close()


def sign_in_with_key(page: Page, site: StaffSite, user: str, url: str | None = None) -> None:
    page.goto((url or site.url) + "/")
    page.get_by_label("Or use a personal API key").fill(site.deployed.keys[user])
    page.get_by_role("button", name="Sign in with key").click()
    expect(page.locator("#who-name")).to_have_text(user)


def sign_in_at_provider(page: Page, site: StaffSite, user: str) -> None:
    page.goto(site.url + "/")
    page.get_by_role("link", name="Sign in with your organisation").click()
    page.get_by_label("Username").fill(user)
    page.get_by_label("Password").fill(password(user))
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(site.url + "/")
    expect(page.locator("#who-name")).to_have_text(user)


def ask(page: Page, question: str) -> Locator:
    """The answer to `question`, once it has been streamed in full."""
    before = page.locator("article.answer").count()
    page.get_by_label("Your question").fill(question)
    page.get_by_role("button", name="Ask").click()
    answer = page.locator("article.answer").nth(before)
    expect(answer).to_have_attribute("aria-busy", "false")
    return answer


def cited_titles(answer: Locator) -> list[str]:
    return answer.locator(".citation a").all_inner_texts()


# The focused control's name as a screen reader reads it (aria-label, else its visible text
# without the parts hidden from assistive technology).
FOCUSED_NAME = """() => {
  const node = document.activeElement;
  return node.getAttribute('aria-label') || [...node.childNodes]
    .filter((c) => !(c.nodeType === 1 && c.getAttribute('aria-hidden') === 'true'))
    .map((c) => c.textContent).join('').trim();
}"""


def serious(page: Page) -> list[str]:
    return [f"{v['id']} ({v['impact']}): {v['help']}" for v in axe_violations(page)]


def audit(site: StaffSite, action: str) -> list[dict[str, Any]]:
    lines = site.deployed.settings.audit_log.read_text(encoding="utf-8").splitlines()
    return [r for r in map(json.loads, lines) if r.get("action") == action]


def test_two_users_ask_the_same_question_and_only_the_reader_sees_the_hr_source(
        staff_site: StaffSite, new_context: Any, shots: Path):
    alice_context = new_context()
    alice = alice_context.new_page()
    sign_in_at_provider(alice, staff_site, "alice")
    dave_context = new_context()
    dave_log = NetworkLog(dave_context)  # from before dave's first request
    dave = dave_context.new_page()
    sign_in_with_key(dave, staff_site, "dave")

    alice_answer = ask(alice, QUESTION)
    dave_answer = ask(dave, QUESTION)

    assert any(CANARY_TITLE in t for t in cited_titles(alice_answer)), cited_titles(alice_answer)
    assert CANARY in alice_answer.inner_text() or "412" in alice_answer.inner_text()
    assert not any(CANARY_TITLE in t for t in cited_titles(dave_answer))
    for answer in (alice_answer, dave_answer):
        assert answer.locator(".mode").inner_text() in MODES_IN_WORDS
    facts = alice_answer.locator(".citation .facts").first.inner_text()
    assert "version " in facts and "modified " in facts and "ingested " in facts
    # A question only HR documents answer: alice gets the salary bands, dave an abstention.
    alice_salary, dave_salary = ask(alice, SALARY_QUESTION), ask(dave, SALARY_QUESTION)
    assert alice_salary.locator(".mode").inner_text() == "Quoted from your sources"
    assert alice_salary.locator(".citation").count() >= 1
    assert dave_salary.locator(".mode").inner_text() == "Not found in sources you can access"
    assert dave_salary.locator(".citation").count() == 0

    # Nothing dave's browser received holds the canary: no page, no stream, no JSON.
    dave_log.assert_never_seen(CANARY)
    assert CANARY not in dave.content()
    print(f"dave's browser received {len(dave_log.entries)} responses "
          f"({sum(len(e.body or b'') for e in dave_log.entries)} bytes): none holds the canary")
    # The session cookie: HttpOnly, SameSite=Lax; the page's scripts cannot read it.
    cookies = {c["name"]: c for c in dave_context.cookies()}
    assert cookies["clearance_session"]["httpOnly"] is True
    assert cookies["clearance_session"]["sameSite"] == "Lax"
    assert dave.evaluate("() => document.cookie") == ""
    via = {r["caller"]: r.get("via") for r in audit(staff_site, "signin")}
    assert via["user:alice"].startswith("oidc:") and via.get("user:dave") is None

    alice.screenshot(path=str(shots / "chat-alice.png"), full_page=True)
    dave.screenshot(path=str(shots / "chat-dave.png"), full_page=True)
    assert serious(alice) == [] and serious(dave) == []
    print("axe-core on the chat page (alice, dave): 0 serious or critical violations")


def test_a_citation_opens_the_cited_passage_and_is_refused_once_access_is_revoked(
        staff_site: StaffSite, new_context: Any, shots: Path):
    context = new_context()
    alice = context.new_page()
    sign_in_with_key(alice, staff_site, "alice")
    answer = ask(alice, QUESTION)
    link = answer.locator(".citation a", has_text=CANARY_TITLE).first
    with context.expect_page() as opened:
        link.click()
    viewer = opened.value
    expect(viewer.locator("#doc-title")).to_have_text(CANARY_TITLE)
    cited = viewer.locator(".chunk.cited")
    expect(cited).to_contain_text(CANARY)
    expect(cited).to_be_focused()
    for field in ("#doc-version", "#doc-modified", "#doc-ingested"):
        assert viewer.locator(field).inner_text().strip()
    viewer.screenshot(path=str(shots / "viewer-alice.png"), full_page=True)
    assert serious(viewer) == []
    address = viewer.url

    # dave, who may not read HR, opens the same address: refused like a made-up document.
    dave_context = new_context()
    dave_log = NetworkLog(dave_context)
    dave = dave_context.new_page()
    sign_in_with_key(dave, staff_site, "dave")
    refusals = []
    for target in (address, address.replace("on-call-allowance", "no-such-document")):
        dave_log.settle()  # every body read before the page leaves it
        dave.goto(target)
        expect(dave.locator("#viewer-error")).to_be_visible()
        refusals.append(dave.locator("#viewer-error").inner_text())
    assert refusals[0] == refusals[1] and "not available to you" in refusals[0]
    assert serious(dave) == []
    dave_log.assert_never_seen(CANARY)

    # alice's access to the document is revoked: the same address is refused now.
    with staff_site.admin() as admin:
        revoked = admin.put(f"/v1/admin/documents/{CANARY_DOC}/acl",
                            json={"allow": ["user:carol"]})
        assert revoked.status_code == 200, revoked.text
        try:
            after = NetworkLog(context)
            viewer.reload()
            expect(viewer.locator("#viewer-error")).to_contain_text("not available to you")
            again = ask(alice, QUESTION)
            assert not any(CANARY_TITLE in t for t in cited_titles(again))
            after.assert_never_seen(CANARY)
        finally:
            assert admin.delete(f"/v1/admin/documents/{CANARY_DOC}/acl").status_code == 200
    views = [r for r in audit(staff_site, "view") if r.get("caller") == "user:alice"]
    assert [r["outcome"] for r in views][-2:] == ["ok", "empty"]
    assert any(r.get("caller") == "user:dave" and r["outcome"] == "empty"
               for r in audit(staff_site, "view"))


def test_rating_an_answer_and_the_pause_notice(staff_site: StaffSite, new_context: Any):
    page = new_context().new_page()
    sign_in_with_key(page, staff_site, "dave")
    answer = ask(page, "How many days of annual leave do staff get?")
    answer.get_by_label("Comment (optional)").fill("Clear, thanks")
    answer.get_by_role("button", name="Helpful", exact=True).click()
    expect(answer.locator(".feedback-status")).to_have_text("Thank you: your rating is saved.")
    expect(answer.get_by_role("button", name="Helpful", exact=True)).to_have_attribute(
        "aria-pressed", "true")
    rated = json.loads((staff_site.deployed.settings.data_dir / "feedback.json").read_text(
        "utf-8"))
    assert any(v["rating"] == "up" for v in rated.values())

    switch = open_pause_switch(staff_site.deployed.settings)
    switch.pause("generation", by="user:root", reason="model upgrade")
    try:
        page.reload()
        expect(page.locator("#notice")).to_contain_text("generation is paused")
        assert serious(page) == []
    finally:
        switch.resume("generation")
    switch.pause("service", by="user:root", reason="maintenance")
    try:
        refused = ask(page, "Where do I report phishing?")
        expect(refused.locator(".mode")).to_have_text("No answer")
        expect(page.locator("#notice")).to_contain_text("paused")
    finally:
        switch.resume("service")


def test_the_page_works_from_the_keyboard_alone(staff_site: StaffSite, new_context: Any):
    page = new_context().new_page()
    page.goto(staff_site.url + "/")
    expect(page.get_by_label("Or use a personal API key")).to_be_visible()
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement.id") == "key":
            break
    page.keyboard.type(staff_site.deployed.keys["dave"])
    page.keyboard.press("Enter")
    expect(page.get_by_label("Your question")).to_be_focused()
    page.keyboard.type("Where do I report phishing?")
    page.keyboard.press("Enter")
    answer = page.locator("article.answer").first
    expect(answer).to_have_attribute("aria-busy", "false")
    expect(page.locator("#announcer")).to_contain_text("Answer ready")
    reached = set()
    for _ in range(40):
        page.keyboard.press("Tab")
        reached.add(page.evaluate(FOCUSED_NAME))
    assert any(name.startswith("Open source 1") for name in reached), reached
    assert {"Helpful", "Not helpful", "Sign out"} <= reached


def test_the_page_fits_a_phone_screen(staff_site: StaffSite, new_context: Any, shots: Path):
    page = new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2,
                       is_mobile=True, has_touch=True).new_page()
    page.goto(staff_site.url + "/")
    assert serious(page) == []  # the sign-in view
    sign_in_with_key(page, staff_site, "alice")
    ask(page, QUESTION)
    overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow}px wider than a phone's screen"
    for name in ("Ask", "Sign out", "Helpful"):
        box = page.get_by_role("button", name=name, exact=True).first.bounding_box()
        assert box is not None and box["height"] >= 40, (name, box)  # big enough to tap
    page.screenshot(path=str(shots / "chat-phone.png"), full_page=True)
    assert serious(page) == []


def test_a_failing_model_is_named_in_words(staff_site: StaffSite, new_context: Any,
                                           embedder: Embedder):
    """The same index and keys served by a second app whose LLM (a FAKE OpenAI-protocol
    server, the real one cannot run here) answers 503: the page says the answer is extractive
    because the model is unavailable."""
    deployed = staff_site.deployed
    with fake_llm() as llm:
        llm.status = 503
        config = deployed.root / "clearance-llm.toml"
        config.write_text(deployed.config.read_text(encoding="utf-8") + f"""
[llm]
provider = "openai"
base_url = "{llm.url}"
model = "fake-model"
timeout_s = 30
""", encoding="utf-8")
        settings = load_settings(config)
        with LiveServer(create_app(settings, build_services(settings, embedder=embedder))
                        ) as url:
            page = new_context().new_page()
            sign_in_with_key(page, staff_site, "dave", url)
            answer = ask(page, "How many days of annual leave do staff get?")
            expect(answer.locator(".mode")).to_have_text("Model unavailable: extractive answer")
            expect(answer.locator(".answer-notice")).to_contain_text("did not answer")
            assert answer.locator(".citation").count() >= 1
        assert llm.requests, "the model was asked first"


def test_text_that_looks_like_html_is_shown_as_text_and_runs_nothing(
        staff_site: StaffSite, new_context: Any):
    page = new_context().new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    sign_in_with_key(page, staff_site, "dave")
    answer = ask(page, MARKUP_QUESTION)
    expect(answer.locator(".answer-text")).to_contain_text("<b>Welcome</b>")
    assert answer.locator("b, img").count() == 0  # nothing of it became an element
    link = answer.locator(".citation a").first
    with page.context.expect_page() as opened:
        link.click()
    viewer = opened.value
    expect(viewer.locator(".chunk.cited")).to_contain_text("onerror=alert(1)")
    assert viewer.locator("#sections b, #sections img").count() == 0
    assert dialogs == []
