"""Meeting invites and RSVPs in iCalendar (RFC 5545) with iTIP semantics (RFC 5546).

`build_invite` writes the METHOD:REQUEST body sent to a buyer, `parse_replies` reads the
METHOD:REPLY that their calendar (Google, Outlook, Apple...) mails back to the organizer, and
`propose_slot` picks a time that is inside working hours for everybody involved.
Pure functions: no database, no clock (callers pass `now`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from icalendar import Calendar, Component, Event, vCalAddress
from icalendar.enums import STATUS, TRANSP

PRODID = "-//outreach//outreach meeting invites//EN"

# iTIP PARTSTAT of a REPLY -> the engine's event name (SPEC section 9). Other values
# (DELEGATED, NEEDS-ACTION) have no event: the engine records them on the touch only.
REPLY_EVENT = {
    "ACCEPTED": "meeting.accepted",
    "DECLINED": "meeting.declined",
    "TENTATIVE": "meeting.tentative",
}

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class CalendarReply:
    """One attendee's answer to an invite. `uid` is the invite's UID (the engine's key back to the
    touch), `partstat` is upper-case (ACCEPTED, DECLINED, TENTATIVE, DELEGATED, ...), `attendee` is
    the bare e-mail address, lower-cased. `dtstamp` is aware UTC or None; `comment` is the note the
    attendee typed, if any."""

    uid: str
    partstat: str
    attendee: str
    sequence: int = 0
    dtstamp: datetime | None = None
    comment: str | None = None
    attendee_name: str | None = None


@dataclass(frozen=True)
class InviteAttendee:
    """One more ATTENDEE of an invite (RFC 5545 3.2.16/3.2.12/3.2.17): a buyer who is asked to answer
    (REQ-PARTICIPANT, NEEDS-ACTION, RSVP=TRUE), or one of the seller's people the engine booked
    (`rsvp=False`, ACCEPTED; the organizing rep takes ROLE=CHAIR)."""

    email: str
    name: str | None = None
    role: str = "REQ-PARTICIPANT"
    rsvp: bool = True


@dataclass(frozen=True)
class CalendarCounter:
    """An attendee's counter-proposal (iTIP METHOD:COUNTER, RFC 5546 section 3.2.7): the invite's UID
    and SEQUENCE with the start and end they would rather have, aware UTC."""

    uid: str
    attendee: str
    start: datetime
    end: datetime
    sequence: int = 0
    dtstamp: datetime | None = None
    comment: str | None = None


def build_invite(*, uid: str, sequence: int, start: datetime, duration: timedelta, title: str,
                 description: str, organizer_email: str, organizer_name: str, attendee_email: str,
                 attendee_name: str | None, now: datetime, cancel: bool = False,
                 others: Sequence[InviteAttendee] = ()) -> str:
    """Return an iCalendar METHOD:REQUEST with one VEVENT, times in UTC; with `cancel`, the
    METHOD:CANCEL that removes it (STATUS:CANCELLED, the same UID, a higher SEQUENCE).

    Re-sending with the same `uid` and a higher `sequence` updates the invite in the attendee's
    calendar (RFC 5546 section 2.1.4). Raises ValueError for naive datetimes or a non-positive
    duration."""
    if start.tzinfo is None or now.tzinfo is None:
        raise ValueError("start and now must be timezone-aware")
    if duration <= timedelta(0):
        raise ValueError("duration must be positive")
    if not uid or sequence < 0:
        raise ValueError("uid is required and sequence must be >= 0")
    begin = start.astimezone(UTC)
    organizer = vCalAddress.new(organizer_email, cn=organizer_name or None)
    attendees = [vCalAddress.new(attendee_email, cn=attendee_name or None, role="REQ-PARTICIPANT",
                                 partstat="NEEDS-ACTION", rsvp=True)]
    attendees += [vCalAddress.new(a.email, cn=a.name or None, role=a.role,
                                  partstat="NEEDS-ACTION" if a.rsvp else "ACCEPTED", rsvp=a.rsvp) for a in others]
    event = Event.new(
        uid=uid, sequence=sequence, stamp=now.astimezone(UTC), start=begin, end=begin + duration,
        summary=title, description=description, organizer=organizer, attendees=attendees,
        status=STATUS.CANCELLED if cancel else STATUS.CONFIRMED, transparency=TRANSP.OPAQUE,
    )
    calendar = Calendar.new(method="CANCEL" if cancel else "REQUEST", prodid=PRODID, subcomponents=[event])
    # Calendar.new adds an RFC 7986 calendar-level UID; iTIP clients key on the VEVENT's UID only,
    # and a second UID in the object only invites confusion.
    calendar.pop("UID", None)
    ical: bytes = calendar.to_ical()
    return ical.decode("utf-8")


def parse_replies(ics: str | bytes) -> list[CalendarReply]:
    """Every attendee answer in the METHOD:REPLY calendars of `ics`.

    Calendars with another METHOD (REQUEST, CANCEL, PUBLISH...) and events without a UID or
    attendee are ignored. Raises ValueError when `ics` is not iCalendar at all."""
    text = ics.decode("utf-8-sig", errors="replace") if isinstance(ics, bytes) else ics
    try:
        calendars = Calendar.from_ical(text, multiple=True)
    except ValueError as exc:
        raise ValueError(f"not an iCalendar object: {exc}") from exc
    calendars = [c for c in calendars if c.name == "VCALENDAR"]
    if not calendars:
        raise ValueError("not an iCalendar object: no VCALENDAR")
    replies: list[CalendarReply] = []
    for calendar in calendars:
        if str(calendar.get("METHOD", "")).strip().upper() != "REPLY":
            continue
        for event in calendar.walk("VEVENT"):
            replies.extend(_event_replies(event))
    return replies


def parse_counters(ics: str | bytes) -> list[CalendarCounter]:
    """Every counter-proposal in the METHOD:COUNTER calendars of `ics`. An event without a UID, an
    attendee or a start (or whose end is not after its start) is no proposal and is left out; a floating
    time is read as UTC. Raises ValueError when `ics` is not iCalendar at all."""
    counters: list[CalendarCounter] = []
    for calendar in _calendars(ics):
        if str(calendar.get("METHOD", "")).strip().upper() != "COUNTER":
            continue
        for event in calendar.walk("VEVENT"):
            counter = _event_counter(event)
            if counter is not None:
                counters.append(counter)
    return counters


def _calendars(ics: str | bytes) -> list[Component]:
    text = ics.decode("utf-8-sig", errors="replace") if isinstance(ics, bytes) else ics
    try:
        calendars = Calendar.from_ical(text, multiple=True)
    except ValueError as exc:
        raise ValueError(f"not an iCalendar object: {exc}") from exc
    return [c for c in calendars if c.name == "VCALENDAR"]


def _event_counter(event: Component) -> CalendarCounter | None:
    uid = str(event.get("UID", "")).strip()
    start = _when(event.get("DTSTART"))
    end = _when(event.get("DTEND"))
    duration = getattr(event.get("DURATION"), "dt", None)
    if end is None and start is not None and isinstance(duration, timedelta):
        end = start + duration
    attendees = [str(a).strip().lower().removeprefix("mailto:") for a in _as_list(event.get("ATTENDEE"))]
    attendees = [a for a in attendees if "@" in a]
    if not uid or start is None or end is None or end <= start or not attendees:
        return None
    try:
        sequence = int(str(event.get("SEQUENCE", 0)).strip() or 0)
    except ValueError:
        sequence = 0
    return CalendarCounter(uid=uid, attendee=attendees[0], start=start, end=end, sequence=sequence,
                           dtstamp=_dtstamp(event.get("DTSTAMP")), comment=_comment(event.get("COMMENT")))


def _when(value: Any) -> datetime | None:
    when = getattr(value, "dt", None)
    if not isinstance(when, datetime):
        return None  # an all-day date is no meeting time
    return when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)


def _event_replies(event: Component) -> list[CalendarReply]:
    uid = str(event.get("UID", "")).strip()
    if not uid:
        return []
    try:
        sequence = int(str(event.get("SEQUENCE", 0)).strip() or 0)
    except ValueError:
        sequence = 0
    comment = _comment(event.get("COMMENT"))
    dtstamp = _dtstamp(event.get("DTSTAMP"))
    replies = []
    for attendee in _as_list(event.get("ATTENDEE")):
        address = str(attendee).strip()
        if address[:7].lower() == "mailto:":
            address = address[7:]
        if "@" not in address:
            continue
        params = getattr(attendee, "params", {})
        partstat = str(params.get("PARTSTAT", "NEEDS-ACTION")).strip().upper()
        name = params.get("CN")
        replies.append(CalendarReply(uid=uid, partstat=partstat, attendee=address.strip().lower(),
                                     sequence=sequence, dtstamp=dtstamp, comment=comment,
                                     attendee_name=str(name) if name else None))
    return replies


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _comment(value: Any) -> str | None:
    # Outlook sends an empty-looking "COMMENT:\n\n" when the attendee typed nothing.
    text = "\n".join(str(v) for v in _as_list(value)).strip()
    return text or None


def _dtstamp(value: Any) -> datetime | None:
    when = getattr(value, "dt", None)
    if isinstance(when, datetime):
        # RFC 5545 requires DTSTAMP in UTC; a floating value is read as UTC rather than dropped.
        return when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)
    if isinstance(when, date):
        return datetime(when.year, when.month, when.day, tzinfo=UTC)
    return None


def propose_slot(*, earliest: datetime, duration: timedelta, zones: list[str], hours: tuple[int, int],
                 weekdays: frozenset[int], step_minutes: int = 30, horizon_days: int = 14,
                 busy: Sequence[tuple[datetime, datetime]] = ()) -> datetime:
    """The first slot at or after `earliest` (rounded up to a multiple of `step_minutes` in UTC)
    that starts on a working day, lies wholly inside working hours in every zone of `zones`, and
    overlaps none of the `busy` intervals (aware [start, end); touching ends do not overlap).

    `hours` are minutes of the local day (start, end), e.g. (540, 1020) for 9:00-17:00;
    `weekdays` uses 0 for Monday. Local wall-clock time is used, so DST changes shift the slot in
    UTC. Returns aware UTC; raises ValueError for bad arguments or when no slot starts within
    `horizon_days` of `earliest`."""
    if earliest.tzinfo is None:
        raise ValueError("earliest must be timezone-aware")
    if duration <= timedelta(0):
        raise ValueError("duration must be positive")
    if step_minutes <= 0 or horizon_days <= 0:
        raise ValueError("step_minutes and horizon_days must be positive")
    day_start, day_end = hours
    if not 0 <= day_start < day_end <= 1440:
        raise ValueError(f"working hours {hours} must satisfy 0 <= start < end <= 1440")
    if not weekdays or not weekdays <= frozenset(range(7)):
        raise ValueError("weekdays must be a non-empty subset of 0..6")
    tzs = _zones(zones)
    step = timedelta(minutes=step_minutes)
    since_epoch = earliest.astimezone(UTC) - _EPOCH
    slot = _EPOCH + -(-since_epoch // step) * step  # ceiling division keeps exact slots unchanged
    limit = earliest + timedelta(days=horizon_days)
    while slot < limit:
        if all(_fits(slot, duration, tz, day_start, day_end, weekdays) for tz in tzs) and \
                not any(b_start < slot + duration and slot < b_end for b_start, b_end in busy):
            return slot
        slot += step
    raise ValueError(f"no {duration} slot inside working hours of {', '.join(zones)} "
                     f"within {horizon_days} days")


def _zones(names: Iterable[str]) -> list[ZoneInfo]:
    tzs = []
    for name in names:
        try:
            tzs.append(ZoneInfo(name))
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {name!r}") from exc
    if not tzs:
        raise ValueError("at least one time zone is required")
    return tzs


def _fits(slot: datetime, duration: timedelta, tz: ZoneInfo, day_start: int, day_end: int,
          weekdays: frozenset[int]) -> bool:
    begin = slot.astimezone(tz)
    end = (slot + duration).astimezone(tz)
    if begin.weekday() not in weekdays:
        return False
    start_second = begin.hour * 3600 + begin.minute * 60 + begin.second
    # Wall-clock end relative to the start's local midnight; only an end at exactly 24:00 may
    # cross into the next day (and only when the working day ends at 1440).
    end_second = ((end.date() - begin.date()).days * 86400
                  + end.hour * 3600 + end.minute * 60 + end.second + (1 if end.microsecond else 0))
    return day_start * 60 <= start_second and end_second <= day_end * 60
