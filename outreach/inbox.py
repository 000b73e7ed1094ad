"""The rep's inbox: buyers' replies waiting for a human, out-of-office answers with their return date,
and what a person does about them (handled, answered, snoozed). Also a contact's automation paused
and resumed, and its owner handed over: the moves a rep makes from a reply or a contact page.

Set-based: one query per list whatever the number of contacts; the `ix_evidence_type_at` index
serves "replies, newest first"."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import aliased
from sqlmodel import Session, col

from outreach.contacts import contact_tz
from outreach.errors import InvalidInput, NotFound
from outreach.models import Contact, Evidence, OwnerChange, ReplyState, Touch, TouchStatus
from outreach.users import find_user

REPLIES = ("email.replied", "sms.replied")
OUT_OF_OFFICE = "email.auto_replied"
HANDLED, ANSWERED, SNOOZED = "handled", "answered", "snoozed"
# A pause a person set with no end: far enough to never come, near enough for every database
FOREVER = datetime(9999, 12, 31, tzinfo=UTC)
PAUSED = "waiting: automation paused"  # the reason of a touch the pause holds back


@dataclass
class Reply:
    """One reply in the inbox, with what a rep needs to answer it."""

    evidence_id: int
    type: str
    at: datetime
    text: str
    subject: str | None
    contact: Contact
    touch_id: int | None  # the touch it answers
    touch_step: str | None
    returns_on: date | None = None  # an out-of-office's return date, when the text gives one


def _aware(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt


def _text(kind: str, data: dict[str, Any]) -> str:
    return str(data.get("body" if kind.startswith("sms.") else "text") or "").strip()


def waiting(session: Session, now: datetime, *, owner: str | None = None, kinds: Sequence[str] = REPLIES,
            limit: int = 100) -> list[Reply]:
    """Replies nobody has handled or answered, and snoozes that have run out; newest first."""
    answered = aliased(ReplyState)
    answered_touch = aliased(Touch)
    q = (select(Evidence, Contact, col(answered_touch.step))
         .join(Contact, col(Contact.id) == col(Evidence.contact_id))
         .outerjoin(answered, col(answered.evidence_id) == col(Evidence.id))
         .outerjoin(answered_touch, col(answered_touch.id) == col(Evidence.touch_id))
         .where(col(Evidence.type).in_(list(kinds)),
                or_(col(answered.id).is_(None), and_(col(answered.status) == SNOOZED, col(answered.until) <= now))))
    if owner:
        q = q.where(col(Contact.owner) == owner.lower())
    q = q.order_by(col(Evidence.occurred_at).desc(), col(Evidence.id).desc()).limit(limit)
    out = []
    for e, c, step in session.execute(q):
        data = e.data if isinstance(e.data, dict) else {}
        text = _text(e.type, data)
        out.append(Reply(e.id or 0, e.type, _aware(e.occurred_at), text, data.get("subject"), c, e.touch_id, step,
                         return_date(text or str(data.get("full_text") or ""), _aware(e.occurred_at).date())
                         if e.type == OUT_OF_OFFICE else None))
    return out


def count_waiting(session: Session, now: datetime, owner: str | None = None, limit: int = 100) -> int:
    """How many replies wait for a person (counted up to `limit`: a badge says "99+" past it)."""
    return len(waiting(session, now, owner=owner, limit=limit))


def expiring_today(session: Session, now: datetime, day_end: datetime, owner: str | None = None) -> int:
    """Touches waiting for approval that will go stale (or pass their `within`) before `day_end`."""
    q = (select(func.count()).select_from(Touch).join(Contact, col(Contact.id) == col(Touch.contact_id))
         .where(col(Touch.status) == TouchStatus.PENDING,
                or_(col(Touch.approve_by) <= day_end, col(Touch.expires_at) <= day_end)))
    if owner:
        q = q.where(col(Contact.owner) == owner.lower())
    return int(session.execute(q).scalar_one())


def reply_for(session: Session, evidence_id: int, owner: str | None) -> tuple[Evidence, Contact]:
    """A reply (or out-of-office) the user may act on; NotFound for another rep's, not a hint."""
    row = session.execute(select(Evidence, Contact).join(Contact, col(Contact.id) == col(Evidence.contact_id))
                          .where(col(Evidence.id) == evidence_id,
                                 col(Evidence.type).in_([*REPLIES, OUT_OF_OFFICE]))).first()
    if row is None or (owner and row[1].owner != owner.lower()):
        raise NotFound(f"no reply #{evidence_id}")
    return row[0], row[1]


def mark(session: Session, evidence_id: int, status: str, actor: str, now: datetime, *,
         until: datetime | None = None, touch_id: int | None = None) -> ReplyState:
    """Record what a person did with a reply; a later move replaces an earlier one (a snooze, then handled)."""
    if status not in (HANDLED, ANSWERED, SNOOZED):
        raise InvalidInput(f"unknown reply state '{status}'")
    if status == SNOOZED and (until is None or until <= now):
        raise InvalidInput("snooze a reply to a time in the future")
    state = session.execute(select(ReplyState).where(col(ReplyState.evidence_id) == evidence_id)).scalar_one_or_none()
    state = state or ReplyState(evidence_id=evidence_id, status=status, actor=actor)
    state.status, state.until, state.actor, state.at = status, until, actor, now
    state.touch_id = touch_id or state.touch_id
    session.add(state)
    session.flush()
    return state


# --- out of office ------------------------------------------------------------------------------

