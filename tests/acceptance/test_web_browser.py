"""The web app in a real browser: Debian's Chromium driven by Playwright against the app served by
uvicorn on a local port. Each test checks the database afterwards and leaves a screenshot of every
page it saw in test-artifacts/.

Without /usr/bin/chromium these tests skip, unless OUTREACH_REQUIRE_BROWSER=1 makes that a failure."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select
from sqlmodel import col

from outreach.db import session_scope
from outreach.engine import Engine
from outreach.models import Evidence, Preference, TouchStatus
from tests.support import ROOT
from tests.support.web import PASSWORD, Seed, pending_by_owner, seed, touch, wait_for_charts

pytestmark = pytest.mark.browser
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts"
REP = "rep@example.com"


def _need_browser() -> None:
    why = None
    if not os.path.exists(CHROMIUM):
        why = f"{CHROMIUM} is missing (apt-get install chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            why = "playwright is not installed (pip install playwright)"
    if why:
        if os.environ.get("OUTREACH_REQUIRE_BROWSER") == "1":
            pytest.fail(f"OUTREACH_REQUIRE_BROWSER=1 but {why}")
        pytest.skip(why)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    _need_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM,
                               args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield b
        b.close()


class Live:
    def __init__(self, engine: Engine, seed: Seed, url: str) -> None:
        self.engine, self.seed, self.url = engine, seed, url


@pytest.fixture
def live(sqlite_engine: Engine) -> Iterator[Live]:
    import uvicorn

    from outreach.web.app import create_app

    data = seed(sqlite_engine)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))  # the port the system picks, held until uvicorn listens on this socket
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(sqlite_engine), log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield Live(sqlite_engine, data, f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    js = "nojs" not in request.node.name
    context = browser.new_context(viewport={"width": 1280, "height": 900}, java_script_enabled=js)
    p = context.new_page()
    p.set_default_timeout(10_000)
    yield p
    context.close()


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def sign_in(page: Any, live: Live, email: str = REP, screenshot: str | None = None) -> None:
    page.goto(f"{live.url}/queue")
    assert "/login" in page.url
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    if screenshot:
        shot(page, screenshot)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live.url}/queue")


def card(page: Any, touch_id: int) -> Any:
    return page.locator(f"#touch-{touch_id}")


def test_sign_in_and_approve_a_touch(page: Any, live: Live) -> None:
    sign_in(page, live, screenshot="login")
    mine = live.seed.pending[REP]
    assert page.locator("article.touch").count() == len(mine)
    assert page.locator("h1").inner_text().startswith("Queue")
    shot(page, "queue")
    first = mine[0]
    card(page, first).get_by_role("button", name="Approve", exact=True).click()
    card(page, first).wait_for(state="detached")
    assert "Approved touch" in page.locator("#toast").inner_text()
    assert touch(live.engine, first).status == TouchStatus.APPROVED
    assert all(touch(live.engine, t).status == TouchStatus.PENDING for t in mine[1:])


def test_edit_then_approve(page: Any, live: Live) -> None:
    sign_in(page, live)
    target = next(t for t in live.seed.pending[REP] if touch(live.engine, t).channel == "email")
    c = card(page, target)
    c.locator("summary", has_text="Edit").click()
    c.locator("input[name=subject]").fill("A quick question, Ada")
    c.locator("textarea[name=body]").fill("Hi Ada,\nwould a call on Thursday suit you?\nRep")
    shot(page, "queue-edit")
    c.get_by_role("button", name="Save & approve").click()
    page.wait_for_selector(".flash-ok")
    assert "Edited and approved" in page.locator(".flash-ok").inner_text()
    t = touch(live.engine, target)
    assert t.status == TouchStatus.APPROVED
    assert t.subject_override == "A quick question, Ada"
    assert t.body_override == "Hi Ada,\nwould a call on Thursday suit you?\nRep"
    assert page.locator(f"#touch-{target}").count() == 0


def test_bulk_approve(page: Any, live: Live) -> None:
    sign_in(page, live)
    mine = live.seed.pending[REP]
    chosen = mine[:3]
    for tid in chosen:
        card(page, tid).locator("input.pick-box").check()
    assert page.locator("#picked").inner_text() == "3 selected"
    shot(page, "queue-bulk")
    page.get_by_role("button", name="Approve selected").click()
    for tid in chosen:
        card(page, tid).wait_for(state="detached")
    expected = [TouchStatus.APPROVED] * 3 + [TouchStatus.PENDING] * (len(mine) - 3)
    assert [touch(live.engine, t).status for t in mine] == expected
    assert pending_by_owner(live.engine)["rep2@example.com"] == live.seed.pending["rep2@example.com"]
    assert page.locator("#pending-count").inner_text() == str(len(mine) - 3)


def test_reject_with_a_reason(page: Any, live: Live) -> None:
    sign_in(page, live)
    target = live.seed.pending[REP][1]
    c = card(page, target)
    c.locator("summary", has_text="Reject").click()
    c.locator("input[name=reason]").fill("Spoke to her on the phone today")
    shot(page, "queue-reject")
    c.locator("form.reject-form button[type=submit]").click()
    c.wait_for(state="detached")
    t = touch(live.engine, target)
    assert (t.status, t.reason) == (TouchStatus.REJECTED, "Spoke to her on the phone today")


def test_keyboard_moves(page: Any, live: Live) -> None:
    sign_in(page, live)
    first, second, *_ = live.seed.pending[REP]
    page.keyboard.press("j")
    assert "current" in (card(page, first).get_attribute("class") or "")
    page.keyboard.press("a")
    card(page, first).wait_for(state="detached")
    assert "current" in (card(page, second).get_attribute("class") or "")
    page.keyboard.press("r")
    page.keyboard.type("Not the right moment")
    page.keyboard.press("Enter")
    card(page, second).wait_for(state="detached")
    assert touch(live.engine, first).status == TouchStatus.APPROVED
    rejected = touch(live.engine, second)
    assert (rejected.status, rejected.reason) == (TouchStatus.REJECTED, "Not the right moment")


def test_every_queue_key(page: Any, live: Live) -> None:
    """k back, e and s open their drawers on the current card, Escape closes them and gives the
    keys back, x selects for the bulk bar; a key typed into a field is text, not a move."""
    sign_in(page, live)
    first, second, *_ = live.seed.pending[REP]
    for key in ("j", "j", "k"):
        page.keyboard.press(key)
    assert "current" in (card(page, first).get_attribute("class") or "")
    for key, drawer in (("e", "edit"), ("s", "snooze")):
        page.keyboard.press(key)
        assert card(page, first).locator(f'details[data-drawer="{drawer}"]').get_attribute("open") is not None
        page.keyboard.press("Escape")
        assert card(page, first).locator("details[open]").count() == 0
    page.keyboard.press("e")
    page.keyboard.type("ajx")  # typed into the edit drawer's field: no approve, no move, no select
    page.keyboard.press("Escape")
    assert touch(live.engine, first).status == TouchStatus.PENDING
    assert "current" in (card(page, first).get_attribute("class") or "")
    page.keyboard.press("x")
    assert card(page, first).locator(".pick-box").is_checked()
    page.keyboard.press("j")
    page.keyboard.press("x")
    assert card(page, second).locator(".pick-box").is_checked()
    page.keyboard.press("x")
    assert not card(page, second).locator(".pick-box").is_checked()


def test_open_a_contact_and_state_a_preference(page: Any, live: Live) -> None:
    sign_in(page, live)
    page.get_by_role("link", name="Contacts", exact=True).click()
    page.fill("input[name=q]", "grace")
    page.get_by_role("button", name="Search").click()
    shot(page, "contacts")
    page.get_by_role("link", name="Grace Hopper").click()
    grace = live.seed.contacts["Grace"]
    page.wait_for_url(f"{live.url}/contacts/{grace}")
    assert "Timeline" in page.content()
    shot(page, "contact")
    form = page.locator('form.pref-form[data-interaction="strategic"]')
    form.locator("select").select_option("email")
    form.get_by_role("button").click()
    page.wait_for_selector(".flash-ok")
    assert "prefers email for strategic" in page.locator(".flash-ok").inner_text()
    page.fill("#evidence-form input[name=type]", "call.completed")
    page.fill("#evidence-form textarea[name=note]", "Wants a proposal for 40 seats")
    page.locator("#evidence-form button").click()
    page.wait_for_selector(".flash-ok")
    shot(page, "contact-after")
    with session_scope(live.engine.db) as s:
        prefs = [(p.contact_id, p.interaction, p.channel, p.source) for p in s.execute(select(Preference)).scalars()]
        note = s.execute(select(Evidence).where(col(Evidence.type) == "call.completed")).scalar_one()
    assert prefs == [(grace, "strategic", "email", "web:rep@example.com")]  # who, for "set by"
    assert (note.contact_id, note.source, note.data["note"]) == (grace, "web", "Wants a proposal for 40 seats")
    assert "Wants a proposal for 40 seats" in page.content()


def test_dashboard_and_rules_pages(page: Any, live: Live) -> None:
    sign_in(page, live, email="admin@example.com")
    shot(page, "queue-admin")
    errors: list[str] = []  # a script the page's CSP blocked would show here
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.get_by_role("link", name="Dashboard", exact=True).click()
    assert page.locator("h2", has_text="Buying funnel").is_visible()
    # Chart.js (vendored, served by us) drew all seven charts, with something on each canvas
    wait_for_charts(page, 7)
    drawn = page.evaluate("""Array.from(document.querySelectorAll('canvas[data-chart]')).map(c => {
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        return d.some((v, i) => i % 4 === 3 && v > 0); })""")
    assert drawn == [True] * 7 and not errors, errors
    shot(page, "dashboard")
    # the filter: one rep's contacts (Ada, Grace and Linus, all interested), in the query string
    page.select_option("select[name=owner]", REP)
    page.get_by_role("button", name="Show").click()
    page.wait_for_url("**/dashboard?*owner=rep%40example.com*")
    assert page.locator("#w-funnel tbody tr", has_text="interested").locator("td").nth(1).inner_text() == "3"
    wait_for_charts(page, 7)
    shot(page, "dashboard-rep")
    page.get_by_role("link", name="Rules").click()
    assert page.locator("#stage-interested").is_visible()
    assert "rep approves" in page.locator("#stage-interested").inner_text()
    shot(page, "rules")
    page.set_viewport_size({"width": 390, "height": 844})
    page.get_by_role("link", name="Queue").click()
    shot(page, "queue-phone")


def test_approve_without_javascript_nojs(page: Any, live: Live) -> None:
    sign_in(page, live)
    first = live.seed.pending[REP][0]
    card(page, first).get_by_role("button", name="Approve", exact=True).click()
    page.wait_for_selector(".flash-ok")
    shot(page, "queue-nojs")
    assert touch(live.engine, first).status == TouchStatus.APPROVED
    assert card(page, first).count() == 0
