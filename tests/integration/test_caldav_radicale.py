"""Meetings against a rep's real CalDAV calendar: Radicale on a local port, with a busy event in it.
The engine never proposes a slot over the busy event or over another invite of the rep, writes each
proposed meeting into the calendar under the invite's UID, moves it there on a reschedule and removes
it on a cancel."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import caldav
import pytest
from sqlalchemy import select, update
from sqlmodel import col

from outreach import db
from outreach.calendar_sync import busy_in
from outreach.db import session_scope
from outreach.engine import Engine
from outreach.evidence import EvidenceIn
from outreach.meetings import cancel_sent, move, uid_of
from outreach.models import Contact, Touch, TouchStatus, User
from outreach.project import Project
from tests.support import make_project
from tests.support.caldav_server import radicale
from tests.support.web import seed

REP = "rep@example.com"


def _utc(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt


@pytest.fixture
def calendar(tmp_path: Path) -> Iterator[caldav.Calendar]:
    with radicale(tmp_path / "radicale") as url:
        client = caldav.DAVClient(url=url, username="rep", password="secret")
        yield client.principal().make_calendar(name="work", cal_id="work")


def _engine(tmp_path: Path, calendar: caldav.Calendar) -> Engine:
    root = make_project(tmp_path / "proj", f"sqlite:///{tmp_path / 'outreach.db'}",
                        calendars={REP: {"url": str(calendar.url), "username": "rep", "password": "secret"}})
    return Engine(Project.open(root))


def _events(calendar: caldav.Calendar) -> dict[str, tuple[datetime, datetime]]:
    out = {}
    for ev in calendar.events():
        for start, end in busy_in(ev.data, datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)):
            out[str(ev.icalendar_component["UID"])] = (start, end)
    return out


def test_meetings_around_the_reps_calendar(tmp_path: Path, calendar: caldav.Calendar) -> None:
    e = _engine(tmp_path, calendar)
    try:
        # where the first invite would go without the calendar: the rep is busy exactly then
        data = seed(e)
        with session_scope(e.db) as s:  # a rep in New York: working days that overlap the buyers'
            s.execute(update(User).where(col(User.email) == REP).values(timezone="America/New_York"))
            s.execute(update(Touch).values(meeting_start=None, meeting_end=None))
            e.book_meetings(s)
        with session_scope(e.db) as s:
            first = s.execute(select(Touch).where(col(Touch.channel) == "meeting")
                              .order_by(col(Touch.id))).scalars().first()
            assert first is not None and first.meeting_start is not None
            wanted = (_utc(first.meeting_start), _utc(first.meeting_start) + timedelta(hours=1))
            s.execute(update(Touch).values(meeting_start=None, meeting_end=None))
        for ev in calendar.events():
            ev.delete()  # the proposals of the first booking
        calendar.save_event(
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\nUID:dentist-1\r\n"
            f"DTSTAMP:20261201T000000Z\r\nDTSTART:{wanted[0]:%Y%m%dT%H%M%SZ}\r\nDTEND:{wanted[1]:%Y%m%dT%H%M%SZ}\r\n"
            "SUMMARY:Dentist\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
        with session_scope(e.db) as s:
            assert e.book_meetings(s) >= 2
        e.record([EvidenceIn("pricing.viewed", datetime.now(UTC), "api", contact_id=data.contacts["Linus"])])

        with session_scope(e.db) as s:
            invites = [(t, c) for t, c in s.execute(
                select(Touch, Contact).join(Contact, col(Contact.id) == col(Touch.contact_id))
                .where(col(Touch.channel) == "meeting", col(Contact.owner) == REP).order_by(col(Touch.id)))]
            uids = {t.id: uid_of(e.settings, t.id or 0) for t, _ in invites}
        slots = sorted((_utc(t.meeting_start), _utc(t.meeting_end)) for t, _ in invites
                       if t.meeting_start and t.meeting_end)
        assert len(slots) == len(invites) >= 3
        assert all(not (s < wanted[1] and wanted[0] < e_) for s, e_ in slots), "booked over the busy event"
        assert all(a[1] <= b[0] for a, b in pairwise(slots)), "two buyers, one slot"
        events = _events(calendar)
        assert events["dentist-1"] == wanted
        for t, _c in invites:  # each proposal is in the rep's calendar under the invite's UID
            assert events[uids[t.id]] == (_utc(t.meeting_start or wanted[0]), _utc(t.meeting_end or wanted[0]))

        # the rep moves one meeting a week later, then cancels another after it was sent
        moved, moved_contact = invites[0]
        later = _utc(moved.meeting_start or wanted[0]) + timedelta(days=7)
        with session_scope(e.db) as s:
            t = s.get_one(Touch, moved.id)
            move(s, e.settings, t, s.get_one(Contact, moved_contact.id), later, e.calendar)
        assert _events(calendar)[uids[moved.id]][0] == later
        gone, gone_contact = invites[1]
        with session_scope(e.db) as s:
            s.execute(update(Touch).where(col(Touch.id) == gone.id).values(status=TouchStatus.SENT))
            cancel_sent(s, s.get_one(Touch, gone.id), s.get_one(Contact, gone_contact.id), REP,
                        datetime.now(UTC), e.settings, e.calendar)
        assert uids[gone.id] not in _events(calendar)
    finally:
        db.dispose_all()


def test_an_unreachable_calendar_costs_only_its_busy_times(tmp_path: Path) -> None:
    root = make_project(tmp_path / "proj", f"sqlite:///{tmp_path / 'outreach.db'}",
                        calendars={REP: {"url": "http://127.0.0.1:9/rep/work/", "timeout": 2}})  # nothing there
    e = Engine(Project.open(root))
    try:
        seed(e)  # books the pricing follow-ups of ada and grace
        with session_scope(e.db) as s:
            booked = list(s.execute(select(Touch).where(col(Touch.channel) == "meeting")).scalars())
        assert len(booked) == 2 and all(t.meeting_start is not None for t in booked)
        assert booked[0].meeting_start != booked[1].meeting_start  # the engine's own record still holds
    finally:
        db.dispose_all()