_MONTHS = {m: i for i, names in enumerate(
    [("jan", "january"), ("feb", "february"), ("mar", "march"), ("apr", "april"), ("may",), ("jun", "june"),
     ("jul", "july"), ("aug", "august"), ("sep", "sept", "september"), ("oct", "october"), ("nov", "november"),
     ("dec", "december")], start=1) for m in names}
_MONTH = "(" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
_DAY = r"(\d{1,2})(?:st|nd|rd|th)?"
_YEAR = r"(?:,?\s+(\d{4}))?"
_PATTERNS = [
    (re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b"), ("y", "m", "d")),
    (re.compile(rf"\b{_MONTH}\s+{_DAY}\b{_YEAR}", re.I), ("mn", "d", "y")),
    (re.compile(rf"\b{_DAY}\s+(?:of\s+)?{_MONTH}{_YEAR}", re.I), ("d", "mn", "y")),
]
# the date after one of these words is the return; a date alone may be when the absence began
_RETURN_WORDS = re.compile(r"\b(back|return(?:ing)?|until|till|through|in the office|reachable)\b", re.I)


def return_date(text: str, sent: date) -> date | None:
    """The date an out-of-office reply says its writer is back, if it says one: the first date after a
    word like "back", "return" or "until" (else the latest date in the text), not before the reply
    itself; a date without a year is its next occurrence."""
    found: list[tuple[int, date]] = []
    for pattern, order in _PATTERNS:
        for m in pattern.finditer(text):
            parts = dict(zip(order, m.groups(), strict=True))
            try:
                month = _MONTHS[parts["mn"].lower().rstrip(".")] if "mn" in parts else int(parts["m"])
                year = int(parts["y"]) if parts.get("y") else sent.year
                day = date(year, month, int(parts["d"]))
                if not parts.get("y") and day < sent:
                    day = date(year + 1, month, int(parts["d"]))
            except (ValueError, KeyError):
                continue
            if sent <= day <= sent + timedelta(days=366):
                found.append((m.start(), day))
    if not found:
        return None
    found.sort()
    words = [w.end() for w in _RETURN_WORDS.finditer(text)]
    for start, day in found:
        if any(0 <= start - w <= 60 for w in words):  # "back on Monday, December 8"
            return day
    return max(day for _, day in found)


def pause_for_out_of_office(session: Session, recorded: Sequence[Evidence], default_tz: str) -> int:
    """Pause the automated touches of each buyer whose out-of-office reply gives a return date, until
    8:00 that day in the buyer's zone. Returns how many contacts it paused."""
    paused = 0
    for e in recorded:
        if e.type != OUT_OF_OFFICE:
            continue
        data = e.data if isinstance(e.data, dict) else {}
        back = return_date(f"{data.get('subject') or ''}\n{data.get('text') or data.get('full_text') or ''}",
                           _aware(e.occurred_at).date())
        contact = session.get(Contact, e.contact_id)
        if back is None or contact is None:
            continue
        until = datetime.combine(back, time(8), contact_tz(contact, default_tz)).astimezone(UTC)
        current = _aware(contact.paused_until) if contact.paused_until else None
        if current is None or current < until:
            contact.paused_until, contact.paused_reason = until, f"out of office until {back.isoformat()}"
            session.add(contact)
            paused += 1
    return paused


# --- a contact's automation and owner -------------------------------------------------------------

def pause(session: Session, contact: Contact, until: datetime | None, actor: str, now: datetime) -> Contact:
    """Hold the contact's automated touches until `until` (None: until someone resumes them)."""
    if until is not None and until <= now:
        raise InvalidInput("pause until a time in the future")
    contact.paused_until = until or FOREVER
    contact.paused_reason = f"paused by {actor}"
    session.add(contact)
    session.flush()
    return contact


def resume(session: Session, contact: Contact, now: datetime) -> int:
    """End the pause; the touches it held go out at their next moment. Returns how many it released."""
    contact.paused_until, contact.paused_reason = None, None
    session.add(contact)
    held = session.execute(update(Touch).where(
        col(Touch.contact_id) == contact.id, col(Touch.status) == TouchStatus.APPROVED,
        col(Touch.reason).startswith(PAUSED, autoescape=True)).values(due_at=now, reason=None, updated_at=now))
    return int(getattr(held, "rowcount", 0) or 0)


def paused_now(contact: Contact, now: datetime) -> datetime | None:
    """Until when the contact's automated touches wait, or None."""
    if contact.paused_until is None:
        return None
    until = _aware(contact.paused_until)
    return until if until > now else None


def reassign(session: Session, contact: Contact, new_owner: str, *, actor_role: str, actor_email: str) -> Contact:
    """Hand the contact to another user: admins and marketers any contact, a rep only their own."""
    if actor_role == "rep" and (contact.owner or "") != actor_email.lower():
        raise NotFound(f"no contact '{contact.id}'")
    user = find_user(session, new_owner)
    if user is None or user.disabled_at is not None:
        raise InvalidInput(f"{new_owner.strip().lower()} has no user account that can sign in: an admin adds "
                           "them first (outreach users add)")
    if user.role not in ("rep", "admin"):
        raise InvalidInput(f"{user.email} is a {user.role}: only reps and admins approve a contact's touches")
    if (contact.owner or "") != user.email:  # kept for the contact's timeline (outreach.accounts.owners)
        session.add(OwnerChange(contact_id=contact.id or 0, from_owner=contact.owner, to_owner=user.email,
                                how="handed over", actor=actor_email.lower(), at=datetime.now(UTC)))
    contact.owner = user.email
    session.add(contact)
    session.flush()
    return contact
