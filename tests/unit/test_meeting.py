"""Meeting invites (iCalendar REQUEST), RSVP parsing (REPLY) and slot proposal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar

from channels.meeting import REPLY_EVENT, build_invite, parse_replies, propose_slot
from tests.support import FIXTURES

CALENDARS = FIXTURES / "calendar"
BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2025, 3, 5, 9, 30, 15, tzinfo=UTC)


def invite(**overrides: object) -> str:
    args: dict[str, object] = dict(
        uid="touch-44@outreach.vendor.example", sequence=3, start=datetime(2025, 3, 6, 15, 0, tzinfo=BERLIN),
        duration=timedelta(minutes=30), title="Intro call: Vendor, Buyer", description="Agenda:\n1. Close; 2. Q&A",
        organizer_email="reply+t44m3x@reply.vendor.example", organizer_name="Ann Rep",
        attendee_email="dana@buyer.example", attendee_name="Dana Buyer", now=NOW,
    )
    args.update(overrides)
    return build_invite(**args)  # type: ignore[arg-type]


def test_invite_round_trips_with_the_itip_properties() -> None:
    text = invite()
    assert "\r\n" in text and "\n" not in text.replace("\r\n", "")  # RFC 5545 line endings
    assert "DTSTART:20250306T140000Z" in text and "DTEND:20250306T143000Z" in text
    calendar = Calendar.from_ical(text)
    assert str(calendar["METHOD"]) == "REQUEST"
    assert str(calendar["VERSION"]) == "2.0"
    assert str(calendar["PRODID"]).startswith("-//outreach//")
    assert "UID" not in calendar  # only the event carries the UID iTIP keys on
    events: list[Any] = calendar.walk("VEVENT")
    assert len(events) == 1
    event = events[0]
    assert str(event["UID"]) == "touch-44@outreach.vendor.example"
    assert int(event["SEQUENCE"]) == 3
    assert event["DTSTAMP"].dt == datetime(2025, 3, 5, 9, 30, 15, tzinfo=UTC)
    assert event["DTSTART"].dt == datetime(2025, 3, 6, 14, 0, tzinfo=UTC)
    assert event["DTSTART"].dt.utcoffset() == timedelta(0)
    assert event["DTEND"].dt - event["DTSTART"].dt == timedelta(minutes=30)
    assert str(event["SUMMARY"]) == "Intro call: Vendor, Buyer"
    assert str(event["DESCRIPTION"]) == "Agenda:\n1. Close; 2. Q&A"
    assert (str(event["STATUS"]), str(event["TRANSP"])) == ("CONFIRMED", "OPAQUE")
    organizer = event["ORGANIZER"]
    assert str(organizer) == "mailto:reply+t44m3x@reply.vendor.example"
    assert organizer.params["CN"] == "Ann Rep"
    attendee = event["ATTENDEE"]
    assert str(attendee) == "mailto:dana@buyer.example"
    assert dict(attendee.params) == {"CN": "Dana Buyer", "ROLE": "REQ-PARTICIPANT", "PARTSTAT": "NEEDS-ACTION",
                                     "RSVP": "TRUE"}


def test_invite_without_attendee_name_has_no_cn() -> None:
    event: Any = Calendar.from_ical(invite(attendee_name=None)).walk("VEVENT")[0]
    assert "CN" not in event["ATTENDEE"].params
    assert event["ATTENDEE"].params["PARTSTAT"] == "NEEDS-ACTION"


@pytest.mark.parametrize("overrides", [
    {"start": datetime(2025, 3, 6, 15, 0)},
    {"now": datetime(2025, 3, 5, 9, 0)},
    {"duration": timedelta(0)},
    {"sequence": -1},
    {"uid": ""},
])
def test_invite_rejects_bad_arguments(overrides: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        invite(**overrides)


def test_an_invite_is_not_a_reply_but_its_answer_is() -> None:
    text = invite()
    assert parse_replies(text) == []
    answer = text.replace("METHOD:REQUEST", "METHOD:REPLY").replace("PARTSTAT=NEEDS-ACTION", "PARTSTAT=ACCEPTED")
    [reply] = parse_replies(answer)
    assert (reply.uid, reply.partstat, reply.attendee, reply.sequence) == (
        "touch-44@outreach.vendor.example", "ACCEPTED", "dana@buyer.example", 3)


@pytest.mark.parametrize(("name", "partstat", "attendee", "sequence", "dtstamp", "comment"), [
    ("google_reply_accepted.ics", "ACCEPTED", "dana@buyer.example", 1,
     datetime(2025, 3, 5, 10, 20, 13, tzinfo=UTC), None),
    ("google_reply_declined.ics", "DECLINED", "dana@buyer.example", 2,
     datetime(2025, 3, 5, 11, 15, tzinfo=UTC), None),
    ("outlook_reply_tentative.ics", "TENTATIVE", "pat.mueller@buyer.example", 1,
     datetime(2025, 3, 5, 10, 31, 40, tzinfo=UTC), "I might be a few minutes late."),
    ("outlook_reply_declined.ics", "DECLINED", "pat.mueller@buyer.example", 1,
     datetime(2025, 3, 5, 10, 45, 2, tzinfo=UTC), None),  # Outlook's empty "\n\n" comment
])
def test_replies_from_google_and_outlook(name: str, partstat: str, attendee: str, sequence: int,
                                         dtstamp: datetime, comment: str | None) -> None:
    data = (CALENDARS / name).read_bytes()
    for ics in (data, data.decode("utf-8"), b"\xef\xbb\xbf" + data):
        [reply] = parse_replies(ics)
        assert reply.uid == "touch-44@outreach.vendor.example"
        assert (reply.partstat, reply.attendee, reply.sequence) == (partstat, attendee, sequence)
        assert (reply.dtstamp, reply.comment) == (dtstamp, comment)
        assert REPLY_EVENT[reply.partstat] == f"meeting.{partstat.lower()}"


def test_outlook_cn_with_comma_is_kept() -> None:
    [reply] = parse_replies((CALENDARS / "outlook_reply_tentative.ics").read_bytes())
    assert reply.attendee_name == "Müller, Pat"


def test_request_is_ignored() -> None:
    assert parse_replies((CALENDARS / "google_request.ics").read_bytes()) == []


@pytest.mark.parametrize("ics", [(CALENDARS / "broken.ics").read_bytes(), "", "hello", "BEGIN:VEVENT\nEND:VEVENT\n"])
def test_unparseable_is_value_error(ics: str | bytes) -> None:
    with pytest.raises(ValueError):
        parse_replies(ics)


def test_several_attendees_delegation_and_missing_uid() -> None:
    ics = "\r\n".join([
        "BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//x//EN", "METHOD:REPLY",
        "BEGIN:VEVENT", "UID:u-1", "SEQUENCE:x", "DTSTAMP:20250305T100000",
        "ATTENDEE;PARTSTAT=accepted:mailto:A@X.example",
        "ATTENDEE;PARTSTAT=DELEGATED;DELEGATED-TO=\"mailto:c@x.example\":mailto:b@x.example",
        "ATTENDEE:urn:uuid:not-an-address", "END:VEVENT",
        "BEGIN:VEVENT", "ATTENDEE;PARTSTAT=ACCEPTED:mailto:d@x.example", "END:VEVENT",
        "END:VCALENDAR", ""])
    replies = parse_replies(ics)
    assert [(r.uid, r.attendee, r.partstat, r.sequence) for r in replies] == [
        ("u-1", "a@x.example", "ACCEPTED", 0), ("u-1", "b@x.example", "DELEGATED", 0)]
    assert replies[0].dtstamp == datetime(2025, 3, 5, 10, 0, tzinfo=UTC)  # floating DTSTAMP read as UTC
    assert "DELEGATED" not in REPLY_EVENT


WORKDAYS = frozenset(range(5))
NINE_TO_FIVE = (540, 1020)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(("earliest", "zones", "minutes", "expected"), [
    # Berlin and New York overlap 15:00-17:00 Berlin = 9:00-11:00 New York.
    (utc(2025, 1, 6, 6, 0), ["Europe/Berlin", "America/New_York"], 30, utc(2025, 1, 6, 14, 0)),
    # Rounded up to the 30-minute step; an exact step is kept.
    (utc(2025, 1, 6, 13, 7), ["Europe/London"], 30, utc(2025, 1, 6, 13, 30)),
    (utc(2025, 1, 6, 13, 30), ["Europe/London"], 30, utc(2025, 1, 6, 13, 30)),
    # Ending exactly at 17:00 fits; one hour from 16:30 does not, so the next morning.
    (utc(2025, 1, 6, 16, 30), ["Europe/London"], 30, utc(2025, 1, 6, 16, 30)),
    (utc(2025, 1, 6, 16, 30), ["Europe/London"], 60, utc(2025, 1, 7, 9, 0)),
    # Saturday: Monday morning.
    (utc(2025, 1, 11, 10, 0), ["Europe/London"], 30, utc(2025, 1, 13, 9, 0)),
    # Across the date line: Auckland Friday 13:00 is Los Angeles Thursday 16:00, a workday in both.
    (utc(2025, 1, 10, 0, 0), ["Pacific/Auckland", "America/Los_Angeles"], 30, utc(2025, 1, 10, 0, 0)),
    # ...but from LA's Thursday evening the next shared workday slot is LA Monday noon = Auckland Tuesday 9:00.
    (utc(2025, 1, 10, 2, 0), ["Pacific/Auckland", "America/Los_Angeles"], 30, utc(2025, 1, 13, 20, 0)),
    # Same wall clock, different date: Honolulu Friday 9:00 is Kiritimati Saturday 9:00.
    (utc(2025, 1, 10, 19, 0), ["Pacific/Honolulu", "Pacific/Kiritimati"], 30, utc(2025, 1, 13, 19, 0)),
    # DST: New York moved to UTC-4 on 9 March 2025, London only on 30 March.
    (utc(2025, 3, 7, 12, 0), ["Europe/London", "America/New_York"], 30, utc(2025, 3, 7, 14, 0)),
    (utc(2025, 3, 10, 12, 0), ["Europe/London", "America/New_York"], 30, utc(2025, 3, 10, 13, 0)),
    (utc(2025, 3, 8, 12, 0), ["America/New_York"], 30, utc(2025, 3, 10, 13, 0)),
    # A :45 offset: 9:00 in Kathmandu is 03:15 UTC, off the UTC step grid, so 9:15 local.
    (utc(2025, 1, 6, 3, 0), ["Asia/Kathmandu"], 30, utc(2025, 1, 6, 3, 30)),
    # A non-UTC earliest is honoured as the same instant.
    (datetime(2025, 1, 6, 10, 0, tzinfo=BERLIN), ["Europe/Berlin"], 30, utc(2025, 1, 6, 9, 0)),
])
def test_propose_slot(earliest: datetime, zones: list[str], minutes: int, expected: datetime) -> None:
    duration = timedelta(minutes=minutes)
    slot = propose_slot(earliest=earliest, duration=duration, zones=zones, hours=NINE_TO_FIVE, weekdays=WORKDAYS)
    assert slot == expected
    assert slot.utcoffset() == timedelta(0)
    for zone in zones:
        begin, end = slot.astimezone(ZoneInfo(zone)), (slot + duration).astimezone(ZoneInfo(zone))
        assert begin.weekday() in WORKDAYS
        assert 9 * 60 <= begin.hour * 60 + begin.minute and end.hour * 60 + end.minute <= 17 * 60


def test_propose_slot_respects_custom_days_hours_and_step() -> None:
    slot = propose_slot(earliest=utc(2025, 1, 6, 0, 0), duration=timedelta(minutes=45), zones=["Asia/Dubai"],
                        hours=(600, 660), weekdays=frozenset({6}), step_minutes=15)
    assert slot == utc(2025, 1, 12, 6, 0)  # Sunday 10:00 in Dubai (UTC+4), the Gulf work week


@pytest.mark.parametrize("kwargs", [
    {"zones": ["Asia/Tokyo", "America/New_York"], "hours": (540, 720)},  # no overlap at all
    {"zones": ["Europe/London"], "duration": timedelta(hours=9)},  # longer than the day
    {"zones": ["Europe/London"], "weekdays": frozenset({5}), "horizon_days": 4},  # Saturday beyond horizon
    {"zones": ["Mars/Olympus_Mons"]},
    {"zones": []},
    {"zones": ["Europe/London"], "earliest": datetime(2025, 1, 6, 9, 0)},
    {"zones": ["Europe/London"], "hours": (1020, 540)},
    {"zones": ["Europe/London"], "weekdays": frozenset()},
    {"zones": ["Europe/London"], "weekdays": frozenset({7})},
    {"zones": ["Europe/London"], "step_minutes": 0},
    {"zones": ["Europe/London"], "duration": timedelta(0)},
])
def test_propose_slot_errors(kwargs: dict[str, object]) -> None:
    args: dict[str, object] = dict(earliest=utc(2025, 1, 6, 0, 0), duration=timedelta(minutes=30),
                                   hours=NINE_TO_FIVE, weekdays=WORKDAYS)
    args.update(kwargs)
    with pytest.raises(ValueError):
        propose_slot(**args)  # type: ignore[arg-type]


def test_propose_slot_skips_busy_intervals() -> None:
    from datetime import UTC, datetime, timedelta

    monday = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
    half = timedelta(minutes=30)
    args = {"duration": half, "zones": ["UTC"], "hours": (540, 1020), "weekdays": frozenset(range(5))}
    assert propose_slot(earliest=monday, **args) == monday  # type: ignore[arg-type]
    busy = [(monday, monday + half), (monday + timedelta(minutes=45), monday + timedelta(hours=2))]
    # 9:30 would overlap 9:45-11:00; touching ends (9:00-9:30, then 11:00) do not overlap
    assert propose_slot(earliest=monday, busy=busy, **args) == monday + timedelta(hours=2)  # type: ignore[arg-type]
