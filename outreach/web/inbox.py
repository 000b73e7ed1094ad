"""The rep's inbox (`/inbox`): buyers' replies waiting for a human, newest first; mark handled, snooze,
or answer by email or SMS from the page. The answer is a one-off touch: the same dispatcher, policy
and consent checks as every touch, and it is on the contact's timeline. Also the contact page's own
moves: a one-off message, pause and resume the contact's automation, hand the contact to another user.

Plain form POSTs that redirect back, as the queue's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from sqlmodel import Session, col

from outreach.accounts.owners import claim
from outreach.contacts import find_contact
from outreach.db import session_scope
from outreach.errors import InvalidInput, InvalidTransition, NotFound
from outreach.inbox import (
    ANSWERED,
    FOREVER,
    HANDLED,
    OUT_OF_OFFICE,
    SNOOZED,
    mark,
    pause,
    paused_now,
    reassign,
    reply_for,
    resume,
    waiting,
)
from outreach.kinds import Channel
from outreach.models import Contact, User
from outreach.one_off import send_one_off
from outreach.web.auth import owner_scope, require_actor, visible_owner
from outreach.web.deps import EngineDep, FormUser, PageUser
from outreach.web.render import flash, fmt_time, parse_local, render_page, viewer_tz

router = APIRouter(include_in_schema=False)
SNOOZE = {"4h": timedelta(hours=4), "1d": timedelta(days=1), "3d": timedelta(days=3), "1w": timedelta(weeks=1)}


def _scope(user: User, owner: str | None) -> str | None:
    return owner_scope(user) or ((owner or "").strip().lower() or None)


@router.get("/inbox")
def inbox_page(request: Request, user: PageUser, engine: EngineDep,
               owner: Annotated[str | None, Query(max_length=254)] = None) -> Response:
    now = datetime.now(UTC)
    scope = _scope(user, owner)
    with session_scope(engine.db) as s:
        replies = waiting(s, now, owner=scope)
        away = waiting(s, now, owner=scope, kinds=(OUT_OF_OFFICE,), limit=50)
        paused = {r.contact.id: paused_now(r.contact, now) for r in away}
    return render_page(request, "inbox.html", {
        "replies": replies, "away": away, "paused": paused, "owner": scope, "snooze": list(SNOOZE),
        "may_act": user.role in ("admin", "rep"), "forever": FOREVER})


def _back(request: Request, ok: str | None = None, error: str | None = None, to: str = "/inbox") -> Response:
    if ok:
        flash(request, "ok", ok)
    if error:
        flash(request, "error", error)
    return RedirectResponse(to, status_code=303)


@router.post("/inbox/{evidence_id}/handled")
def handled(request: Request, evidence_id: int, user: FormUser, engine: EngineDep) -> Response:
    require_actor(user)
    with session_scope(engine.db) as s:
        _e, c = reply_for(s, evidence_id, owner_scope(user))
        mark(s, evidence_id, HANDLED, user.email, datetime.now(UTC))
    return _back(request, ok=f"Marked the reply from {c.email or c.phone} handled")


@router.post("/inbox/{evidence_id}/snooze")
def snooze(request: Request, evidence_id: int, user: FormUser, engine: EngineDep,
           delay: Annotated[str, Form(max_length=20)] = "1d",
           until: Annotated[str, Form(max_length=40)] = "") -> Response:
    require_actor(user)
    now = datetime.now(UTC)
    try:
        if until.strip():
            when = parse_local(until, viewer_tz(request))
        elif delay in SNOOZE:
            when = now + SNOOZE[delay]
        else:
            raise InvalidInput(f"snooze for one of: {', '.join(SNOOZE)}, or until a time")
        with session_scope(engine.db) as s:
            reply_for(s, evidence_id, owner_scope(user))
            mark(s, evidence_id, SNOOZED, user.email, now, until=when)
    except InvalidInput as exc:
        return _back(request, error=str(exc))
    return _back(request, ok=f"Snoozed the reply until {fmt_time(when, request)}")


@router.post("/inbox/{evidence_id}/answer")
def answer(request: Request, evidence_id: int, user: FormUser, engine: EngineDep,
           body: Annotated[str, Form(max_length=20000)] = "", subject: Annotated[str, Form(max_length=300)] = "",
           channel: Annotated[str, Form(max_length=20)] = Channel.EMAIL) -> Response:
    require_actor(user)
    now = datetime.now(UTC)
    try:
        with session_scope(engine.db) as s:
            e, c = reply_for(s, evidence_id, owner_scope(user))
            touch = send_one_off(s, c, channel=channel, subject=subject, body=body, actor=user.email, now=now,
                                 answers=e.id)
            mark(s, evidence_id, ANSWERED, user.email, now, touch_id=touch.id)
            tid = touch.id
    except InvalidInput as exc:
        return _back(request, error=str(exc))
    return _back(request, ok=f"Your answer to {c.email or c.phone} goes out as touch #{tid}, "
                             "within the buyer's send window and caps")


# --- the contact page's moves -------------------------------------------------------------------

def _contact(s: Session, user: User, contact_id: int) -> Contact:
    c = find_contact(s, contact_id)
    if not visible_owner(user, c.owner):
        raise NotFound(f"no contact '{contact_id}'")
    return c


def contact_extras(s: Session, user: User, contact_id: int) -> dict[str, Any]:
    """What the contact page shows for the rep's moves: the pause, who may own the contact."""
    c = find_contact(s, contact_id)
    owners = [u for u in s.execute(select(col(User.email)).where(col(User.role).in_(("rep", "admin")),
                                                                 col(User.disabled_at).is_(None))
                                   .order_by(col(User.email))).scalars()]
    return {"paused_until": paused_now(c, datetime.now(UTC)), "paused_reason": c.paused_reason,
            "forever": FOREVER, "owners": owners, "owner_has_account": c.owner in owners if c.owner else None,
            "may_act": user.role in ("admin", "rep"),
            "may_reassign": user.role != "rep" or (c.owner or "") == user.email,
            "may_claim": not c.owner and user.role in ("admin", "rep")}


