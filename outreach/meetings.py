"""Meeting slots: without a connected calendar, the engine's own record of the meetings it proposed is
the calendar. A meeting touch books its slot when it is planned: the first one inside the buyer's and
the rep's working hours (each in their own zone) that overlaps no other open invite of the same rep or
the same buyer. Declined, expired, rejected and cancelled invites free their slot. A rep's edit moves
the meeting (a higher SEQUENCE of the same UID); cancelling a sent invite sends METHOD:CANCEL.

A rep with a connected calendar (`RepCalendar`, outreach.calendar_sync over CalDAV) also has its busy
times kept free, and each proposed meeting written there under the invite's UID."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import and_, exists, or_, select
from sqlmodel import Session, col

from channels.meeting import propose_slot
from outreach import tokens
from outreach.config import Settings
from outreach.contacts import contact_tz
from outreach.errors import InvalidInput, InvalidTransition
from outreach.kinds import Channel
from outreach.models import Contact, Evidence, Touch, TouchStatus, User
from outreach.one_off import ONE_OFF

# invites that hold their slot: not yet sent, or sent and not declined
HOLDING = (TouchStatus.PENDING, TouchStatus.APPROVED, TouchStatus.SENDING, TouchStatus.SENT)
LEAD = timedelta(days=2)  # a meeting is proposed at least this long after its invite goes out
CANCEL_STEP = "cancel"
RESCHEDULE_STEP = "reschedule"  # the new REQUEST of a moved sent invite (outreach.counters)
Interval = tuple[datetime, datetime]


class RepCalendar(Protocol):
    """A rep's own calendar: what the engine reads and writes there (outreach.calendar_sync.CalDavCalendars)."""

    def busy(self, rep: str, start: datetime, end: datetime, skip_uid: str | None = None) -> list[Interval]: ...

    def propose(self, rep: str, uid: str, start: datetime, end: datetime, title: str,
                attendee: str | None) -> bool: ...

    def remove(self, rep: str, uid: str) -> bool: ...


