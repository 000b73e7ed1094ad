"""A buyer's "propose a new time" (an Outlook METHOD:COUNTER, tests/fixtures) through the Inbound Parse
route: a time that fits moves the sent invite's meeting and sends a new REQUEST of the same UID with a
higher SEQUENCE; a time outside the working day moves nothing and says why; both are on the timeline."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from icalendar import Calendar
from sqlalchemy import select, update
from sqlmodel import col

from outreach import tokens
from outreach.db import session_scope
from outreach.engine import Engine
from outreach.messages import build_message
from outreach.models import Contact, Evidence, Touch, TouchStatus
from tests.support import FIXTURES
from tests.support.web import client, seed, sign_in, touch

NY = ZoneInfo("America/New_York")


def _counter_mail(uid: str, to: str, start: datetime, sequence: int, comment: str) -> bytes:
    local = start.astimezone(NY)
    ics = (FIXTURES / "calendar" / "outlook_counter.ics").read_text()
    for key, value in {"UID": uid, "TO": to, "START": local.strftime("%Y%m%dT%H%M%S"),
                       "END": (local + timedelta(minutes=30)).strftime("%Y%m%dT%H%M%S"),
                       "SEQUENCE": str(sequence), "COMMENT": comment}.items():
        ics = ics.replace("{{" + key + "}}", value)
    encoded = base64.encodebytes(ics.encode()).decode()
    body = (FIXTURES / "sendgrid" / "inbound" / "outlook_counter_raw.txt").read_text()
    for key, value in {"TO": to, "COMMENT": comment, "CALENDAR_BASE64": encoded.strip()}.items():
        body = body.replace("{{" + key + "}}", value)
    return body.replace("\n", "\r\n").encode()


def _weekday_at(after: datetime, hour: int) -> datetime:
    day = (after + timedelta(days=3)).astimezone(NY).date()
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return datetime(day.year, day.month, day.day, hour, tzinfo=NY).astimezone(UTC)


def test_a_counter_proposal_moves_the_meeting(sqlite_engine: Engine) -> None:
    e = sqlite_engine
    s = seed(e)
    with session_scope(e.db) as db:  # Grace's pricing follow-up invite went out
        invite = db.execute(select(Touch).where(col(Touch.contact_id) == s.contacts["Grace"],
                                                col(Touch.channel) == "meeting")).scalar_one()
        db.execute(update(Touch).where(col(Touch.id) == invite.id).values(
            status=TouchStatus.SENT, sent_at=datetime.now(UTC)))
        iid, booked_at = invite.id or 0, invite.meeting_start
    assert booked_at is not None
    secret, domain = e.settings.server.secret_key, e.settings.sender.domain
    uid = tokens.invite_uid(secret, iid, domain)
    organizer = f"reply+{tokens.reply_token(secret, iid)}@{e.settings.sendgrid.inbound_domain}"
    c = client(e)
    url = f"/webhooks/sendgrid/inbound?token={tokens.short_mac(secret, 'inbound-parse', 24)}"
    headers = {"content-type": "multipart/form-data; boundary=xYzZY"}

    # 03:00 in New York is nobody's working day: nothing moves, and the timeline says why
    night = _weekday_at(datetime.now(UTC), 3)
    got = c.post(url, content=_counter_mail(uid, organizer, night, 0, "Could we do early?"), headers=headers)
    assert got.status_code == 200, got.text
    assert touch(e, iid).meeting_start == booked_at.replace(tzinfo=None) or touch(e, iid).meeting_start == booked_at

    # a weekday 10:00 in New York (15:00 UTC: the rep's day too) that is not the booked day
    wanted = _weekday_at(datetime.now(UTC), 10)
    if booked_at.replace(tzinfo=UTC).date() == wanted.date():
        wanted = _weekday_at(wanted, 10)
    got = c.post(url, content=_counter_mail(uid, organizer, wanted, 0, "Thursday morning suits me better."),
                 headers=headers)
    assert got.status_code == 200, got.text
    moved = touch(e, iid)
    assert moved.meeting_start is not None and moved.meeting_start.replace(tzinfo=UTC) == wanted
    assert moved.meeting_sequence == 1 and moved.status == TouchStatus.SENT
    with session_scope(e.db) as db:
        counters = db.execute(select(Evidence).where(col(Evidence.type) == "meeting.countered")
                              .order_by(col(Evidence.id))).scalars().all()
        assert [ev.touch_id for ev in counters] == [iid, iid]
        assert str(counters[0].data["outcome"]).startswith("not moved:") and "working hours" in str(
            counters[0].data["outcome"])
        assert str(counters[1].data["outcome"]).startswith("moved to")
        new = db.execute(select(Touch).where(col(Touch.step) == "reschedule")).scalar_one()
        assert (new.status, new.rule, new.evidence_id) == (TouchStatus.APPROVED, "one-off", counters[1].id)
        msg = build_message(e.settings, e.project.content_dir, new, db.get_one(Contact, new.contact_id),
                            e.project.rules)
    cal = Calendar.from_ical(msg.calendar or "")
    event = next(iter(cal.walk("VEVENT")))
    assert (str(cal["METHOD"]), str(event["UID"]), int(event["SEQUENCE"])) == ("REQUEST", uid, 1)
    assert event["DTSTART"].dt.astimezone(UTC) == wanted
    assert msg.subject and "Cancelled" not in msg.subject

    sign_in(c, "rep@example.com")
    timeline = c.get(f"/contacts/{s.contacts['Grace']}").text
    assert "Thursday morning suits me better." in timeline
