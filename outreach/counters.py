"""A buyer's counter-proposal moves the meeting (docs/REPS_DAY.md, "A buyer proposes another time").

A calendar client's "propose a new time" mails the organizer an iTIP METHOD:COUNTER (RFC 5546
section 3.2.7): the invite's UID with the times the attendee would rather have. The engine records it
as `meeting.countered` evidence and, when the proposed time lies inside the buyer's and the rep's
working days and overlaps no other meeting of either (nor a busy time in the rep's connected
calendar), accepts it the way RFC 5546 says an organizer does: the invite's meeting moves, and a new
REQUEST of the same UID with a higher SEQUENCE goes out at once, as a touch of its own. A proposal
that does not fit moves nothing: the evidence says why, and the rep answers the buyer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import update
from sqlmodel import Session, col

from channels.base import OutgoingMessage
from channels.meeting import propose_slot
from outreach.config import Settings
from outreach.contacts import contact_tz
from outreach.kinds import COUNTERED, Channel, TouchStatus
from outreach.meetings import RESCHEDULE_STEP, RepCalendar, booked, rep_zone, uid_of, working_hours
from outreach.models import Contact, Evidence, Touch
from outreach.one_off import ONE_OFF

# the invite as its buyer sees it now: title and description for the new REQUEST
Render = Callable[[Touch, Contact], OutgoingMessage]


@dataclass(frozen=True)
class CounterOutcome:
    evidence_id: int
    moved: bool
    why: str  # "moved to ..." or why not
    reschedule_id: int | None = None


def _aware(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _problem(session: Session, settings: Settings, invite: Touch, contact: Contact, start: datetime,
             end: datetime, now: datetime, calendar: RepCalendar | None) -> str | None:
    """Why the proposed slot cannot be taken, or None when it can."""
    if invite.channel != Channel.MEETING or invite.status != TouchStatus.SENT:
        return f"the invite is {invite.status}, not a sent invite"
    if start <= now:
        return "the proposed time has passed"
    hours, weekdays = working_hours(settings)
    for label, zone in (("the buyer's", contact_tz(contact, settings.timezone).key),
                        ("the rep's", rep_zone(session, settings, contact.owner))):
        try:  # the first fitting minute from `start` is `start` itself when the slot fits
            fits = propose_slot(earliest=start, duration=end - start, zones=[zone], hours=hours, weekdays=weekdays,
                                step_minutes=1, horizon_days=1) == start
        except ValueError:
            fits = False
        if not fits:
            return f"{start.astimezone(ZoneInfo(zone)).strftime('%a %H:%M')} is outside {label} working hours ({zone})"
    busy = booked(session, owner=contact.owner, contact_id=contact.id or 0, since=start, exclude=invite.id)
    if calendar is not None and contact.owner:
        busy += calendar.busy(contact.owner, start, end, skip_uid=uid_of(settings, invite.id or 0))
    if any(b < end and start < e for b, e in busy):
        return "it overlaps another meeting of the rep or the buyer"
    return None


def apply_counters(session: Session, settings: Settings, recorded: list[Evidence], now: datetime,
                   render: Render, calendar: RepCalendar | None = None) -> list[CounterOutcome]:
    """Move the meeting of each counter-proposal in `recorded` that fits (see the module's doc)."""
    out = []
    for ev in recorded:
        if ev.type != COUNTERED or ev.touch_id is None:
            continue
        invite = session.get_one(Touch, ev.touch_id)
        contact = session.get_one(Contact, invite.contact_id)
        start = _aware(datetime.fromisoformat(str(ev.data["proposed_start"])))
        end = _aware(datetime.fromisoformat(str(ev.data["proposed_end"])))
        why = _problem(session, settings, invite, contact, start, end, now, calendar)
        if why is not None:
            _note(session, ev, {"outcome": f"not moved: {why}"})
            out.append(CounterOutcome(ev.id or 0, False, why))
            continue
        shown = render(invite, contact)  # the title and text the buyer has, before the time changes
        invite.meeting_start, invite.meeting_end = start, end
        invite.meeting_sequence = sequence = (invite.meeting_sequence or 0) + 1
        invite.updated_at = now
        # a person's answer, like a cancel: no template, not held by the caps or a pause
        new = Touch(contact_id=contact.id or 0, dedupe_key=f"{RESCHEDULE_STEP}:{invite.id}:{sequence}",
                    stage=contact.stage, stage_entry=contact.stage_entry, rule=ONE_OFF, step=RESCHEDULE_STEP,
                    interaction=invite.interaction, content="", channel=Channel.MEETING,
                    channel_reason="the buyer proposed this time", channel_fixed=True,
                    status=TouchStatus.APPROVED, due_at=now, meeting_minutes=int((end - start).total_seconds() // 60),
                    meeting_start=start, meeting_end=end, meeting_sequence=sequence, evidence_id=ev.id,
                    subject_override=shown.subject, body_override=shown.text, created_at=now, updated_at=now)
        session.add_all([invite, new])
        session.flush()
        moved = f"moved to {start.isoformat().replace('+00:00', 'Z')} (sequence {sequence})"
        _note(session, ev, {"outcome": moved, "reschedule_touch": new.id})
        if calendar is not None and contact.owner:
            calendar.propose(contact.owner, uid_of(settings, invite.id or 0), start, end,
                             shown.subject or "Meeting", contact.email)
        out.append(CounterOutcome(ev.id or 0, True, moved, new.id))
    return out


def _note(session: Session, ev: Evidence, more: dict[str, object]) -> None:
    """Add to a recorded counter's data (recorded evidence is a plain row, not in the session)."""
    session.execute(update(Evidence).where(col(Evidence.id) == ev.id).values(data={**ev.data, **more}))
