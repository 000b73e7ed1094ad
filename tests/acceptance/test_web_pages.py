"""The pages as plain HTML forms (no JavaScript): each move redirects back with a message and the
database shows it. Also what the pages show: why an approved touch waits, the rules' validation
state, the contacts search and its pages. SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session

from outreach.db import session_scope
from outreach.engine import Engine
from outreach.models import Contact, TouchStatus
from tests.support.web import Seed, TestClient, client, seed, sign_in, touch

REP = "rep@example.com"


@pytest.fixture
def web(engine: Engine) -> tuple[Engine, Seed, TestClient, str]:
    s = seed(engine)
    c = client(engine)
    return engine, s, c, sign_in(c, REP)


def test_approve_and_reject_redirect_back_with_a_message(web: tuple[Engine, Seed, TestClient, str]) -> None:
    e, s, c, csrf = web
    one, two, *_ = s.pending[REP]
    got = c.post(f"/queue/{one}/approve", data={"csrf": csrf, "back": "/queue"}, follow_redirects=False)
    assert got.status_code == 303 and got.headers["location"] == "/queue"
    assert f"Approved touch #{one}" in c.get("/queue").text
    assert touch(e, one).status == TouchStatus.APPROVED
    # no reason: refused, said on the page, nothing changed
    page = c.post(f"/queue/{two}/reject", data={"csrf": csrf, "reason": " "}).text
    assert "needs a reason" in page and touch(e, two).status == TouchStatus.PENDING
    c.post(f"/queue/{two}/reject", data={"csrf": csrf, "reason": "bought already"})
    assert (touch(e, two).status, touch(e, two).reason) == (TouchStatus.REJECTED, "bought already")
    # again: it is no longer pending
    assert "cannot approve" in c.post(f"/queue/{one}/approve", data={"csrf": csrf}).text
    assert c.post(f"/queue/{one}/approve", data={"csrf": csrf}, headers={"X-Requested-With": "fetch"}).status_code \
        == 409


def test_edit_keeps_untouched_fields_as_the_template(web: tuple[Engine, Seed, TestClient, str]) -> None:
    e, s, c, csrf = web
    target = next(t for t in s.pending[REP] if touch(e, t).channel == "email")
    page = c.get(f"/queue/{target}").text
    subject = page.split('name="subject" value="', 1)[1].split('"', 1)[0]
    shown_due = page.split('name="due_at" value="', 1)[1].split('"', 1)[0]
    before = touch(e, target)
    c.post(f"/queue/{target}/edit", data={"csrf": csrf, "subject": subject.replace("&#39;", "'"),
                                          "body": "New words\r\nfor Ada", "due_at": shown_due, "then": "save"})
    after = touch(e, target)
    assert after.status == TouchStatus.PENDING and after.subject_override is None
    assert after.body_override == "New words\nfor Ada"
    assert after.due_at == before.due_at  # shown to the minute, left alone: not moved
    later = (datetime.now(UTC) + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    c.post(f"/queue/{target}/edit", data={"csrf": csrf, "channel": "sms", "due_at": later, "then": "approve"})
    final = touch(e, target)
    assert (final.status, final.channel) == (TouchStatus.APPROVED, "sms")
    assert final.due_at.replace(tzinfo=UTC).strftime("%Y-%m-%dT%H:%M") == later  # the project's zone is UTC
    bad = c.post(f"/queue/{s.pending[REP][0]}/edit", data={"csrf": csrf, "due_at": "next week"}).text
    assert "is not a date and time" in bad


def test_snooze_moves_the_send_time(web: tuple[Engine, Seed, TestClient, str]) -> None:
    e, s, c, csrf = web
    one, two, *_ = s.pending[REP]
    c.post(f"/queue/{one}/snooze", data={"csrf": csrf, "delay": "1d"})
    assert touch(e, one).due_at.replace(tzinfo=UTC) > datetime.now(UTC) + timedelta(hours=23)
    # two days: well inside the touch's approval window (3d), which a snooze may not pass
    until = (datetime.now(UTC) + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    c.post(f"/queue/{two}/snooze", data={"csrf": csrf, "until": until})
    assert touch(e, two).due_at.replace(tzinfo=UTC).strftime("%Y-%m-%dT%H:%M") == until
    assert touch(e, two).status == TouchStatus.PENDING
    page = c.post(f"/queue/{two}/snooze", data={"csrf": csrf, "delay": "1y"}).text
    assert "snooze for one of" in page
    page = c.post(f"/queue/{two}/snooze", data={"csrf": csrf, "until": "2001-01-01T10:00"}).text
    assert "in the future" in page


def test_bulk_reject_needs_a_reason_and_a_selection(web: tuple[Engine, Seed, TestClient, str]) -> None:
    e, s, c, csrf = web
    ids = s.pending[REP][:2]
    assert "select one or more" in c.post("/queue/bulk", data={"csrf": csrf, "action": "reject", "reason": "x"}).text
    assert "needs a reason" in c.post("/queue/bulk", data={"csrf": csrf, "ids": ids, "action": "reject"}).text
    assert "choose approve or reject" in c.post("/queue/bulk", data={"csrf": csrf, "ids": ids, "action": "send"}).text
    assert [touch(e, i).status for i in ids] == [TouchStatus.PENDING, TouchStatus.PENDING]
    page = c.post("/queue/bulk", data={"csrf": csrf, "ids": ids, "action": "reject", "reason": "duplicate"}).text
    assert "Rejected 2 touches" in page
    assert [(touch(e, i).status, touch(e, i).reason) for i in ids] == [(TouchStatus.REJECTED, "duplicate")] * 2


def test_the_queue_says_why_an_approved_touch_waits(web: tuple[Engine, Seed, TestClient, str]) -> None:
    e, s, c, csrf = web
    one = s.pending[REP][0]
    c.post(f"/queue/{one}/approve", data={"csrf": csrf})
    sunday_noon = datetime(2026, 12, 6, 12, tzinfo=UTC)  # Sunday in every zone from UTC-11 to UTC+11
    assert e.dispatch(sunday_noon).waiting >= 1  # the dispatcher itself writes why it waits
    waiting = touch(e, one)
    assert waiting.status == TouchStatus.APPROVED and waiting.reason and "send window" in waiting.reason
    page = c.get("/queue").text
    assert "Approved, waiting to go out" in page and waiting.reason.removeprefix("waiting: ") in page


def test_the_rules_page_shows_a_broken_file_and_keeps_the_loaded_rules(
        web: tuple[Engine, Seed, TestClient, str]) -> None:
    e, _s, c, _csrf = web
    page = c.get("/rules").text
    assert "The rule files on disk are valid" in page and "check-in" in page and "pricing-follow-up" in page
    (e.project.rules_dir / "broken.yaml").write_text("version: 1\nplaybooks:\n  aware:\n    - id: x\n")
    page = c.get("/rules").text
    assert "rules/broken.yaml:" in page and "last good rules" in page
    assert "check-in" in page  # what runs is unchanged


def test_contacts_search_pages_through_many(web: tuple[Engine, Seed, TestClient, str]) -> None:
    e, _s, c, _csrf = web
    now = datetime.now(UTC)
    with session_scope(e.db) as db:
        add_many(db, now)
    first = c.get("/contacts", params={"q": "bulk"}).text
    assert "Page 1 of 3" in first and first.count("bulk-buyer-") == 25
    last = c.get("/contacts", params={"q": "bulk", "page": 3}).text
    assert last.count("bulk-buyer-") == 10
    assert "No contacts match" in c.get("/contacts", params={"q": "zzz-nobody"}).text
    assert c.get("/contacts", params={"q": "bulk", "stage": "customer"}).text.count("bulk-buyer-") == 0
    assert c.get("/contacts", params={"page": 0}).status_code == 422


def add_many(db: Session, now: datetime) -> None:
    for i in range(60):
        db.add(Contact(email=f"bulk-buyer-{i:02}@many.example", first_name="Bulk", last_name=f"Buyer {i:02}",
                       owner=REP, stage="interested", stage_entered_at=now))


def test_marketer_sees_everyones_queue_and_can_filter(engine: Engine) -> None:
    s = seed(engine)
    c = client(engine)
    sign_in(c, "marketer@example.com")
    everybody = c.get("/queue").text
    assert "Everybody (8)" in everybody and "rep2@example.com (2)" in everybody
    assert c.get("/queue", params={"owner": "rep2@example.com"}).text.count('class="card touch"') == 2
    assert len(s.pending["rep2@example.com"]) == 2


def test_contact_forms_and_escaping(web: tuple[Engine, Seed, TestClient, str]) -> None:
    e, s, c, csrf = web
    ada = s.contacts["Ada"]
    page = c.post(f"/contacts/{ada}/evidence", data={"csrf": csrf, "type": "call.completed",
                                                    "note": "<script>alert('x')</script> wants pricing"}).text
    assert "Recorded call.completed" in page
    assert "<script>alert" not in page and "&lt;script&gt;alert" in page
    assert "must be a dotted lowercase name" in c.post(f"/contacts/{ada}/evidence",
                                                       data={"csrf": csrf, "type": "Called her"}).text
    moved = c.post(f"/contacts/{ada}/evidence", data={"csrf": csrf, "type": "demo.requested"}).text
    assert "stage interested → evaluating" in moved
    assert "prefers sms for routine" in c.post(f"/contacts/{ada}/preference",
                                               data={"csrf": csrf, "interaction": "routine", "channel": "sms"}).text
    assert "does not use meeting" in c.post(f"/contacts/{ada}/preference",
                                            data={"csrf": csrf, "interaction": "routine", "channel": "meeting"}).text
    with session_scope(e.db) as db:
        contact = db.get(Contact, ada)
        assert contact is not None and contact.stage == "evaluating"
