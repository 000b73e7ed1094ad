"""Server-rendered pages besides the queue: sign-in, contacts and their timelines, the dashboard and
the rules. Each handler calls the same engine functions the CLI calls."""

from __future__ import annotations

from datetime import UTC, datetime
from math import ceil
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlmodel import Session, col

from outreach.accounts.owners import owner_changes
from outreach.checks.project import check_project
from outreach.consent import BuyerConsentOnly
from outreach.contact_info import contact_detail, search_contacts, set_preference, validate_event
from outreach.contacts import find_contact
from outreach.db import session_scope
from outreach.dryrun import summary
from outreach.errors import ConfigError, InvalidInput, NotFound
from outreach.evidence import EvidenceIn
from outreach.models import Contact, User
from outreach.personal import forget, personal_data
from outreach.users import check_password, end_sessions
from outreach.web.auth import owner_scope, visible_owner
from outreach.web.dashboard import STEP_DAYS, step_results
from outreach.web.deps import EngineDep, FormUser, PageUser, session_user
from outreach.web.inbox import contact_extras
from outreach.web.page_data import playbooks, timeline, triggers
from outreach.web.queue_pages import _back
from outreach.web.render import flash, render_page
from outreach.web.sessions import Forbidden, check_csrf, session_mark

router = APIRouter(include_in_schema=False)
PER_PAGE = 25
MANUAL_EVENTS = ("call.completed", "meeting.held", "note.added", "pricing.asked", "demo.requested",
                 "proposal.requested", "contract.signed")


@router.get("/")
def home(user: Annotated[User | None, Depends(session_user)]) -> Response:
    return RedirectResponse("/queue" if user else "/login", status_code=303)


@router.get("/login")
def login_page(request: Request, user: Annotated[User | None, Depends(session_user)],
               next: Annotated[str, Query(max_length=500)] = "/queue") -> Response:
    if user is not None:
        return RedirectResponse(_back(next), status_code=303)
    return render_page(request, "login.html", {"next": _back(next)})


@router.post("/login", dependencies=[Depends(check_csrf)])
def login(request: Request, engine: EngineDep, email: Annotated[str, Form(max_length=254)] = "",
          password: Annotated[str, Form(max_length=1024)] = "",
          next: Annotated[str, Form(max_length=500)] = "/queue") -> Response:
    throttle = request.app.state.login_throttle
    address = request.client.host if request.client else "?"
    email = email.strip().lower()
    if throttle.blocked(email, address):
        return render_page(request, "login.html", {"next": _back(next), "email": email,
                                                   "error": "Too many failed sign-ins: wait 15 minutes and try again."},
                           status=429)
    with session_scope(engine.db) as s:
        user = s.execute(select(User).where(col(User.email) == email)).scalar_one_or_none()
    if not check_password(user, password) or user is None:
        throttle.failed(email, address)
        return render_page(request, "login.html", {"next": _back(next), "email": email,
                                                   "error": "That email and password do not match."}, status=401)
    throttle.succeeded(email, address)
    # a fresh session on sign-in: nothing from before it (a planted cookie) survives
    request.session.clear()
    request.session.update(uid=user.id, sv=session_mark(user))
    return RedirectResponse(_back(next), status_code=303)


@router.get("/logout")
def logout_page(request: Request, user: PageUser) -> Response:
    return render_page(request, "logout.html", {})


@router.post("/logout")
def logout(request: Request, user: FormUser, engine: EngineDep) -> Response:
    with session_scope(engine.db) as s:  # ends the session on the server too: a copied cookie is dead
        end_sessions(s, user.id)
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


@router.get("/contacts")
def contacts_page(request: Request, user: PageUser, engine: EngineDep,
                  q: Annotated[str, Query(max_length=200)] = "", stage: Annotated[str, Query(max_length=64)] = "",
                  owner: Annotated[str, Query(max_length=254)] = "",
                  page: Annotated[int, Query(ge=1, le=100000)] = 1) -> Response:
    scope = owner_scope(user) or owner.strip().lower() or None
    with session_scope(engine.db) as s:
        rows, total = search_contacts(s, text=q, stage=stage or None, owner=scope, limit=PER_PAGE,
                                      offset=(page - 1) * PER_PAGE)
    return render_page(request, "contacts.html", {
        "contacts": rows, "total": total, "q": q, "stage": stage, "owner": owner, "page": page,
        "pages": max(1, ceil(total / PER_PAGE)), "stages": engine.project.rules.stage_ids})


def _visible(s: Session, user: User, contact_id: int) -> Contact:
    """The contact if this user may see it; a rep asking for another rep's gets NotFound, not a hint."""
    c = find_contact(s, contact_id)
    if not visible_owner(user, c.owner):
        raise NotFound(f"no contact '{contact_id}'")
    return c


