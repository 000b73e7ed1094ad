"""Meetings with several people: the slot search over everybody's zone and busy times (a table), and
the invite that names every attendee with ROLE/PARTSTAT/RSVP (RFC 5545 3.2.16, 3.2.12, 3.2.17)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from icalendar import Calendar

from channels.meeting import InviteAttendee, build_invite
from outreach.meetings import Person, find_slot

MON = datetime(2026, 3, 2, tzinfo=UTC)  # the US is on summer time from 8 March, Europe from 29 March
NINE_TO_FIVE, WEEKDAYS = (540, 1020), frozenset(range(5))


def _utc(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC)


def P(zone: str, *busy: tuple[datetime, datetime], buyer: bool = True) -> Person:
    return Person(zone, tuple(busy), buyer)


@pytest.mark.parametrize(("people", "expected"), [
    # New York (14-22 UTC), Chicago (15-23 UTC), London (9-17 UTC): all three hold 15:00-17:00 UTC
    ([P("America/New_York"), P("America/Chicago"), P("Europe/London", buyer=False)], _utc(2, 15)),
    # the Chicago buyer is busy until 16:00: the next free half hour of all three
    ([P("America/New_York"), P("America/Chicago", (_utc(2, 15), _utc(2, 16))), P("Europe/London", buyer=False)],
     _utc(2, 16)),
    # the London expert is busy 16:00-17:00 too: Monday is full, Tuesday 15:00
    ([P("America/New_York"), P("America/Chicago", (_utc(2, 15), _utc(2, 16))),
      P("Europe/London", (_utc(2, 16), _utc(2, 17)), buyer=False)], _utc(3, 15)),
    # Honolulu (19-03 UTC) and London never overlap: the buyers' hours win, the seller's are dropped
    ([P("Pacific/Honolulu"), P("America/Los_Angeles"), P("Europe/London", buyer=False)], _utc(2, 19)),
    # Tokyo (00-08 UTC) and Los Angeles share 00:00-01:00 UTC, a Monday in LA only from Tuesday in Tokyo
    ([P("Asia/Tokyo"), P("America/Los_Angeles"), P("Europe/London", buyer=False)], _utc(3, 0)),
], ids=["common-hours", "one-busy", "two-busy-next-day", "seller-dropped", "across-the-date-line"])
def test_the_slot_suits_every_invitee(people: list[Person], expected: datetime) -> None:
    start = find_slot(people, earliest=MON, duration=timedelta(minutes=30), hours=NINE_TO_FIVE, weekdays=WEEKDAYS)
    assert start == expected


def test_buyers_whose_hours_never_meet_have_no_slot() -> None:
    with pytest.raises(ValueError, match="no 0:30:00 slot"):
        find_slot([P("Asia/Tokyo"), P("Europe/London")], earliest=MON, duration=timedelta(minutes=30),
                  hours=NINE_TO_FIVE, weekdays=WEEKDAYS)


def test_the_invite_names_every_attendee() -> None:
    ics = build_invite(uid="u1@example.com", sequence=0, start=_utc(3, 15), duration=timedelta(minutes=45),
                       title="Acme and Example", description="", organizer_email="reply+x@in.example.com",
                       organizer_name="Rita Reyes", attendee_email="champ@acme.example", attendee_name="Chad",
                       now=MON, others=[InviteAttendee("cfo@acme.example", "Carla"),
                                        InviteAttendee("rita@example.com", "Rita Reyes", "CHAIR", rsvp=False),
                                        InviteAttendee("sam@example.com", None, rsvp=False)])
    event = next(iter(Calendar.from_ical(ics).walk("VEVENT")))
    got = {str(a).removeprefix("mailto:"): (a.params["ROLE"], a.params["PARTSTAT"], a.params["RSVP"])
           for a in event["ATTENDEE"]}
    assert got == {"champ@acme.example": ("REQ-PARTICIPANT", "NEEDS-ACTION", "TRUE"),
                   "cfo@acme.example": ("REQ-PARTICIPANT", "NEEDS-ACTION", "TRUE"),
                   "rita@example.com": ("CHAIR", "ACCEPTED", "FALSE"),
                   "sam@example.com": ("REQ-PARTICIPANT", "ACCEPTED", "FALSE")}
    assert str(event["ORGANIZER"].params["CN"]) == "Rita Reyes"
