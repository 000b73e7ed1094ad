"""Meeting slots from the engine's own record of invites (no calendar connected), on SQLite and
PostgreSQL: no two open invites of one rep or one buyer overlap, every slot is inside both working
days, a moved send time moves the meeting (same UID, higher SEQUENCE), and a cancel is a CANCEL."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

from icalendar import Calendar
from sqlalchemy import select, update
from sqlmodel import col

from outreach.db import session_scope
from outreach.engine import Engine
from outreach.evidence import EvidenceIn
from outreach.meetings import booked, cancel_sent, move
from outreach.messages import build_message
from outreach.models import Contact, Touch, TouchStatus, User
from outreach.queue import edit, touch_json
from tests.support.web import seed

REP, REP_TZ = "rep@example.com", "America/New_York"


def _utc(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt


def _invites(engine: Engine) -> list[tuple[Touch, Contact]]:
    with session_scope(engine.db) as s:
        return [(t, c) for t, c in s.execute(
            select(Touch, Contact).join(Contact, col(Contact.id) == col(Touch.contact_id))
            .where(col(Touch.channel) == "meeting", col(Touch.status).in_(("pending_approval", "approved", "sent")))
            .order_by(col(Touch.id)))]


def _overlaps(slots: list[tuple[datetime, datetime]]) -> bool:
    slots = sorted(slots)
    return any(a_end > b_start for (_a, a_end), (b_start, _b) in pairwise(slots))


def _inside(start: datetime, end: datetime, zone: str) -> bool:
    a, b = start.astimezone(ZoneInfo(zone)), end.astimezone(ZoneInfo(zone))
    return a.weekday() < 5 and a.date() == b.date() and a.hour >= 9 and (b.hour, b.minute) <= (17, 0)


def _ics(engine: Engine, touch_id: int) -> dict[str, str]:
    with session_scope(engine.db) as s:
        t = s.get_one(Touch, touch_id)
        c = s.get_one(Contact, t.contact_id)
        msg = build_message(engine.settings, engine.project.content_dir, t, c, engine.project.rules)
    cal = Calendar.from_ical(msg.calendar or "")
    event = next(iter(cal.walk("VEVENT")))
    return {"method": str(cal["METHOD"]), "uid": str(event["UID"]), "sequence": str(event["SEQUENCE"]),
            "start": event["DTSTART"].dt.astimezone(UTC).isoformat()}


def test_invites_of_one_rep_and_one_buyer_never_overlap(engine: Engine) -> None:
    data = seed(engine)  # ada and grace viewed pricing: two pending invites of rep@example.com
    with session_scope(engine.db) as s:
        s.execute(update(User).where(col(User.email) == REP).values(timezone=REP_TZ))
        s.execute(update(Touch).values(meeting_start=None, meeting_end=None))  # booked again in the rep's zone
        engine.book_meetings(s)
    now = datetime.now(UTC)
    # linus views pricing; ada a second time (a second invite for the same buyer); alan (another rep) too
    engine.record([EvidenceIn("pricing.viewed", now, "api", contact_id=data.contacts[n], dedupe_key=f"pv-{n}")
                   for n in ("Linus", "Ada", "Alan")], now=now)
    invites = _invites(engine)
    per_rep: dict[str | None, list[tuple[datetime, datetime]]] = defaultdict(list)
    per_buyer: dict[int, list[tuple[datetime, datetime]]] = defaultdict(list)
    for t, c in invites:
        assert t.meeting_start is not None and t.meeting_end is not None, (t.id, c.first_name)
        slot = (_utc(t.meeting_start), _utc(t.meeting_end))
        per_rep[c.owner].append(slot)
        per_buyer[c.id or 0].append(slot)
        assert _inside(*slot, c.timezone or "UTC"), (c.first_name, slot)  # the buyer's working day
        if c.owner == REP:
            assert _inside(*slot, REP_TZ), (c.first_name, slot)  # and the rep's
        assert touch_json(t, c)["meeting_start"] == slot[0].isoformat().replace("+00:00", "Z")
    assert len(per_rep[REP]) >= 4 and len(per_buyer[data.contacts["Ada"]]) >= 2
    assert not any(_overlaps(v) for v in per_rep.values())
    assert not any(_overlaps(v) for v in per_buyer.values())

    # a declined invite frees its slot
    first, ada = next((t, c) for t, c in invites if c.first_name == "Ada")
    engine.record([EvidenceIn("meeting.declined", now, "inbound", touch_id=first.id, contact_id=ada.id)])
    with session_scope(engine.db) as s:
        held = booked(s, owner=REP, contact_id=ada.id or 0, since=now)
    assert (_utc(first.meeting_start or now), _utc(first.meeting_end or now)) not in held


def test_moving_the_send_time_moves_the_meeting_and_a_cancel_is_sent(engine: Engine) -> None:
    data = seed(engine)
    grace = data.contacts["Grace"]
    (invite, _c), = [(t, c) for t, c in _invites(engine) if c.id == grace]
    before = _ics(engine, invite.id or 0)
    assert (before["method"], before["sequence"]) == ("REQUEST", "0")
    now = datetime.now(UTC)
    with session_scope(engine.db) as s:  # a new send time (its trigger's `within` allows an hour more)
        edit(s, invite.id or 0, now, due_at=_utc(invite.due_at) + timedelta(hours=1))
        engine.book_meetings(s)
    after = _ics(engine, invite.id or 0)
    assert after["uid"] == before["uid"] and after["sequence"] == "1" and after["start"] >= before["start"]
    week_later = datetime.fromisoformat(after["start"]) + timedelta(days=7)
    with session_scope(engine.db) as s:  # the rep's own time for the meeting
        t = s.get_one(Touch, invite.id)
        move(s, engine.settings, t, s.get_one(Contact, grace), week_later)
    moved = _ics(engine, invite.id or 0)
    assert (moved["uid"], moved["sequence"], moved["start"]) == (before["uid"], "2", week_later.isoformat())

    with session_scope(engine.db) as s:  # the invite goes out, then the rep cancels it
        s.execute(update(Touch).where(col(Touch.id) == invite.id).values(status=TouchStatus.SENT))
        t = s.get_one(Touch, invite.id)
        cancel = cancel_sent(s, t, s.get_one(Contact, grace), REP, now)
        cancel_id = cancel.id or 0
    gone = _ics(engine, cancel_id)
    assert (gone["method"], gone["uid"], gone["sequence"]) == ("CANCEL", before["uid"], "3")
    with session_scope(engine.db) as s:
        assert s.get_one(Touch, invite.id).status == TouchStatus.CANCELLED
        assert s.get_one(Touch, cancel_id).status == TouchStatus.APPROVED  # the dispatcher sends it