@router.get("/contacts/{contact_id}")
def contact_page(request: Request, contact_id: int, user: PageUser, engine: EngineDep) -> Response:
    rules = engine.project.rules
    with session_scope(engine.db) as s:
        found = find_contact(s, contact_id)
        if found.owner and not visible_owner(user, found.owner):  # an unowned contact is there to be claimed
            raise NotFound(f"no contact '{contact_id}'")
        member = {"account_id": found.account_id, "role": found.role}  # their buying committee, if any
        detail = {**contact_detail(s, engine, contact_id), "owner_changes": owner_changes(s, contact_id)}
        extras = contact_extras(s, user, contact_id)
    suggestions = sorted({*MANUAL_EVENTS, *(c.event for st in rules.stages for c in st.reached_by),
                          *(tr.on for tr in rules.triggers)})
    return render_page(request, "contact.html", {
        "d": detail, "c": detail["contact"], "member": member, "events": timeline(detail),
        "interactions": rules.interactions,
        "stages": rules.stage_ids, "suggestions": suggestions, "x": extras})


@router.post("/contacts/{contact_id}/preference")
def prefer(request: Request, contact_id: int, user: FormUser, engine: EngineDep,
           interaction: Annotated[str, Form(max_length=64)], channel: Annotated[str, Form(max_length=20)]) -> Response:
    back = f"/contacts/{contact_id}"
    try:
        with session_scope(engine.db) as s:
            _visible(s, user, contact_id)
            set_preference(s, engine, contact_id, interaction, channel, source=f"web:{user.email}")
    except InvalidInput as exc:
        flash(request, "error", str(exc))
        return RedirectResponse(back, status_code=303)
    flash(request, "ok", f"Saved: prefers {channel} for {interaction}")
    return RedirectResponse(back, status_code=303)


@router.post("/contacts/{contact_id}/evidence")
def add_evidence(request: Request, contact_id: int, user: FormUser, engine: EngineDep,
                 type: Annotated[str, Form(max_length=100)],
                 note: Annotated[str, Form(max_length=2000)] = "") -> Response:
    back = f"/contacts/{contact_id}"
    with session_scope(engine.db) as s:
        _visible(s, user, contact_id)
    try:
        validate_event(type.strip())
        data = {"by": user.email, **({"note": note.strip()} if note.strip() else {})}
        result = engine.record([EvidenceIn(type.strip(), datetime.now(UTC), "web", contact_id=contact_id,
                                           data=data)])
    except (InvalidInput, BuyerConsentOnly) as exc:  # staff never lift an opt-out: only the buyer does
        flash(request, "error", str(exc))
        return RedirectResponse(back, status_code=303)
    moved = "; ".join(f"stage {c.from_stage} → {c.to_stage}" for c in result.stage_changes)
    flash(request, "ok", f"Recorded {type.strip()}" + (f" ({moved})" if moved else ""))
    return RedirectResponse(back, status_code=303)


def _admin(user: User) -> None:
    if user.role != "admin":
        raise Forbidden("only admins see or erase a person's personal data")


@router.get("/contacts/{contact_id}/personal-data")
def personal_data_download(contact_id: int, user: PageUser, engine: EngineDep) -> Response:
    """Everything held about the person, as `contacts export-personal` prints it, as a download."""
    with session_scope(engine.db) as s:
        c = _visible(s, user, contact_id)
        _admin(user)
        document = personal_data(s, c)
    return JSONResponse(document, headers={
        "content-disposition": f'attachment; filename="personal-data-{contact_id}.json"', "cache-control": "no-store"})


@router.post("/contacts/{contact_id}/forget")
def forget_person(request: Request, contact_id: int, user: FormUser, engine: EngineDep,
                  confirm: Annotated[str, Form(max_length=10)] = "") -> Response:
    with session_scope(engine.db) as s:
        c = _visible(s, user, contact_id)
        _admin(user)
        if confirm != "on":
            flash(request, "error", "Tick the box to confirm: erasing cannot be undone")
            return RedirectResponse(f"/contacts/{contact_id}", status_code=303)
        forget(s, c, secret=engine.settings.server.secret_key, actor=user.email, now=datetime.now(UTC))
    flash(request, "ok", f"Contact {contact_id} forgotten: personal data erased, the address on the "
                         "do-not-contact list")
    return RedirectResponse(f"/contacts/{contact_id}", status_code=303)


@router.get("/rules")
def rules_page(request: Request, user: PageUser, engine: EngineDep) -> Response:
    rules = engine.project.rules
    try:
        dry = summary(engine.plan(datetime.now(UTC), dry_run=True))
        dry_error = None
    except (ConfigError, InvalidInput) as exc:
        dry, dry_error = {"steps": [], "by_status": {}, "by_channel": {}, "would_queue": 0}, str(exc)
    if owner_scope(user):  # examples name contacts: a rep sees the counts only
        for step in dry["steps"]:
            step["examples"] = []
    problems = check_project(engine.project.path)
    return render_page(request, "rules.html", {
        "playbooks": playbooks(rules, dry), "triggers": triggers(rules), "interactions": rules.interactions,
        "dry": dry, "dry_error": dry_error, "errors": [p for p in problems if not p.warning],
        "warnings": [p for p in problems if p.warning], "learning": rules.learning,
        "results": step_results(engine, user), "result_days": STEP_DAYS})
