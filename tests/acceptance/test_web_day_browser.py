"""The rep's day in a real browser: the API docs render, an answer to a reply goes out from the inbox,
and a rep in another zone reads local times. Fixtures are those of test_web_browser.py."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlmodel import col

from outreach.db import session_scope
from outreach.evidence import EvidenceIn
from outreach.models import Message, Touch
from tests.acceptance.test_web_browser import REP, Live, browser, live, page, shot, sign_in  # noqa: F401  (fixtures)
from tests.acceptance.test_web_inbox import in_window
from tests.support.web import touch

pytestmark = pytest.mark.browser


def test_docs_render_an_operation(page: Any, live: Live) -> None:  # noqa: F811
    page.goto(f"{live.url}/docs")
    # Swagger UI 5 reads the OpenAPI 3.1 document: an old bundle shows "Unable to render this definition"
    op = page.locator(".opblock-summary-path", has_text="/api/evidence").first
    op.wait_for()
    assert "Unable to render" not in page.content()
    op.click()
    page.locator(".opblock-body").first.wait_for()
    shot(page, "docs")


def test_a_reply_is_read_and_answered_from_the_inbox(page: Any, live: Live) -> None:  # noqa: F811
    e, grace = live.engine, live.seed.contacts["Grace"]
    got = e.record([EvidenceIn("email.replied", datetime.now(UTC), "inbound", contact_id=grace,
                               data={"subject": "Pricing", "text": "Could we talk? Tuesday afternoon works."})])
    rid = got.recorded[0].id
    sign_in(page, live)
    assert page.locator("#badge-replies").inner_text() == "1"  # the reply waits: the nav says so
    page.locator(".nav a[href=\"/inbox\"]").click()
    reply = page.locator(f"#reply-{rid}")
    assert "Tuesday afternoon works." in reply.inner_text()
    reply.locator("textarea[name=body]").fill("Tuesday 3pm works for me too.")
    shot(page, "inbox")
    reply.get_by_role("button", name="Send answer").click()
    page.wait_for_selector(".flash-ok")
    assert page.locator(f"#reply-{rid}").count() == 0  # answered: no longer waiting
    assert e.dispatch(in_window("America/New_York")).sent >= 1  # the dispatcher sends it
    page.goto(f"{live.url}/contacts/{grace}")
    answer = page.locator(".tl", has_text="answer by email")
    assert "sent" in answer.inner_text() and f"sent by {REP}" in answer.inner_text()
    shot(page, "contact-answered")
    with session_scope(e.db) as s:
        msg = s.execute(select(Message).join(Touch, col(Touch.id) == col(Message.touch_id))
                        .where(col(Touch.rule) == "one-off")).scalar_one()
    assert (msg.to, msg.subject, msg.text) == ("grace@cobol.example", "Re: Pricing", "Tuesday 3pm works for me too.")


def test_a_rep_in_tokyo_sees_tokyo_time_and_the_buyers(page: Any, live: Live) -> None:  # noqa: F811
    sign_in(page, live)
    page.goto(f"{live.url}/profile")
    page.fill("input[name=timezone]", "Asia/Tokyo")
    page.get_by_role("button", name="Save").click()
    page.wait_for_selector(".flash-ok")
    assert "Asia/Tokyo" in page.locator(".whoami").inner_text()
    first = live.seed.pending[REP][0]
    page.goto(f"{live.url}/queue")
    card = page.locator(f"#touch-{first}")
    due = touch(live.engine, first).due_at.replace(tzinfo=UTC)
    when = card.locator(".when").inner_text()
    assert due.astimezone(ZoneInfo("Asia/Tokyo")).strftime("%a %d %b, %H:%M") in when
    assert "buyer's time:" in when and "America/" in when
    shot(page, "queue-tokyo")
