"""The touch state machine as reps and scripts see it: list, approve, edit, reject, resend, drop."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, not_, or_, select, update
from sqlmodel import Session, col

from outreach.db import rows_changed
from outreach.errors import InvalidInput, InvalidTransition, NotFound
from outreach.kinds import TASK_CHANNELS
from outreach.models import STATUSES, Channel, Contact, Touch, TouchStatus

# who may move a touch from which status to which
TRANSITIONS: dict[str, tuple[set[TouchStatus], TouchStatus]] = {
    "approve": ({TouchStatus.PENDING}, TouchStatus.APPROVED),
    "reject": ({TouchStatus.PENDING, TouchStatus.APPROVED}, TouchStatus.REJECTED),
    "resend": ({TouchStatus.UNCERTAIN}, TouchStatus.APPROVED),
    "drop": ({TouchStatus.UNCERTAIN}, TouchStatus.CANCELLED),
}


def iso(dt: datetime | None) -> str | None:
    return dt.isoformat().replace("+00:00", "Z") if dt else None


def touch_json(t: Touch, c: Contact, from_email: str | None = None) -> dict[str, Any]:
    """The SPEC's touch shape; `from_email`: who it goes out from (outreach.senders)."""
    return {
        "id": t.id, "status": t.status, "reason": t.reason,
        "contact": {"id": c.id, "email": c.email, "external_id": c.external_id},
        "stage": t.stage, "rule": t.rule, "step": t.step, "interaction": t.interaction,
        "channel": t.channel, "channel_reason": t.channel_reason, "due_at": iso(t.due_at),
        "sent_at": iso(t.sent_at), "provider_message_id": t.provider_message_id, "from_email": from_email,
        # a meeting touch's booked slot (SPEC section 11)
        **({"meeting_start": iso(t.meeting_start), "meeting_end": iso(t.meeting_end)}
           if t.channel == Channel.MEETING else {}),
        # a rep's task: the number to dial (docs/RULES.md, "Tasks")
        **({"task": {"phone": c.phone}} if t.channel in TASK_CHANNELS else {}),
    }


SNOOZED = "snoozed by "  # the reason of a pending touch a person put off: out of the queue until due


def latest_due(t: Touch) -> datetime | None:
    """The latest a pending touch may be put off to: its approval deadline or its trigger's `within`."""
    ends = [_aware(d) for d in (t.approve_by, t.expires_at) if d is not None]
    return min(ends) if ends else None


