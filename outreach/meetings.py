"""Meeting slots: without a connected calendar, the engine's own record of the meetings it proposed is
the calendar. A meeting touch books its slot when it is planned: the first one inside the buyer's and
the rep's working hours (each in their own zone) that overlaps no other open invite of the same rep or
the same buyer. Declined, expired, rejected and cancelled invites free their slot. A rep's edit moves
the meeting (a higher SEQUENCE of the same UID); cancelling a sent invite sends METHOD:CANCEL.

A rep with a connected calendar (`RepCalendar`, outreach.calendar_sync over CalDAV) also has its busy
times kept free, and each proposed meeting written there under the invite's UID.

A meeting step with `attendees:` (outreach.accounts.rules.Attendees) invites more of the account (by
committee role) and the seller's experts: the slot is inside every invitee's working hours in their
own zone and free for all of them (each buyer's open invites, each seller's connected calendar), and
the touch keeps the list (`Touch.meeting_attendees`) that the invite and the RSVPs are read against."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Executable, and_, bindparam, exists, or_, select
from sqlmodel import Session, col

from channels.meeting import propose_slot
from outreach import batch_loads, tokens
from outreach.accounts.rules import AccountRules, Attendees
from outreach.batch_loads import reach_of
from outreach.config import Settings
from outreach.contacts import contact_tz
from outreach.errors import InvalidInput, InvalidTransition
from outreach.kinds import Channel
from outreach.models import Contact, Evidence, Touch, TouchStatus, User
from outreach.one_off import ONE_OFF
from outreach.policy import unreachable
from outreach.ruleset import Ruleset

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


@dataclass(frozen=True)
class Person:
    """Someone a meeting must suit: their time zone, their busy intervals, and which side they are on
    (when the seller's and the buyers' hours never overlap, the buyers' hours win)."""

    zone: str
    busy: tuple[Interval, ...] = ()
    buyer: bool = True


def find_slot(people: Sequence[Person], *, earliest: datetime, duration: timedelta,
              hours: tuple[int, int], weekdays: frozenset[int]) -> datetime:
    """The first slot inside every person's working hours (in their own zone) that overlaps nobody's
    busy time; else the first inside every buyer's hours; ValueError when none is within 14 days."""
    busy = [iv for p in people for iv in p.busy]
    zones = list(dict.fromkeys(p.zone for p in people))
    buyers = list(dict.fromkeys(p.zone for p in people if p.buyer)) or zones
    try:
        return propose_slot(earliest=earliest, duration=duration, zones=zones, hours=hours, weekdays=weekdays,
                            busy=busy)
    except ValueError:
        if buyers == zones:
            raise
        return propose_slot(earliest=earliest, duration=duration, zones=buyers, hours=hours, weekdays=weekdays,
                            busy=busy)


@dataclass(frozen=True)
class Invitee:
    """One more person an invite names: a member of the account (`contact_id`, their committee `role`)
    or one of the seller's people (`role` "organizer" for the owning rep, else the expert's name)."""

    email: str
    name: str | None
    zone: str
    role: str
    contact_id: int | None = None

    @property
    def buyer(self) -> bool:
        return self.contact_id is not None

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_json(data: dict[str, Any]) -> Invitee:
        return Invitee(email=str(data["email"]), name=data.get("name"), zone=str(data["zone"]),
                       role=str(data["role"]), contact_id=data.get("contact_id"))


def invitees(session: Session, settings: Settings, accounts: AccountRules, want: Attendees,
             contact: Contact) -> list[Invitee]:
    """Who a meeting with `contact` invites besides them: the account's members in `want.roles` that
    mail may reach (an address, consent, no suppression; the committee's order), the owning rep, and
    the experts `want.experts` names."""
    out: list[Invitee] = []
    if want.roles and contact.account_id:
        rank = {r: i for i, r in enumerate(want.roles)}
        members = session.execute(select(Contact).where(
            col(Contact.account_id) == contact.account_id, col(Contact.role).in_(want.roles),
            col(Contact.id) != contact.id, col(Contact.email).is_not(None))).scalars().all()
        suppressed = batch_loads.suppressions(session, [m.id for m in members if m.id is not None])
        for m in sorted(members, key=lambda m: (rank.get(m.role or "", 99), m.id or 0)):
            if unreachable(reach_of(m, suppressed.get(m.id or 0)), Channel.MEETING, settings.policy.email_consent):
                continue  # opted out or suppressed: a committee invite is mail to them too
            name = " ".join(p for p in (m.first_name, m.last_name) if p) or None
            out.append(Invitee(str(m.email).lower(), name, contact_tz(m, settings.timezone).key, m.role or "",
                               m.id))
    seller = [(contact.owner.lower(), "organizer")] if contact.owner else []
    seller += [(accounts.experts[x], x) for x in want.experts if x in accounts.experts]
    if seller:
        users = {str(e): (n, tz) for e, n, tz in session.execute(
            select(col(User.email), col(User.name), col(User.timezone))
            .where(col(User.email).in_([e for e, _ in seller])))}
        for email, role in seller:
            name, tz = users.get(email, (None, None))
            out.append(Invitee(email, name, tz or settings.timezone, role))
    seen = {(contact.email or "").lower()}
    unique = []
    for i in out:  # one line per address: the first wins
        if i.email not in seen:
            seen.add(i.email)
            unique.append(i)
    return unique


def attendees_of(touch: Touch) -> list[Invitee]:
    return [Invitee.from_json(d) for d in touch.meeting_attendees or []]


def wanted(rules: Ruleset | None, touch: Touch) -> Attendees | None:
    """The `meeting: attendees:` of the step or trigger that planned `touch`."""
    if rules is None:
        return None
    kind, _, name = touch.rule.partition(":")
    item = rules.step(name, touch.step) if kind == "playbook" else rules.trigger(name) if kind == "trigger" else None
    return item.meeting.attendees if item is not None and item.meeting is not None else None


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


@functools.cache
def _booked_queries(reps: bool, exclude: bool) -> tuple[Executable, Executable]:
    """booked's two statements, built once per shape (with or without reps, an invite left out) and
    bound to :buyers, :reps, :since and :exclude: building them was most of a booking's time."""
    # the invite's own contact declining frees the slot; one more attendee declining does not
    declined = exists().where(col(Evidence.touch_id) == col(Touch.id), col(Evidence.type) == "meeting.declined",
                              col(Evidence.contact_id) == col(Touch.contact_id))
    who: ColumnElement[bool] = col(Touch.contact_id).in_(bindparam("buyers", expanding=True))
    if reps:
        who = or_(who, col(Contact.owner).in_(bindparam("reps", expanding=True)))
    open_invites = [col(Touch.channel) == Channel.MEETING, col(Touch.status).in_(HOLDING),
                    col(Touch.meeting_start).is_not(None), col(Touch.meeting_end) > bindparam("since"), ~declined,
                    # a CANCEL or a new REQUEST speaks for its invite: only the invite holds the slot
                    ~and_(col(Touch.rule) == ONE_OFF, col(Touch.step).in_((CANCEL_STEP, RESCHEDULE_STEP)))]
    if exclude:
        open_invites.append(col(Touch.id) != bindparam("exclude"))
    mine = (select(col(Touch.meeting_start), col(Touch.meeting_end))
            .join(Contact, col(Contact.id) == col(Touch.contact_id)).where(who, *open_invites))
    # committee invites name more people in a JSON list: read the open ones, keep those naming ours
    theirs = select(col(Touch.meeting_start), col(Touch.meeting_end), col(Touch.meeting_attendees)).where(
        col(Touch.meeting_attendees).is_not(None), ~who, *open_invites).join(
        Contact, col(Contact.id) == col(Touch.contact_id))
    return mine, theirs


def booked(session: Session, *, owner: str | None, contact_id: int, since: datetime,
           exclude: int | None = None, others: Sequence[int] = (), sellers: Sequence[str] = ()) -> list[Interval]:
    """The slots held by open invites, ending after `since`, of this rep (any buyer) or of this buyer
    (any rep), and of the `others` buyers and `sellers` (experts) a committee meeting adds, also where
    they are among an invite's more attendees: two queries."""
    buyers = {contact_id, *others}
    reps = {r.lower() for r in (owner, *sellers) if r}
    mine, theirs = _booked_queries(bool(reps), exclude is not None)
    params: dict[str, Any] = {"buyers": sorted(buyers), "since": since}
    if reps:
        params["reps"] = sorted(reps)
    if exclude is not None:
        params["exclude"] = exclude
    out = [(_aware(s), _aware(e)) for s, e in session.execute(mine, params) if s is not None and e is not None]
    for s, e, people in session.execute(theirs, params):
        if s is not None and e is not None and any(
                p.get("contact_id") in buyers or str(p.get("email", "")).lower() in reps for p in people or []):
            out.append((_aware(s), _aware(e)))
    return out


def uid_of(settings: Settings, touch_id: int) -> str:
    return tokens.invite_uid(settings.server.secret_key, touch_id, settings.sender.domain)


def _title(contact: Contact) -> str:
    name = " ".join(p for p in (contact.first_name, contact.last_name) if p) or contact.email or contact.phone
    return f"Meeting with {name}" + (f" ({contact.company})" if contact.company else "")


def _sellers(touch: Touch, contact: Contact) -> list[str]:
    """The seller's people of a meeting: the owning rep, and the experts it invites."""
    extra = [i.email for i in attendees_of(touch) if not i.buyer]
    return list(dict.fromkeys([*([contact.owner.lower()] if contact.owner else []), *extra]))


def _elsewhere(calendar: RepCalendar | None, settings: Settings, touch: Touch, contact: Contact,
               start: datetime, end: datetime) -> list[Interval]:
    if calendar is None:
        return []
    uid = uid_of(settings, touch.id or 0)
    return [iv for who in _sellers(touch, contact) for iv in calendar.busy(who, start, end, skip_uid=uid)]


def _write(calendar: RepCalendar | None, settings: Settings, touch: Touch, contact: Contact) -> None:
    if calendar is not None and touch.meeting_start and touch.meeting_end:
        for who in _sellers(touch, contact):
            calendar.propose(who, uid_of(settings, touch.id or 0), _aware(touch.meeting_start),
                             _aware(touch.meeting_end), _title(contact), contact.email)


def book(session: Session, settings: Settings, touch: Touch, contact: Contact,
         calendar: RepCalendar | None = None, earliest: datetime | None = None,
         want: Attendees | None = None, accounts: AccountRules | None = None) -> Interval:
    """Give the meeting touch its slot (see the module's doc), and with `want` its attendees;
    ValueError when none fits in 14 days."""
    duration = timedelta(minutes=touch.meeting_minutes or 30)
    start_from = earliest or _aware(touch.due_at) + LEAD
    hours, weekdays = working_hours(settings)
    if want is not None:
        touch.meeting_attendees = [i.as_json() for i in invitees(session, settings, accounts or AccountRules(),
                                                                 want, contact)]
    more = attendees_of(touch)
    horizon = start_from + timedelta(days=15)
    busy = booked(session, owner=contact.owner, contact_id=contact.id or 0, since=start_from, exclude=touch.id,
                  others=[i.contact_id for i in more if i.contact_id is not None],
                  sellers=[i.email for i in more if not i.buyer])
    busy += _elsewhere(calendar, settings, touch, contact, start_from, horizon)
    people = [Person(contact_tz(contact, settings.timezone).key, tuple(busy)),
              Person(rep_zone(session, settings, contact.owner), buyer=False),
              *(Person(i.zone, buyer=i.buyer) for i in more)]
    start = find_slot(people, earliest=start_from, duration=duration, hours=hours, weekdays=weekdays)
    touch.meeting_start, touch.meeting_end = start, start + duration
    session.add(touch)
    _write(calendar, settings, touch, contact)
    return start, start + duration


def book_unbooked(session: Session, settings: Settings, calendar: RepCalendar | None = None,
                  contact_ids: Sequence[int] | None = None, rules: Ruleset | None = None) -> int:
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
            book(session, settings, touch, contact, calendar, want=wanted(rules, touch),
                 accounts=rules.accounts if rules is not None else None)
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
    more = attendees_of(touch)
    for label, zone in (("the buyer's", contact_tz(contact, settings.timezone).key),
                        ("the rep's", rep_zone(session, settings, contact.owner)),
                        *((f"{i.name or i.email}'s", i.zone) for i in more if i.role != "organizer")):
        try:  # the first fitting minute from `start` is `start` itself
            fits = propose_slot(earliest=start, duration=duration, zones=[zone], hours=hours, weekdays=weekdays,
                                step_minutes=1, horizon_days=1) == start
        except ValueError:
            fits = False
        if not fits:
            local = start.astimezone(ZoneInfo(zone)).strftime("%a %H:%M")
            raise InvalidInput(f"{local} is outside {label} working hours ({zone})")
    busy = booked(session, owner=contact.owner, contact_id=contact.id or 0, since=start, exclude=touch.id,
                  others=[i.contact_id for i in more if i.contact_id is not None],
                  sellers=[i.email for i in more if not i.buyer])
    busy += _elsewhere(calendar, settings, touch, contact, start, start + duration)
    if any(b < start + duration and start < e for b, e in busy):
        raise InvalidInput("that time overlaps another meeting of the rep, the buyer or another invitee")
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
                   meeting_attendees=touch.meeting_attendees,
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
