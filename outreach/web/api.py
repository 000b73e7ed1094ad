"""The JSON API under /api: contacts, evidence, the queue and the report, for scripts, CRMs and
websites. `Authorization: Bearer <token>` (from `outreach users add`); the pages' access rules apply:
a rep sees and acts on their own contacts only (another's id is a 404), a marketer reads everything
and approves nothing, an admin does all. Shapes follow the CLI's --json output (SPEC section 7)."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from outreach.consent import BuyerConsentOnly, refuse_buyer_consent
from outreach.contact_info import (
    contact_detail,
    contact_json,
    find_contact_by,
    search_contacts,
    set_preference,
    validate_event,
)
from outreach.contacts import find_contact
from outreach.db import session_scope
from outreach.errors import InvalidInput, NotFound
from outreach.evidence import EvidenceIn
from outreach.models import STATUSES, Contact, UnattributedEvent, User
from outreach.payload import check_data, check_time
from outreach.queue import approve_all, edit, get_touch, list_touches, touch_json, transition
from outreach.report import report
from outreach.web.auth import owner_scope, require_actor, visible_owner
from outreach.web.deps import ApiUser, EngineDep
from outreach.web.page_data import edit_channels
from outreach.web.sessions import Forbidden


class _Route(APIRoute):
    """A 422 that says which field and why, without echoing the input back: a NaN there could not
    even be written as JSON (a 500), and hostile input is not worth repeating."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                return JSONResponse({"detail": [{"type": e["type"], "loc": list(e["loc"]), "msg": e["msg"]}
                                                for e in exc.errors()]}, status_code=422)

        return route


router = APIRouter(prefix="/api", tags=["api"], route_class=_Route)
MAX_DATA = 64 * 1024  # an evidence's `data`, serialized


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("holds a NUL character")
    return value


Text = Annotated[str, AfterValidator(_no_nul)]


class ContactRef(Body):
    """Which contact: the first of id, email, external_id, phone that is given."""

    id: int | None = Field(default=None, ge=1, le=2**31 - 1)
    email: Text | None = Field(default=None, max_length=254)
    external_id: Text | None = Field(default=None, max_length=200)
    phone: Text | None = Field(default=None, max_length=40)