@router.post("/contacts/{contact_id}/message")
def message(request: Request, contact_id: int, user: FormUser, engine: EngineDep,
            body: Annotated[str, Form(max_length=20000)] = "", subject: Annotated[str, Form(max_length=300)] = "",
            channel: Annotated[str, Form(max_length=20)] = Channel.EMAIL) -> Response:
    require_actor(user)
    back = f"/contacts/{contact_id}"
    try:
        with session_scope(engine.db) as s:
            c = _contact(s, user, contact_id)
            touch = send_one_off(s, c, channel=channel, subject=subject, body=body, actor=user.email,
                                 now=datetime.now(UTC))
            tid = touch.id
    except InvalidInput as exc:
        return _back(request, error=str(exc), to=back)
    return _back(request, ok=f"Your {channel} goes out as touch #{tid}, within the buyer's send window and caps",
                 to=back)


@router.post("/contacts/{contact_id}/pause")
def pause_contact(request: Request, contact_id: int, user: FormUser, engine: EngineDep,
                  until: Annotated[str, Form(max_length=40)] = "") -> Response:
    require_actor(user)
    back = f"/contacts/{contact_id}"
    now = datetime.now(UTC)
    try:
        when = parse_local(until, viewer_tz(request)) if until.strip() else None
        with session_scope(engine.db) as s:
            pause(s, _contact(s, user, contact_id), when, user.email, now)
    except InvalidInput as exc:
        return _back(request, error=str(exc), to=back)
    return _back(request, ok="Automated touches paused " + (f"until {fmt_time(when, request)}" if when
                                                            else "until you resume them"), to=back)


@router.post("/contacts/{contact_id}/resume")
def resume_contact(request: Request, contact_id: int, user: FormUser, engine: EngineDep) -> Response:
    require_actor(user)
    with session_scope(engine.db) as s:
        released = resume(s, _contact(s, user, contact_id), datetime.now(UTC))
    return _back(request, ok=f"Automated touches resumed ({released} held touch{'es' if released != 1 else ''} "
                             "go out at their next moment)", to=f"/contacts/{contact_id}")


@router.post("/contacts/{contact_id}/claim")
def claim_contact(request: Request, contact_id: int, user: FormUser, engine: EngineDep) -> Response:
    """A rep (or admin) takes an unowned contact; someone else's stays theirs (a rep gets 404)."""
    require_actor(user)
    back = f"/contacts/{contact_id}"
    try:
        with session_scope(engine.db) as s:
            c = find_contact(s, contact_id)
            if c.owner and not visible_owner(user, c.owner):
                raise NotFound(f"no contact '{contact_id}'")
            claim(s, c, user, datetime.now(UTC))
    except (InvalidInput, InvalidTransition) as exc:
        return _back(request, error=str(exc), to=back)
    return _back(request, ok="This contact is yours now: their touches go out as you", to=back)


@router.post("/contacts/{contact_id}/owner")
def change_owner(request: Request, contact_id: int, user: FormUser, engine: EngineDep,
                 owner: Annotated[str, Form(max_length=254)] = "") -> Response:
    back = f"/contacts/{contact_id}"
    try:
        with session_scope(engine.db) as s:
            c = _contact(s, user, contact_id)
            reassign(s, c, owner, actor_role=user.role, actor_email=user.email)
            new = c.owner
    except InvalidInput as exc:
        return _back(request, error=str(exc), to=back)
    # a rep who handed over their buyer no longer sees the page: back to their contacts
    to = back if visible_owner(user, new) else "/contacts"
    return _back(request, ok=f"{new} owns this contact now", to=to)
