"""The touch state machine as reps and scripts see it: list, approve, edit, reject, resend, drop."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlmodel import Session, col

from outreach.db import rows_changed
from outreach.errors import InvalidInput, InvalidTransition, NotFound
from outreach.models import STATUSES, Contact, Touch, TouchStatus

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
    }


def list_touches(session: Session, *, owner: str | None = None, status: str | None = None,
                 contact_id: int | None = None, limit: int | None = None,
                 reason_prefix: str | None = None) -> list[tuple[Touch, Contact]]:
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
    touches = _load(session, ids, owner)
    wrong = [f"{t.id} is {t.status}" for t in touches if t.status not in allowed]
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
    changed = session.execute(update(Touch).where(col(Touch.id).in_(list(ids)),
                                                  col(Touch.status).in_(allowed)).values(**values))
    if rows_changed(changed) != len(ids):
        raise InvalidTransition(f"cannot {action}: a touch changed status meanwhile; list the queue again")
    for t in touches:
        for k, v in values.items():
            setattr(t, k, v)
    return touches


def approve_all(session: Session, now: datetime, owner: str | None = None) -> int:
    q = update(Touch).where(col(Touch.status) == TouchStatus.PENDING)
    if owner:
        q = q.where(col(Touch.contact_id).in_(select(col(Contact.id)).where(col(Contact.owner) == owner.lower())))
    return rows_changed(session.execute(q.values(status=TouchStatus.APPROVED, updated_at=now, reason=None)))


def edit(session: Session, touch_id: int, now: datetime, *, owner: str | None = None,
         subject: str | None = None, body: str | None = None, channel: str | None = None,
         due_at: datetime | None = None, allowed_channels: Sequence[str] = ()) -> Touch:
    """A rep's edit of a pending touch (it stays pending until approved)."""
    (t,) = _load(session, [touch_id], owner)
    if t.status != TouchStatus.PENDING:
        raise InvalidTransition(f"touch {t.id} is {t.status}: only pending touches can be edited")
    if channel and channel != t.channel:
        if channel not in allowed_channels:
            raise InvalidInput(f"channel {channel} is not allowed for {t.interaction} "
                               f"(allowed: {', '.join(allowed_channels)})")
        t.channel, t.channel_reason, t.channel_fixed = channel, "chosen by the rep", True
    if subject is not None:
        t.subject_override = subject or None
    if body is not None:
        t.body_override = body or None
    if due_at is not None:
        t.due_at = due_at
    t.updated_at = now
    session.add(t)
    return t


def pending_by_owner(session: Session) -> dict[str | None, int]:
    """How many touches wait for approval, per owning rep (None: contacts nobody owns)."""
    from sqlalchemy import func

    q = select(col(Contact.owner), func.count()).join(Touch, col(Touch.contact_id) == col(Contact.id)).where(
        col(Touch.status) == TouchStatus.PENDING).group_by(col(Contact.owner))
    return {owner: n for owner, n in session.execute(q)}