class EvidenceBody(Body):
    contact: ContactRef
    type: Text = Field(max_length=100, examples=["pricing.viewed"])
    occurred_at: datetime | None = Field(default=None, description="ISO 8601; default now, naive means UTC")
    data: dict[str, Any] = {}
    id: Text | None = Field(default=None, min_length=1, max_length=200,
                            description="Your id for this event: a repeat of it from the same source changes nothing")
    source: Text | None = Field(default=None, min_length=1, max_length=100, examples=["segment"],
                                description="The system the event comes from: `id`s are unique within it "
                                            "(default: the token's user)")

    @field_validator("occurred_at")
    @classmethod
    def _in_range(cls, value: datetime | None) -> datetime | None:
        try:
            return check_time(value, "occurred_at") if value is not None else None
        except InvalidInput as exc:
            raise ValueError(str(exc).removeprefix("occurred_at ")) from None

    @field_validator("data")
    @classmethod
    def _plain_data(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            check_data(value)
        except InvalidInput as exc:
            raise ValueError(str(exc)) from None
        return value


class PreferenceBody(Body):
    interaction: str = Field(max_length=64, examples=["strategic"])
    channel: str = Field(max_length=20, examples=["meeting"])


class ApproveBody(Body):
    ids: list[int] = Field(default=[], max_length=5000)
    all: bool = Field(default=False, description="every pending touch in your scope (or `owner`'s)")
    owner: str | None = Field(default=None, max_length=254)


class RejectBody(Body):
    ids: list[int] = Field(min_length=1, max_length=5000)
    reason: str = Field(min_length=1, max_length=500)


class EditBody(Body):
    subject: str | None = Field(default=None, max_length=300, description="empty: back to the template's")
    body: str | None = Field(default=None, max_length=20000, description="empty: back to the template's")
    channel: str | None = Field(default=None, max_length=20)
    due_at: datetime | None = None
    approve: bool = Field(default=False, description="approve it after the edit")


def _utc(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _visible(s: Session, user: User, ref: str | int) -> Contact:
    c = find_contact(s, ref)
    if not visible_owner(user, c.owner):
        raise NotFound(f"no contact '{ref}' (give an id, email or external id)")
    return c


@router.get("/me", summary="Who this token belongs to")
def me(user: ApiUser) -> dict[str, Any]:
    return {"email": user.email, "role": user.role}


@router.get("/contacts", summary="Search contacts (name, email, company, external id; stage; owner)")
def contacts(user: ApiUser, engine: EngineDep, q: Annotated[str, Query(max_length=200)] = "",
             stage: Annotated[str | None, Query(max_length=64)] = None,
             owner: Annotated[str | None, Query(max_length=254)] = None,
             limit: Annotated[int, Query(ge=1, le=500)] = 50,
             offset: Annotated[int, Query(ge=0)] = 0) -> dict[str, Any]:
    with session_scope(engine.db) as s:
        rows, total = search_contacts(s, text=q, stage=stage, owner=owner_scope(user) or owner,
                                      limit=limit, offset=offset)
        return {"contacts": [contact_json(c) for c in rows], "total": total, "limit": limit, "offset": offset}


@router.get("/contacts/{contact}", summary="A contact: stage, evidence, touches, channel picks (as `contacts show`)")
def contact(user: ApiUser, engine: EngineDep,
            contact: Annotated[str, Path(max_length=254, description="id, email or external id")]) -> dict[str, Any]:
    with session_scope(engine.db) as s:
        c = _visible(s, user, contact)
        return contact_detail(s, engine, c.id or 0)


@router.post("/contacts/{contact}/preferences", summary="State the channel a contact prefers for an interaction")
def prefer(body: PreferenceBody, user: ApiUser, engine: EngineDep,
           contact: Annotated[str, Path(max_length=254)]) -> dict[str, Any]:
    with session_scope(engine.db) as s:
        c = _visible(s, user, contact)
        set_preference(s, engine, c.id or 0, body.interaction, body.channel, source="api")
    with session_scope(engine.db) as s:
        detail = contact_detail(s, engine, c.id or 0)
    return {"contact": detail["contact"], "stated": detail["stated"], "channels": detail["channels"]}


@router.post("/evidence", status_code=201, summary="Record what a buyer did (idempotent with `id`)",
             responses={200: {"description": "a repeat of an `id` already recorded: nothing changed"},
                        403: {"description": "email.resubscribed and sms.opted_in: only the buyer lifts an opt-out"}})
def evidence(body: EvidenceBody, user: ApiUser, engine: EngineDep) -> Any:
    validate_event(body.type)
    try:
        refuse_buyer_consent(body.type)
    except BuyerConsentOnly as exc:
        raise Forbidden(str(exc)) from None
    now = datetime.now(UTC)
    when = _utc(body.occurred_at) if body.occurred_at else now
    if when > now + timedelta(days=1):
        raise InvalidInput("occurred_at is in the future")
    if len(json.dumps(body.data, default=str)) > MAX_DATA:
        raise InvalidInput(f"data is over {MAX_DATA // 1024} KiB")
    ref = body.contact
    with session_scope(engine.db) as s:
        c = find_contact_by(s, id=ref.id, email=ref.email, external_id=ref.external_id, phone=ref.phone,
                            region=engine.settings.default_region)
        if not visible_owner(user, c.owner):
            raise NotFound("no such contact")
    # an id is unique within its source (the `source` given, else the token's user), not across them
    scope = f"source:{body.source}" if body.source else f"user:{user.id}"
    key = f"api:{scope}:{body.id}" if body.id else None
    try:
        result = engine.record([EvidenceIn(body.type, when, "api", contact_id=c.id, dedupe_key=key,
                                           data=body.data)], now=now)
    except IntegrityError:  # the same id, sent twice at once: the other request recorded it
        result = None
    if result is None or result.duplicates:
        return JSONResponse({"recorded": False, "duplicate": True, "contact_id": c.id, "id": body.id},
                            status_code=200)
    ev = result.recorded[0]
    return {"recorded": True, "duplicate": False, "contact_id": c.id, "id": body.id, "evidence_id": ev.id,
            "stage_changes": [{"from": ch.from_stage, "to": ch.to_stage} for ch in result.stage_changes]}


@router.get("/queue", summary="Touches, oldest due first (every status unless `status`)")
def queue(user: ApiUser, engine: EngineDep, status: Annotated[str | None, Query(max_length=32)] = None,
          owner: Annotated[str | None, Query(max_length=254)] = None,
          limit: Annotated[int, Query(ge=1, le=5000)] = 500) -> list[dict[str, Any]]:
    if status and status not in STATUSES:
        raise InvalidInput(f"unknown status '{status}' (one of: {', '.join(STATUSES)})")
    with session_scope(engine.db) as s:
        return [touch_json(t, c) for t, c in list_touches(s, owner=owner_scope(user) or owner, status=status,
                                                          limit=limit)]


@router.get("/queue/{touch_id}", summary="One touch")
def touch(touch_id: int, user: ApiUser, engine: EngineDep) -> dict[str, Any]:
    with session_scope(engine.db) as s:
        t, c = get_touch(s, touch_id, owner_scope(user))
        return touch_json(t, c)


@router.post("/queue/approve", summary="Approve touches by id, or all pending ones in your scope")
def approve(body: ApproveBody, user: ApiUser, engine: EngineDep) -> dict[str, Any]:
    require_actor(user)
    now = datetime.now(UTC)
    with session_scope(engine.db) as s:
        if body.all:
            if body.ids:
                raise InvalidInput("give ids or all, not both")
            return {"approved": approve_all(s, now, owner=owner_scope(user) or body.owner)}
        if not body.ids:
            raise InvalidInput("give the ids to approve, or all: true")
        touches = transition(s, "approve", sorted(set(body.ids)), now, owner=owner_scope(user))
        return {"approved": len(touches), "ids": [t.id for t in touches]}


@router.post("/queue/reject", summary="Reject touches, with a reason")
def reject(body: RejectBody, user: ApiUser, engine: EngineDep) -> dict[str, Any]:
    require_actor(user)
    with session_scope(engine.db) as s:
        touches = transition(s, "reject", sorted(set(body.ids)), datetime.now(UTC), owner=owner_scope(user),
                             reason=body.reason)
        return {"rejected": len(touches), "ids": [t.id for t in touches]}


@router.post("/queue/{touch_id}/edit", summary="Edit a pending touch (subject, body, channel, send time)")
def edit_touch(touch_id: int, body: EditBody, user: ApiUser, engine: EngineDep) -> dict[str, Any]:
    require_actor(user)
    now = datetime.now(UTC)
    with session_scope(engine.db) as s:
        t, c = get_touch(s, touch_id, owner_scope(user))
        edit(s, touch_id, now, owner=owner_scope(user), subject=body.subject, body=body.body,
             channel=body.channel, due_at=_utc(body.due_at) if body.due_at else None,
             allowed_channels=edit_channels(engine, t), actor=user.email)
        engine.book_meetings(s, [t.contact_id])
        if body.approve:
            transition(s, "approve", [touch_id], now, owner=owner_scope(user))
        return touch_json(t, c)


@router.get("/report", summary="Funnel, stage velocity, response by channel and interaction (as `report --json`)")
def get_report(user: ApiUser, engine: EngineDep) -> dict[str, Any]:
    with session_scope(engine.db) as s:
        return report(s, engine.project.rules)


@router.get("/unattributed", summary="Provider events not provably a buyer's (admins only), newest first")
def unattributed(user: ApiUser, engine: EngineDep,
                 limit: Annotated[int, Query(ge=1, le=500)] = 100) -> list[dict[str, Any]]:
    if user.role != "admin":
        raise Forbidden("only admins see unattributed provider events")
    with session_scope(engine.db) as s:
        rows = s.exec(select(UnattributedEvent).order_by(col(UnattributedEvent.received_at).desc(),
                                                         col(UnattributedEvent.id).desc()).limit(limit)).all()
        return [{"id": r.id, "source": r.source, "type": r.type, "occurred_at": _utc(r.occurred_at).isoformat(),
                 "received_at": _utc(r.received_at).isoformat(), "reason": r.reason, "email": r.email,
                 "phone": r.phone, "provider_message_id": r.provider_message_id, "data": r.data} for r in rows]
