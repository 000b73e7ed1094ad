"""Reading a calendar client's counter-proposal (METHOD:COUNTER): Outlook's, with its own VTIMEZONE,
comes out in UTC with its comment; a DURATION instead of DTEND, a REPLY and a proposal without a
start are read as they should be."""

from __future__ import annotations

from datetime import UTC, datetime

from channels.meeting import parse_counters, parse_replies
from tests.support import FIXTURES


def _outlook(start: str = "20261210T100000", end: str = "20261210T103000") -> str:
    ics = (FIXTURES / "calendar" / "outlook_counter.ics").read_text()
    for key, value in {"UID": "touch-7.abc@example.com", "TO": "reply+x@reply.example.com", "START": start,
                       "END": end, "SEQUENCE": "2", "COMMENT": "Thursday suits me better."}.items():
        ics = ics.replace("{{" + key + "}}", value)
    return ics


def test_an_outlook_counter_in_its_own_zone() -> None:
    (counter,) = parse_counters(_outlook())
    assert counter.uid == "touch-7.abc@example.com" and counter.attendee == "grace@cobol.example"
    assert counter.start == datetime(2026, 12, 10, 15, 0, tzinfo=UTC)  # 10:00 Eastern Standard Time
    assert counter.end == datetime(2026, 12, 10, 15, 30, tzinfo=UTC)
    assert counter.sequence == 2 and counter.comment == "Thursday suits me better."
    assert parse_replies(_outlook()) == []  # a proposal is no RSVP


def test_duration_reply_and_broken_proposals() -> None:
    base = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//x//y//EN\r\nMETHOD:{m}\r\nBEGIN:VEVENT\r\nUID:u1\r\n"
            "DTSTAMP:20261201T100000Z\r\n{when}ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:Ann@Buyer.example\r\n"
            "END:VEVENT\r\nEND:VCALENDAR\r\n")
    (c,) = parse_counters(base.format(m="COUNTER", when="DTSTART:20261210T090000Z\r\nDURATION:PT45M\r\n"))
    assert (c.start, c.end, c.attendee) == (datetime(2026, 12, 10, 9, tzinfo=UTC),
                                            datetime(2026, 12, 10, 9, 45, tzinfo=UTC), "ann@buyer.example")
    assert parse_counters(base.format(m="REPLY", when="DTSTART:20261210T090000Z\r\n")) == []
    assert parse_counters(base.format(m="COUNTER", when="")) == []  # no time proposed
    assert parse_counters(base.format(m="COUNTER", when="DTSTART;VALUE=DATE:20261210\r\n")) == []
