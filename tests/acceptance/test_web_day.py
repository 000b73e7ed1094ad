"""The rep's day over HTTP: snooze limits and the snoozed list, the profile's time zone and the times
that follow it, words for people on the pages."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update
from sqlmodel import col

from outreach.db import session_scope
from outreach.engine import Engine
from outreach.evidence import EvidenceIn
from outreach.models import Contact, Touch, TouchStatus
from tests.support.web import Seed, TestClient, client, seed, sign_in, touch

REP = "rep@example.com"


@pytest.fixture
def web(sqlite_engine: Engine) -> tuple[Engine, Seed, TestClient, str]:
    s = seed(sqlite_engine)
    c = client(sqlite_engine)
    return sqlite_engine, s, c, sign_in(c, REP)


def _card_ids(html: str) -> set[int]:
    return {int(n) for n in re.findall(r'<article class="card touch" id="touch-(\d+)"', html)}


def test_snooze_stops_at_the_expiry_and_the_touch_leaves_the_queue(web: tuple[Engine, Seed, TestClient, str]) -> None:
    e, s, c, csrf = web
    one = s.pending[REP][0]
    deadline = touch(e, one).approve_by
    assert deadline is not None
    page = c.get("/queue").text
    assert one in _card_ids(page) and "It can wait until" in page  # the form says until when
    before = touch(e, one).due_at
    too_late = (deadline.replace(tzinfo=UTC) + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")
    got = c.post(f"/queue/{one}/snooze", data={"csrf": csrf, "until": too_late})
    assert "at the latest" in got.text and one in _card_ids(got.text)
    assert touch(e, one).due_at == before
    got = c.post(f"/queue/{one}/snooze", data={"csrf": csrf, "delay": "3d"})  # past the 3-day approval window
    assert "at the latest" in got.text and touch(e, one).due_at == before
    fetch = c.post(f"/queue/{one}/snooze", data={"csrf": csrf, "delay": "1w"}, headers={"x-requested-with": "fetch"})
    assert fetch.status_code == 422 and "at the latest" in fetch.json()["detail"]

    page = c.post(f"/queue/{one}/snooze", data={"csrf": csrf, "delay": "4h"}).text
    assert "Snoozed touch" in page
    assert one not in _card_ids(page), "a snoozed touch stays out of the queue until its time"
    assert f'href="/queue/{one}"' in page.split('id="snoozed"')[1]  # listed apart, with who snoozed it
    assert touch(e, one).reason == f"snoozed by {REP}" and touch(e, one).status == TouchStatus.PENDING
    with session_scope(e.db) as db:  # its time comes
        db.execute(update(Touch).where(col(Touch.id) == one).values(due_at=datetime.now(UTC) - timedelta(minutes=1)))
    assert one in _card_ids(c.get("/queue").text)
    c.post(f"/queue/{one}/approve", data={"csrf": csrf})
    assert touch(e, one).status == TouchStatus.APPROVED and touch(e, one).reason is None


def test_a_rep_in_another_zone_reads_local_times(web: tuple[Engine, Seed, TestClient, str]) -> None:
    e, s, c, csrf = web
    one = s.pending[REP][0]
    due = touch(e, one).due_at.replace(tzinfo=UTC)
    assert "Your profile" in c.get("/profile").text
    bad = c.post("/profile", data={"csrf": csrf, "timezone": "Mars/Olympus"}).text
    assert "unknown time zone" in bad
    assert "Saved: times are shown in Asia/Tokyo" in c.post("/profile", data={"csrf": csrf, "timezone": "Asia/Tokyo",
                                                                             "name": "Rita Rep"}).text
    page = c.get(f"/queue/{one}").text
    tokyo = due.astimezone(ZoneInfo("Asia/Tokyo"))
    assert tokyo.strftime("%a %d %b, %H:%M") in page
    assert "buyer's time:" in page  # the buyer is in an American zone: their hour beside ours
    c.post("/profile", data={"csrf": csrf, "timezone": ""})
    assert due.strftime("%a %d %b, %H:%M") in c.get(f"/queue/{one}").text  # back to the project's zone (UTC)


def test_words_for_people(web: tuple[Engine, Seed, TestClient, str]) -> None:
    e, s, c, csrf = web
    ada = s.contacts["Ada"]
    c.post(f"/contacts/{ada}/preference", data={"csrf": csrf, "interaction": "routine", "channel": "sms"})
    page = c.get(f"/contacts/{ada}").text
    assert f"set by {REP}" in page and "stated by the contact" not in page
    e.housekeeping(datetime.now(UTC) + timedelta(days=10))  # nobody approved the pending touches
    page = c.get(f"/contacts/{ada}").text
    assert "the moment for this touch passed before anyone approved it" in page
    assert "`" not in page and "over 0 touches" not in page


def test_a_rep_moves_and_cancels_a_meeting(web: tuple[Engine, Seed, TestClient, str]) -> None:
    e, s, c, csrf = web
    with session_scope(e.db) as db:
        invite = db.execute(select(Touch).where(col(Touch.channel) == "meeting",
                                                col(Touch.contact_id) == s.contacts["Grace"])).scalar_one()
    start = invite.meeting_start.replace(tzinfo=UTC) if invite.meeting_start else None
    assert start is not None
    page = c.get(f"/queue/{invite.id}").text
    assert 'name="meeting_at"' in page and "for the buyer" in page  # the buyer's local meeting time
    night = start.replace(hour=3, minute=0) + timedelta(days=7)
    got = c.post(f"/queue/{invite.id}/edit", data={"csrf": csrf, "meeting_at": night.strftime("%Y-%m-%dT%H:%M")})
    assert "is outside the buyer&#39;s working hours" in got.text
    later = start + timedelta(days=7)
    c.post(f"/queue/{invite.id}/edit", data={"csrf": csrf, "meeting_at": later.strftime("%Y-%m-%dT%H:%M")})
    moved = touch(e, invite.id or 0)
    assert moved.meeting_start is not None and moved.meeting_start.replace(tzinfo=UTC) == later
    assert moved.meeting_sequence == 1
    assert "not a sent meeting invite" in c.post(f"/queue/{invite.id}/cancel-meeting", data={"csrf": csrf}).text
    with session_scope(e.db) as db:
        db.execute(update(Touch).where(col(Touch.id) == invite.id).values(status=TouchStatus.SENT))
    got = c.post(f"/queue/{invite.id}/cancel-meeting", data={"csrf": csrf})
    assert "Meeting cancelled" in got.text and touch(e, invite.id or 0).status == TouchStatus.CANCELLED


def test_admins_see_touches_nobody_can_approve(web: tuple[Engine, Seed, TestClient, str]) -> None:
    e, s, c, _csrf = web
    assert 'id="orphans"' not in c.get("/queue").text  # a rep sees their own queue only
    admin = client(e)
    sign_in(admin, "admin@example.com")
    with session_scope(e.db) as db:  # alan's owner leaves; margaret has no owner at all
        db.execute(update(Contact).where(col(Contact.id) == s.contacts["Alan"]).values(owner="gone@example.com"))
    page = admin.get("/queue").text
    flag = page.split('id="orphans"')[1].split("</div>")[0]
    assert "gone@example.com (no user account)" in flag and "nobody" in flag


def test_the_nav_counts_replies_waiting_and_touches_expiring_today(web: tuple[Engine, Seed, TestClient, str]) -> None:
    e, s, c, _csrf = web
    page = c.get("/contacts").text
    assert 'id="badge-replies"' not in page
    # the two pricing follow-ups must be approved within 2 hours: they go stale today
    assert re.search(r'id="badge-expiring"[^>]*>2 expire today<', page)
    e.record([EvidenceIn("email.replied", datetime.now(UTC), "inbound", contact_id=s.contacts["Ada"],
                         data={"text": "Yes please"}),
              EvidenceIn("email.replied", datetime.now(UTC), "inbound", contact_id=s.contacts["Alan"],
                         data={"text": "Not mine"})])  # another rep's buyer
    assert re.search(r'id="badge-replies"[^>]*>1<', c.get("/contacts").text)
