"""The reps' queue: pending touches, oldest due first, with the message as the buyer will see it;
approve, edit then approve, reject with a reason, snooze, one at a time or many together.

Every move is a plain form POST that redirects back (works without JavaScript); static/app.js sends
the same forms with fetch and gets JSON back, so the queue does not reload between moves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlmodel import col

from outreach.db import session_scope
from outreach.errors import InvalidInput, InvalidTransition
from outreach.meetings import move
from outreach.models import TouchStatus, User
from outreach.ownership import all_flags
from outreach.queue import edit, get_touch, latest_due, list_touches, pending_by_owner, transition
from outreach.tasks import NOTE_MAX, OUTCOME_WORDS
from outreach.web.auth import owner_scope, require_actor
from outreach.web.deps import EngineDep, FormUser, PageUser
from outreach.web.page_data import edit_channels, preview
from outreach.web.render import flash, fmt_time, parse_local, render_page, viewer_tz

router = APIRouter(include_in_schema=False)
SNOOZE = {"1h": timedelta(hours=1), "4h": timedelta(hours=4), "1d": timedelta(days=1), "3d": timedelta(days=3),
          "1w": timedelta(weeks=1)}
PAGE = 100


def _scope(user: User, owner: str | None) -> str | None:
    """Whose queue to show: a rep always their own; others a chosen rep, or everybody."""
    return owner_scope(user) or ((owner or "").strip().lower() or None)


def _back(target: str | None) -> str:
    # only paths on this site: never an open redirect
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/queue"


def _done(request: Request, message: str, back: str | None, ids: list[int]) -> Response:
    if request.headers.get("x-requested-with") == "fetch":
        return JSONResponse({"ok": True, "message": message, "ids": ids})
    flash(request, "ok", message)
    return RedirectResponse(_back(back), status_code=303)


def _failed(request: Request, exc: Exception, back: str | None) -> Response:
    """A move the engine refused (no reason given, the touch moved on): say so where the rep is."""
    if request.headers.get("x-requested-with") == "fetch":
        return JSONResponse({"ok": False, "detail": str(exc)},
                            status_code=409 if isinstance(exc, InvalidTransition) else 422)
    flash(request, "error", str(exc))
    return RedirectResponse(_back(back), status_code=303)


@router.get("/queue")
def queue_page(request: Request, user: PageUser, engine: EngineDep,
               owner: Annotated[str | None, Query(max_length=254)] = None,
               limit: Annotated[int, Query(ge=1, le=1000)] = PAGE) -> Response:
    scope = _scope(user, owner)
    with session_scope(engine.db) as s:
        now = datetime.now(UTC)
        pending = list_touches(s, owner=scope, status=TouchStatus.PENDING, limit=limit + 1, awake_at=now)
        snoozed = list_touches(s, owner=scope, status=TouchStatus.PENDING, snoozed_at=now, limit=50)
        waiting = list_touches(s, owner=scope, status=TouchStatus.APPROVED, reason_prefix="waiting:", limit=50)
        by_owner = pending_by_owner(s) if user.role != "rep" else {}
        owners = sorted((o, n) for o, n in by_owner.items() if o)
        # touches nobody can approve: their contact's owner has no account that can sign in, or no owner
        approvers = set(s.execute(select(col(User.email)).where(col(User.disabled_at).is_(None))).scalars())
        orphans = sorted(((o or "", n) for o, n in by_owner.items() if o not in approvers), key=lambda x: x[0])
        # admins also see the buyers themselves nobody can act for, touches or not (as `contacts import` warns)
        owner_flags = all_flags(s, engine.project.rules) if user.role == "admin" else []
        overran: dict[str, str] = {}
        cards = [{"t": t, "c": c, "preview": preview(engine, t, c, overran), "channels": edit_channels(engine, t),
                  "latest": latest_due(t)}
                 for t, c in pending[:limit]]
    return render_page(request, "queue.html", {
        "cards": cards, "more": len(pending) > limit, "waiting": waiting, "snoozed": snoozed, "owners": owners,
        "orphans": orphans, "owner_flags": owner_flags,
        "all_pending": sum(by_owner.values()), "owner": scope,
        "may_act": user.role in ("admin", "rep"), "snooze": list(SNOOZE), "limit": limit,
        "back": str(request.url.path) + (f"?{request.url.query}" if request.url.query else "")})


@router.get("/queue/{touch_id}")
def touch_page(request: Request, touch_id: int, user: PageUser, engine: EngineDep) -> Response:
    with session_scope(engine.db) as s:
        t, c = get_touch(s, touch_id, owner_scope(user))
        card = {"t": t, "c": c, "preview": preview(engine, t, c), "channels": edit_channels(engine, t),
                  "latest": latest_due(t)}
    return render_page(request, "touch.html", {"card": card, "may_act": user.role in ("admin", "rep"),
                                               "snooze": list(SNOOZE), "back": f"/queue/{touch_id}"})


@router.post("/queue/{touch_id}/approve")
def approve(request: Request, touch_id: int, user: FormUser, engine: EngineDep,
            back: Annotated[str | None, Form()] = None) -> Response:
    require_actor(user)
    try:
        with session_scope(engine.db) as s:
            transition(s, "approve", [touch_id], datetime.now(UTC), owner=owner_scope(user))
    except (InvalidInput, InvalidTransition) as exc:
        return _failed(request, exc, back)
    return _done(request, f"Approved touch #{touch_id}", back, [touch_id])


@router.post("/queue/{touch_id}/outcome")
def task_outcome(request: Request, touch_id: int, user: FormUser, engine: EngineDep,
                 outcome: Annotated[str, Form(max_length=20)] = "",
                 note: Annotated[str, Form(max_length=NOTE_MAX)] = "",
                 back: Annotated[str | None, Form()] = None) -> Response:
    """A task done (a call made, a social message sent): its outcome is evidence on the timeline."""
    require_actor(user)
    try:
        result = engine.record_task(touch_id, outcome, note, user.email, owner=owner_scope(user))
    except (InvalidInput, InvalidTransition) as exc:
        return _failed(request, exc, back)
    moved = "; ".join(f"stage {c.from_stage} → {c.to_stage}" for c in result.stage_changes)
    return _done(request, f"Recorded touch #{touch_id}: {OUTCOME_WORDS.get(outcome, outcome)}"
                 + (f" ({moved})" if moved else ""), back, [touch_id])


@router.post("/queue/{touch_id}/reject")
def reject(request: Request, touch_id: int, user: FormUser, engine: EngineDep,
           reason: Annotated[str, Form(max_length=500)] = "", back: Annotated[str | None, Form()] = None) -> Response:
    require_actor(user)
    try:
        with session_scope(engine.db) as s:
            transition(s, "reject", [touch_id], datetime.now(UTC), owner=owner_scope(user), reason=reason)
    except (InvalidInput, InvalidTransition) as exc:
        return _failed(request, exc, back)
    return _done(request, f"Rejected touch #{touch_id}: {reason.strip()}", back, [touch_id])


@router.post("/queue/{touch_id}/snooze")
def snooze(request: Request, touch_id: int, user: FormUser, engine: EngineDep,
           delay: Annotated[str, Form(max_length=20)] = "1d", until: Annotated[str, Form(max_length=40)] = "",
           back: Annotated[str | None, Form()] = None) -> Response:
    require_actor(user)
    now = datetime.now(UTC)
    try:
        if until.strip():
            when = parse_local(until, viewer_tz(request))
        elif delay in SNOOZE:
            when = None
        else:
            raise InvalidInput(f"snooze for one of: {', '.join(SNOOZE)}, or until a time")
        with session_scope(engine.db) as s:
            t, _c = get_touch(s, touch_id, owner_scope(user))
            start = max(now, t.due_at.replace(tzinfo=UTC) if t.due_at.tzinfo is None else t.due_at)
            due = when or start + SNOOZE[delay]
            if due <= now:
                raise InvalidInput("snooze to a time in the future")
            latest = latest_due(t)
            if latest is not None and due > latest:
                raise InvalidInput(f"touch #{touch_id} can wait until {fmt_time(latest, request)} at the latest: "
                                   "it expires then")
            edit(s, touch_id, now, owner=owner_scope(user), due_at=due, actor=user.email, snooze=True)
            engine.book_meetings(s, [t.contact_id])
    except (InvalidInput, InvalidTransition) as exc:
        return _failed(request, exc, back)
    return _done(request, f"Snoozed touch #{touch_id} until {fmt_time(due, request)}", back, [touch_id])


def _changed(sent: str | None, shown: str | None) -> str | None:
    """The rep's text when it differs from what was shown (an untouched field stays the template's)."""
    if sent is None:
        return None
    text = sent.replace("\r\n", "\n").strip()
    return None if text == (shown or "").strip() else text


def _moved(request: Request, sent: str | None, due: datetime) -> datetime | None:
    """The new send time, or None when the rep left the field as shown (to the minute)."""
    if not sent or sent.strip() == fmt_time(due, request, "%Y-%m-%dT%H:%M"):
        return None
    return parse_local(sent, viewer_tz(request))


@router.post("/queue/{touch_id}/edit")
def edit_touch(request: Request, touch_id: int, user: FormUser, engine: EngineDep,
               subject: Annotated[str | None, Form(max_length=300)] = None,
               body: Annotated[str | None, Form(max_length=20000)] = None,
               channel: Annotated[str | None, Form(max_length=20)] = None,
               due_at: Annotated[str | None, Form(max_length=40)] = None,
               meeting_at: Annotated[str | None, Form(max_length=40)] = None,
               then: Annotated[str, Form(max_length=20)] = "save",
               back: Annotated[str | None, Form()] = None) -> Response:
    require_actor(user)
    now = datetime.now(UTC)
    try:
        with session_scope(engine.db) as s:
            t, c = get_touch(s, touch_id, owner_scope(user))
            shown = preview(engine, t, c)
            moved, latest = _moved(request, due_at, t.due_at), latest_due(t)
            # the rep's own meeting time, when they changed the one the form showed
            new_time = _moved(request, meeting_at, t.meeting_start) if t.meeting_start is not None else None
            if moved is not None and latest is not None and moved > latest:
                raise InvalidInput(f"touch #{touch_id} can be sent until {fmt_time(latest, request)} at the latest: "
                                   "it expires then")
            edit(s, touch_id, now, owner=owner_scope(user), subject=_changed(subject, shown.subject),
                 body=_changed(body, shown.text), channel=channel or None,
                 due_at=moved,
                 allowed_channels=edit_channels(engine, t), actor=user.email)
            engine.book_meetings(s, [t.contact_id])  # a moved invite, or a touch that became one, gets its slot
            if new_time is not None and t.meeting_start is not None:
                move(s, engine.settings, t, c, new_time, engine.calendar)
            if then == "approve":
                transition(s, "approve", [touch_id], now, owner=owner_scope(user))
    except (InvalidInput, InvalidTransition) as exc:
        return _failed(request, exc, back)
    verb = "Edited and approved" if then == "approve" else "Saved your edit of"
    return _done(request, f"{verb} touch #{touch_id}", back, [touch_id])


@router.post("/queue/bulk")
def bulk(request: Request, user: FormUser, engine: EngineDep,
         ids: Annotated[list[int] | None, Form()] = None, action: Annotated[str, Form(max_length=20)] = "approve",
         reason: Annotated[str, Form(max_length=500)] = "", back: Annotated[str | None, Form()] = None) -> Response:
    require_actor(user)
    chosen = sorted(set(ids or []))
    try:
        if not chosen:
            raise InvalidInput("select one or more touches first")
        if action not in ("approve", "reject"):
            raise InvalidInput("choose approve or reject")
        with session_scope(engine.db) as s:
            transition(s, action, chosen, datetime.now(UTC), owner=owner_scope(user), reason=reason)
    except (InvalidInput, InvalidTransition) as exc:
        return _failed(request, exc, back)
    verb = "Approved" if action == "approve" else "Rejected"
    return _done(request, f"{verb} {len(chosen)} touch{'es' if len(chosen) != 1 else ''}", back, chosen)