def _aware(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt  # SQLite hands back naive UTC


def list_touches(session: Session, *, owner: str | None = None, status: str | None = None,
                 contact_id: int | None = None, limit: int | None = None,
                 reason_prefix: str | None = None, awake_at: datetime | None = None,
                 snoozed_at: datetime | None = None) -> list[tuple[Touch, Contact]]:
    """Touches and their contacts, oldest due first. `awake_at`: leave out touches snoozed past that
    time; `snoozed_at`: only those."""
    if status and status not in STATUSES:
        raise InvalidInput(f"unknown status '{status}' (one of: {', '.join(STATUSES)})")
    q = select(Touch, Contact).join(Contact, col(Contact.id) == col(Touch.contact_id))
    if owner:
        q = q.where(col(Contact.owner) == owner.lower())
    if status:
        q = q.where(col(Touch.status) == status)
    if contact_id is not None:
        q = q.where(col(Touch.contact_id) == contact_id)
    if reason_prefix:  # e.g. "waiting:" for approved touches held by a window, a cap or a holiday
        q = q.where(col(Touch.reason).startswith(reason_prefix, autoescape=True))
    for at, keep in ((awake_at, False), (snoozed_at, True)):
        if at is not None:
            asleep = and_(col(Touch.reason).startswith(SNOOZED, autoescape=True), col(Touch.due_at) > at)
            q = q.where(asleep if keep else or_(col(Touch.reason).is_(None), not_(asleep)))
    q = q.order_by(col(Touch.due_at), col(Touch.id))
    if limit:
        q = q.limit(limit)
    return [(t, c) for t, c in session.execute(q)]


def get_touch(session: Session, touch_id: int, owner: str | None = None) -> tuple[Touch, Contact]:
    """One touch and its contact; NotFound when it does not exist or `owner` does not own it."""
    (t,) = _load(session, [touch_id], owner)
    return t, session.get_one(Contact, t.contact_id)  # the foreign key keeps the contact


def _load(session: Session, ids: Sequence[int], owner: str | None) -> list[Touch]:
    q = select(Touch).join(Contact, col(Contact.id) == col(Touch.contact_id)).where(col(Touch.id).in_(list(ids)))
    if owner:
        q = q.where(col(Contact.owner) == owner.lower())
    found = {t.id: t for t in session.execute(q).scalars()}
    missing = [i for i in ids if i not in found]
    if missing:
        raise NotFound(f"no touch {', '.join(map(str, missing))}" + (f" owned by {owner}" if owner else ""))
    return [found[i] for i in ids]


def transition(session: Session, action: str, ids: Sequence[int], now: datetime, *,
               owner: str | None = None, reason: str | None = None) -> list[Touch]:
    """Apply `action` to each touch; InvalidTransition names the touches that cannot take it.
    The UPDATE re-checks the status, so a touch a worker claimed meanwhile is never changed."""
    allowed, target = TRANSITIONS[action]
    ids = list(dict.fromkeys(ids))  # `approve 5 5` is one approval, and the UPDATE counts it once
    touches = _load(session, ids, owner)
    wrong = [f"{t.id} is {t.status}" for t in touches if t.status not in allowed]
    if action in ("approve", "resend"):  # a task is done by the rep, never handed to the dispatcher
        wrong += [f"{t.id} is a {t.channel} for a person to make: record its outcome instead" for t in touches
                  if t.channel in TASK_CHANNELS]
    if wrong:
        raise InvalidTransition(f"cannot {action}: " + "; ".join(wrong))
    values: dict[str, Any] = {"status": target, "updated_at": now}
    if action == "reject":
        if not reason or not reason.strip():
            raise InvalidInput("a rejection needs a reason")
        values["reason"] = reason.strip()
    elif action == "approve":
        values["reason"] = None
    elif action == "resend":
        values.update(reason="resent by a person after an uncertain send", due_at=now)
    elif action == "drop":
        values["reason"] = reason or "dropped by a person after an uncertain send"
    changed = session.execute(update(Touch).where(col(Touch.id).in_(ids),
                                                  col(Touch.status).in_(allowed)).values(**values))
    if rows_changed(changed) != len(ids):
        raise InvalidTransition(f"cannot {action}: a touch changed status meanwhile; list the queue again")
    for t in touches:
        for k, v in values.items():
            setattr(t, k, v)
    return touches


def approve_all(session: Session, now: datetime, owner: str | None = None) -> int:
    q = update(Touch).where(col(Touch.status) == TouchStatus.PENDING,
                            or_(col(Touch.channel).is_(None), col(Touch.channel).not_in(TASK_CHANNELS)))
    if owner:
        q = q.where(col(Touch.contact_id).in_(select(col(Contact.id)).where(col(Contact.owner) == owner.lower())))
    return rows_changed(session.execute(q.values(status=TouchStatus.APPROVED, updated_at=now, reason=None)))


def edit(session: Session, touch_id: int, now: datetime, *, owner: str | None = None,
         subject: str | None = None, body: str | None = None, channel: str | None = None,
         due_at: datetime | None = None, allowed_channels: Sequence[str] = (), actor: str | None = None,
         snooze: bool = False) -> Touch:
    """A rep's edit of a pending touch (it stays pending until approved). A new send time may not pass
    the touch's deadline (`latest_due`); `snooze` also takes it out of the queue until then."""
    (t,) = _load(session, [touch_id], owner)
    if t.status != TouchStatus.PENDING:
        raise InvalidTransition(f"touch {t.id} is {t.status}: only pending touches can be edited")
    if due_at is not None:
        latest = latest_due(t)
        if latest is not None and due_at > latest:
            raise InvalidInput(f"touch {t.id} can wait until {iso(latest)} at the latest: it expires then")
    if channel and channel != t.channel:
        if channel not in allowed_channels:
            raise InvalidInput(f"channel {channel} is not allowed for {t.interaction} "
                               f"(allowed: {', '.join(allowed_channels)})")
        t.channel, t.channel_reason, t.channel_fixed = channel, f"set by {actor or 'a person'}", True
    if subject is not None:
        t.subject_override = subject or None
    if body is not None:
        t.body_override = body or None
    if t.meeting_start is not None and (t.channel != Channel.MEETING or (due_at is not None and due_at != t.due_at)):
        # a meeting whose invite moves, or a touch that stops being one, gives up its slot; the engine
        # books a new one (the invite keeps its UID and takes a higher SEQUENCE)
        t.meeting_start = t.meeting_end = None
        t.meeting_sequence = (t.meeting_sequence or 0) + 1
    if due_at is not None:
        t.due_at = due_at
    if snooze and (t.reason is None or t.reason.startswith(SNOOZED)):  # a reason that says why it cannot go stays
        t.reason = SNOOZED + (actor or "a person")
    t.updated_at = now
    session.add(t)
    return t


def pending_by_owner(session: Session) -> dict[str | None, int]:
    """How many touches wait for approval, per owning rep (None: contacts nobody owns)."""
    from sqlalchemy import func

    q = select(col(Contact.owner), func.count()).join(Touch, col(Touch.contact_id) == col(Contact.id)).where(
        col(Touch.status) == TouchStatus.PENDING).group_by(col(Contact.owner))
    return {owner: n for owner, n in session.execute(q)}
