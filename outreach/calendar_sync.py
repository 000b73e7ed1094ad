"""A rep's connected CalDAV calendar, through the `caldav` library: the busy times the engine must
not book a meeting over, and the meetings it proposes written there (same UID as the invite, so a
move replaces the event and a cancel removes it). Imported only when `calendars:` is configured.

A calendar that cannot be reached costs its busy times, not the booking: the engine's own record
of invites still keeps meetings apart, and the failure is logged."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import caldav
from caldav.lib.error import DAVError
from icalendar import Calendar as ICalendar
from icalendar import Event as IEvent
from requests.exceptions import RequestException

from outreach.config import CalendarLink

log = logging.getLogger(__name__)
Interval = tuple[datetime, datetime]
PRODID = "-//outreach//rep calendar//EN"


def _utc(value: Any) -> datetime:
    """A DTSTART/DTEND value as aware UTC: a date is its whole day (UTC), a floating time is UTC."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, date):
        return datetime.combine(value, time(0), UTC)
    raise ValueError(f"not a date or time: {value!r}")


def busy_in(ics: str | bytes, start: datetime, end: datetime, skip_uid: str | None = None) -> list[Interval]:
    """The busy intervals of one calendar object within [start, end): events not marked free
    (TRANSP:TRANSPARENT) or cancelled; `skip_uid` is the event being moved."""
    out = []
    for ev in ICalendar.from_ical(ics).walk("VEVENT"):
        if str(ev.get("TRANSP", "OPAQUE")).upper() == "TRANSPARENT" or \
                str(ev.get("STATUS", "")).upper() == "CANCELLED" or (skip_uid and str(ev.get("UID")) == skip_uid):
            continue
        dtstart: Any = ev.get("DTSTART")  # icalendar's property types are a wide union
        dtend: Any = ev.get("DTEND")
        length: Any = ev.get("DURATION")
        if dtstart is None:
            continue
        b = _utc(dtstart.dt)
        if dtend is not None:
            e = _utc(dtend.dt)
        elif length is not None:
            e = b + length.dt
        else:  # RFC 5545: a date lasts its day, a date-time an instant
            e = b + (timedelta(days=1) if not isinstance(dtstart.dt, datetime) else timedelta(0))
        if b < end and start < e:
            out.append((b, e))
    return out


class CalDavCalendars:
    """The connected calendars of the reps in `links` (rep email -> CalendarLink)."""

    def __init__(self, links: Mapping[str, CalendarLink]) -> None:
        self.links = {k.lower(): v for k, v in links.items()}
        self._calendars: dict[str, Any] = {}

    def connected(self, rep: str) -> bool:
        return rep.lower() in self.links

    def _calendar(self, rep: str) -> Any:
        rep = rep.lower()
        if rep not in self._calendars:
            link = self.links[rep]
            client: Any = caldav.DAVClient(url=link.url, username=link.username or None, password=link.password or None,
                                      timeout=int(link.timeout))
            if link.calendar:
                calendars = client.principal().calendars()
                found = [c for c in calendars if link.calendar in (c.name, str(c.url))]
                if not found:
                    raise LookupError(f"{rep}'s CalDAV account has no calendar '{link.calendar}'")
                self._calendars[rep] = found[0]
            else:
                self._calendars[rep] = client.calendar(url=link.url)
        return self._calendars[rep]

    def busy(self, rep: str, start: datetime, end: datetime, skip_uid: str | None = None) -> list[Interval]:
        """The rep's busy times between `start` and `end` ([] when not connected or unreachable)."""
        if not self.connected(rep):
            return []
        try:
            found = self._calendar(rep).search(start=start, end=end, event=True, expand=True)
            return [iv for ev in found for iv in busy_in(ev.data, start, end, skip_uid)]
        except (DAVError, RequestException, LookupError, ValueError) as exc:
            log.warning("cannot read %s's calendar, booking from the engine's own record only: %s", rep, exc)
            return []

    def propose(self, rep: str, uid: str, start: datetime, end: datetime, title: str, attendee: str | None) -> bool:
        """Write (or move) the proposed meeting in the rep's calendar, tentative until the buyer accepts."""
        if not self.connected(rep):
            return False
        event = IEvent()
        event.add("UID", uid)
        event.add("DTSTAMP", datetime.now(UTC))
        event.add("DTSTART", start.astimezone(UTC))
        event.add("DTEND", end.astimezone(UTC))
        event.add("SUMMARY", title)
        event.add("STATUS", "TENTATIVE")
        if attendee:
            event.add("DESCRIPTION", f"Proposed to {attendee} by outreach")
        cal = ICalendar()
        cal.add("PRODID", PRODID)
        cal.add("VERSION", "2.0")
        cal.add_component(event)
        try:
            self._calendar(rep).save_event(cal.to_ical().decode())
            return True
        except (DAVError, RequestException, LookupError) as exc:
            log.warning("cannot write the proposed meeting to %s's calendar: %s", rep, exc)
            return False

    def remove(self, rep: str, uid: str) -> bool:
        """Take a cancelled meeting out of the rep's calendar."""
        if not self.connected(rep):
            return False
        try:
            self._calendar(rep).event_by_uid(uid).delete()
            return True
        except (DAVError, RequestException, LookupError) as exc:
            log.warning("cannot remove the cancelled meeting from %s's calendar: %s", rep, exc)
            return False