def _aware(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def rep_zone(session: Session, settings: Settings, owner: str | None) -> str:
    """The owning rep's time zone (their user's), else the project's."""
    if owner:
        tz = session.execute(select(col(User.timezone)).where(col(User.email) == owner.lower())).scalar_one_or_none()
        if tz:
            return str(tz)
    return settings.timezone


def working_hours(settings: Settings) -> tuple[tuple[int, int], frozenset[int]]:
    window = settings.policy.send_windows.get("meeting")
    return (window.minutes, window.weekdays) if window else ((540, 1020), frozenset(range(5)))


def booked(session: Session, *, owner: str | None, contact_id: int, since: datetime,
           exclude: int | None = None) -> list[Interval]:
    """The slots held by open invites of this rep (any buyer) or of this buyer (any rep), ending after
    `since`: one query."""
    declined = exists().where(col(Evidence.touch_id) == col(Touch.id), col(Evidence.type) == "meeting.declined")
    who = col(Touch.contact_id) == contact_id
    if owner:
        who = or_(who, col(Contact.owner) == owner.lower())
    q = (select(col(Touch.meeting_start), col(Touch.meeting_end))
         .join(Contact, col(Contact.id) == col(Touch.contact_id))
         .where(col(Touch.channel) == Channel.MEETING, col(Touch.status).in_(HOLDING),
                col(Touch.meeting_start).is_not(None), col(Touch.meeting_end) > since, who, ~declined,
                # a CANCEL or a new REQUEST speaks for its invite: only the invite holds the slot
                ~and_(col(Touch.rule) == ONE_OFF, col(Touch.step).in_((CANCEL_STEP, RESCHEDULE_STEP)))))
    if exclude is not None:
        q = q.where(col(Touch.id) != exclude)
    return [(_aware(s), _aware(e)) for s, e in session.execute(q) if s is not None and e is not None]


def uid_of(settings: Settings, touch_id: int) -> str:
    return tokens.invite_uid(settings.server.secret_key, touch_id, settings.sender.domain)


def _title(contact: Contact) -> str:
    name = " ".join(p for p in (contact.first_name, contact.last_name) if p) or contact.email or contact.phone
    return f"Meeting with {name}" + (f" ({contact.company})" if contact.company else "")


def _elsewhere(calendar: RepCalendar | None, settings: Settings, touch: Touch, contact: Contact,
               start: datetime, end: datetime) -> list[Interval]:
    if calendar is None or not contact.owner:
        return []
    return calendar.busy(contact.owner, start, end, skip_uid=uid_of(settings, touch.id or 0))


def _write(calendar: RepCalendar | None, settings: Settings, touch: Touch, contact: Contact) -> None:
    if calendar is not None and contact.owner and touch.meeting_start and touch.meeting_end:
        calendar.propose(contact.owner, uid_of(settings, touch.id or 0), _aware(touch.meeting_start),
                         _aware(touch.meeting_end), _title(contact), contact.email)


def book(session: Session, settings: Settings, touch: Touch, contact: Contact,
         calendar: RepCalendar | None = None, earliest: datetime | None = None) -> Interval:
    """Give the meeting touch its slot (see the module's doc); ValueError when none fits in 14 days."""
    duration = timedelta(minutes=touch.meeting_minutes or 30)
    start_from = earliest or _aware(touch.due_at) + LEAD
    hours, weekdays = working_hours(settings)
    zones = [contact_tz(contact, settings.timezone).key, rep_zone(session, settings, contact.owner)]
    horizon = start_from + timedelta(days=15)
    busy = booked(session, owner=contact.owner, contact_id=contact.id or 0, since=start_from, exclude=touch.id)
    busy += _elsewhere(calendar, settings, touch, contact, start_from, horizon)
    try:
        start = propose_slot(earliest=start_from, duration=duration, zones=zones, hours=hours, weekdays=weekdays,
                             busy=busy)
    except ValueError:  # the rep's and the buyer's hours never overlap: the buyer's hours win
        start = propose_slot(earliest=start_from, duration=duration, zones=zones[:1], hours=hours,
                             weekdays=weekdays, busy=busy)
    touch.meeting_start, touch.meeting_end = start, start + duration
    session.add(touch)
    _write(calendar, settings, touch, contact)
    return start, start + duration


def book_unbooked(session: Session, settings: Settings, calendar: RepCalendar | None = None,
                  contact_ids: Sequence[int] | None = None) -> int:
    """Book a slot for every open meeting touch that has none (just planned, or its send time moved),
    oldest due first so earlier invites get earlier slots; only `contact_ids`' when given (evidence
    for a few buyers need not look at everybody's). Returns how many it booked."""
    q = (select(Touch, Contact).join(Contact, col(Contact.id) == col(Touch.contact_id))
         .where(col(Touch.channel) == Channel.MEETING, col(Touch.meeting_start).is_(None),
                col(Touch.status).in_((TouchStatus.PENDING, TouchStatus.APPROVED))))
    if contact_ids is not None:
        if not contact_ids:
            return 0
        q = q.where(col(Touch.contact_id).in_(list(contact_ids)))
    rows = session.execute(q.order_by(col(Touch.due_at), col(Touch.id))).all()
    done = 0
    for touch, contact in rows:
        try:
            book(session, settings, touch, contact, calendar)
        except ValueError:
            continue  # no free slot in two weeks: the invite is built as before, and a person sees it
        session.flush()  # the next touch sees this one's slot
        done += 1
    return done


def move(session: Session, settings: Settings, touch: Touch, contact: Contact, start: datetime,
         calendar: RepCalendar | None = None) -> Interval:
    """A rep's new time for a pending meeting: inside both working days and free, or InvalidInput
    saying why. The invite keeps its UID and takes a higher SEQUENCE."""
    if touch.channel != Channel.MEETING or touch.status != TouchStatus.PENDING:
        raise InvalidTransition(f"touch {touch.id} is not a pending meeting invite")
    duration = timedelta(minutes=touch.meeting_minutes or 30)
    start = _aware(start)
    if start < _aware(touch.due_at):
        raise InvalidInput("the meeting must start after its invite goes out")
    hours, weekdays = working_hours(settings)
    for label, zone in (("the buyer's", contact_tz(contact, settings.timezone).key),
                        ("the rep's", rep_zone(session, settings, contact.owner))):
        try:  # the first fitting minute from `start` is `start` itself
            fits = propose_slot(earliest=start, duration=duration, zones=[zone], hours=hours, weekdays=weekdays,
                                step_minutes=1, horizon_days=1) == start
        except ValueError:
            fits = False
        if not fits:
            local = start.astimezone(ZoneInfo(zone)).strftime("%a %H:%M")
            raise InvalidInput(f"{local} is outside {label} working hours ({zone})")
    busy = booked(session, owner=contact.owner, contact_id=contact.id or 0, since=start, exclude=touch.id)
    busy += _elsewhere(calendar, settings, touch, contact, start, start + duration)
    if any(b < start + duration and start < e for b, e in busy):
        raise InvalidInput("that time overlaps another meeting of the rep or the buyer")
    touch.meeting_start, touch.meeting_end = start, start + duration
    touch.meeting_sequence = (touch.meeting_sequence or 0) + 1
    session.add(touch)
    _write(calendar, settings, touch, contact)
    return start, start + duration


def cancel_sent(session: Session, touch: Touch, contact: Contact, actor: str, now: datetime,
                settings: Settings | None = None, calendar: RepCalendar | None = None) -> Touch:
    """Cancel a sent invite: the invite is marked cancelled (its slot is free) and a METHOD:CANCEL for
    the same UID, a higher SEQUENCE, goes out as a touch of its own."""
    if touch.channel != Channel.MEETING or touch.status != TouchStatus.SENT:
        raise InvalidTransition(f"touch {touch.id} is not a sent meeting invite")
    touch.status, touch.reason, touch.updated_at = TouchStatus.CANCELLED, f"meeting cancelled by {actor}", now
    # a person's act, like a one-off message: no template, not held by caps or a pause
    cancel = Touch(contact_id=contact.id or 0, dedupe_key=f"{CANCEL_STEP}:{touch.id}", stage=contact.stage,
                   stage_entry=contact.stage_entry, rule=ONE_OFF, step=CANCEL_STEP, interaction=touch.interaction,
                   content="", channel=Channel.MEETING, channel_reason=f"set by {actor}", channel_fixed=True,
                   status=TouchStatus.APPROVED, due_at=now, meeting_minutes=touch.meeting_minutes,
                   meeting_start=touch.meeting_start, meeting_end=touch.meeting_end,
                   meeting_sequence=(touch.meeting_sequence or 0) + 1, evidence_id=touch.evidence_id,
                   subject_override=f"Cancelled: {touch.subject_override or 'meeting'}",
                   body_override=f"{actor} cancelled this meeting.", created_at=now, updated_at=now)
    session.add_all([touch, cancel])
    session.flush()
    if calendar is not None and settings is not None and contact.owner:
        calendar.remove(contact.owner, uid_of(settings, touch.id or 0))
    return cancel


def invite_of(touch: Touch) -> int:
    """The touch whose UID an invite carries: a cancel (or a reschedule) speaks for the invite it changes."""
    if touch.step in (CANCEL_STEP, RESCHEDULE_STEP) and touch.dedupe_key.startswith(f"{touch.step}:"):
        return int(touch.dedupe_key.split(":")[1])
    return touch.id or 0
