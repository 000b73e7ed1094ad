"""The JSON API under /api: contacts, evidence, the queue and the report, for scripts, CRMs and
websites. `Authorization: Bearer <token>` (from `outreach users add`); the pages' access rules apply:
a rep sees and acts on their own contacts only (another's id is a 404), a marketer reads everything
and approves nothing, an admin does all. Shapes follow the CLI's --json output (SPEC section 7)."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi import Body as BodyParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from outreach.accounts.owners import assign_owners
from outreach.accounts.store import refresh_stages
from outreach.analytics.build import build_report, check_owner
from outreach.analytics.model import Filters, Report, narrowing, period
from outreach.consent import BuyerConsentOnly, refuse_buyer_consent
from outreach.contact_info import (
    contact_detail,
    contact_json,
    find_contact_by,
    resolve_contacts,
    search_contacts,
    set_preference,
    validate_event,
)
from outreach.contacts import ACCOUNT_COLUMNS, COLUMNS, find_contact, upsert_contacts
from outreach.db import session_scope
from outreach.engine import Engine
from outreach.errors import InvalidInput, NotFound
from outreach.evidence import EvidenceIn
from outreach.models import STATUSES, Contact, UnattributedEvent, User
from outreach.payload import check_data, check_time
from outreach.personal import forget, personal_data
from outreach.queue import approve_all, edit, get_touch, list_touches, touch_json, transition
from outreach.senders import from_emails
from outreach.web.auth import owner_scope, require_actor, visible_owner
from outreach.web.dashboard import query_narrowing
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
MAX_BATCH = 1000  # items in one POST of a JSON list


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


BodyT = TypeVar("BodyT", bound=Body)


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


@router.get("/contacts/{contact}/personal-data",
            summary="Everything held about one person, as `contacts export-personal` (admins only)")
def personal(user: ApiUser, engine: EngineDep,
             contact: Annotated[str, Path(max_length=254, description="id, email or external id")]) -> dict[str, Any]:
    with session_scope(engine.db) as s:
        c = _visible(s, user, contact)
        _admin(user)
        return personal_data(s, c)


@router.post("/contacts/{contact}/forget",
             summary="Erase a person's personal data, as `contacts forget` (admins only; audited)")
def forget_contact(user: ApiUser, engine: EngineDep,
                   contact: Annotated[str, Path(max_length=254, description="id, email or external id")]
                   ) -> dict[str, Any]:
    with session_scope(engine.db) as s:
        c = _visible(s, user, contact)
        _admin(user)
        request = forget(s, c, secret=engine.settings.server.secret_key, actor=user.email, now=datetime.now(UTC))
        return {"forgotten": True, "contact_id": request.contact_id, "by": request.actor, "at": request.at.isoformat()}


def _admin(user: User) -> None:
    if user.role != "admin":
        raise Forbidden("only admins see or erase a person's personal data")


@router.post("/contacts/{contact}/preferences", summary="State the channel a contact prefers for an interaction")
def prefer(body: PreferenceBody, user: ApiUser, engine: EngineDep,
           contact: Annotated[str, Path(max_length=254)]) -> dict[str, Any]:
    with session_scope(engine.db) as s:
        c = _visible(s, user, contact)
        set_preference(s, engine, c.id or 0, body.interaction, body.channel, source="api")
    with session_scope(engine.db) as s:
        detail = contact_detail(s, engine, c.id or 0)
    return {"contact": detail["contact"], "stated": detail["stated"], "channels": detail["channels"]}


def _one_or_list(model: type[Body]) -> dict[str, Any]:
    """The request body a route takes when it reads its JSON itself: one `model`, or a list of them."""
    schema = TypeAdapter(model | Annotated[list[model], Field(max_length=MAX_BATCH)]).json_schema()  # type: ignore[valid-type]
    return {"requestBody": {"content": {"application/json": {"schema": schema}}, "required": True}}


def _one(model: type[BodyT], raw: Any) -> BodyT:
    """A single object validated as the route's model, its errors reported as FastAPI reports a body's."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]) from None


def _why(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'item'}: {e['msg']}" for e in exc.errors())


def _batch(items: list[Any]) -> None:
    if not items:
        raise InvalidInput("the list is empty")
    if len(items) > MAX_BATCH:
        raise InvalidInput(f"a list holds at most {MAX_BATCH:,} items (this one {len(items):,}): send several")


@router.post("/evidence", status_code=201, summary="Record what a buyer did (idempotent with `id`), or a list",
             responses={200: {"description": "a repeat of an `id` already recorded: nothing changed; or a list's "
                                             "`results`, one per item"},
                        403: {"description": "email.resubscribed and sms.opted_in: only the buyer lifts an opt-out"}},
             openapi_extra=_one_or_list(EvidenceBody))
def evidence(body: Annotated[Any, BodyParam()], user: ApiUser, engine: EngineDep) -> Any:
    if isinstance(body, list):
        return JSONResponse(_evidence_batch(body, user, engine), status_code=200)
    one = _one(EvidenceBody, body)
    validate_event(one.type)
    try:
        refuse_buyer_consent(one.type)
    except BuyerConsentOnly as exc:
        raise Forbidden(str(exc)) from None
    now = datetime.now(UTC)
    when = _utc(one.occurred_at) if one.occurred_at else now
    if when > now + timedelta(days=1):
        raise InvalidInput("occurred_at is in the future")
    if len(json.dumps(one.data, default=str)) > MAX_DATA:
        raise InvalidInput(f"data is over {MAX_DATA // 1024} KiB")
    ref = one.contact
    with session_scope(engine.db) as s:
        c = find_contact_by(s, id=ref.id, email=ref.email, external_id=ref.external_id, phone=ref.phone,
                            region=engine.settings.default_region)
        if not visible_owner(user, c.owner):
            raise NotFound("no such contact")
    # an id is unique within its source (the `source` given, else the token's user), not across them
    scope = f"source:{one.source}" if one.source else f"user:{user.id}"
    key = f"api:{scope}:{one.id}" if one.id else None
    try:
        result = engine.record([EvidenceIn(one.type, when, "api", contact_id=c.id, dedupe_key=key,
                                           data=one.data)], now=now)
    except IntegrityError:  # the same id, sent twice at once: the other request recorded it
        result = None
    if result is None or result.duplicates:
        return JSONResponse({"recorded": False, "duplicate": True, "contact_id": c.id, "id": one.id},
                            status_code=200)
    ev = result.recorded[0]
    return {"recorded": True, "duplicate": False, "contact_id": c.id, "id": one.id, "evidence_id": ev.id,
            "stage_changes": [{"from": ch.from_stage, "to": ch.to_stage} for ch in result.stage_changes]}


def _checked(one: EvidenceBody, now: datetime) -> datetime:
    """The item's time; InvalidInput or BuyerConsentOnly when it may not be recorded."""
    validate_event(one.type)
    refuse_buyer_consent(one.type)
    when = _utc(one.occurred_at) if one.occurred_at else now
    if when > now + timedelta(days=1):
        raise InvalidInput("occurred_at is in the future")
    if len(json.dumps(one.data, default=str)) > MAX_DATA:
        raise InvalidInput(f"data is over {MAX_DATA // 1024} KiB")
    return when


def _evidence_batch(items: list[Any], user: User, engine: Engine) -> dict[str, Any]:
    """Each item recorded, a repeat of an (source, id) already recorded, or rejected with its reason;
    the good ones in one transaction."""
    _batch(items)
    now = datetime.now(UTC)
    results: list[dict[str, Any]] = [{"index": i, "status": "rejected", "error": None} for i in range(len(items))]
    valid: list[tuple[int, EvidenceBody, datetime]] = []
    for i, raw in enumerate(items):
        try:
            one = EvidenceBody.model_validate(raw)
            valid.append((i, one, _checked(one, now)))
        except ValidationError as exc:
            results[i]["error"] = _why(exc)
        except (InvalidInput, BuyerConsentOnly) as exc:
            results[i]["error"] = str(exc)
    with session_scope(engine.db) as s:
        found = resolve_contacts(s, [(o.contact.id, o.contact.email, o.contact.external_id, o.contact.phone)
                                     for _i, o, _w in valid], engine.settings.default_region)
    events: list[tuple[int, EvidenceIn]] = []
    for (i, one, when), who in zip(valid, found, strict=True):
        if isinstance(who, str) or not visible_owner(user, who[1]):
            results[i]["error"] = who if isinstance(who, str) else "no such contact"
            continue
        scope = f"source:{one.source}" if one.source else f"user:{user.id}"
        key = f"api:{scope}:{one.id}" if one.id else None
        events.append((i, EvidenceIn(one.type, when, "api", contact_id=who[0], dedupe_key=key, data=one.data)))
    if events:
        try:
            result = engine.record([e for _i, e in events], now=now)
        except IntegrityError:  # a concurrent request recorded some of the same ids: theirs count
            result = engine.record([e for _i, e in events], now=now)
        fresh = {ev.dedupe_key for ev in result.recorded if ev.dedupe_key}
        for i, event in events:
            if event.dedupe_key is None or event.dedupe_key in fresh:
                results[i]["status"] = "recorded"
                fresh.discard(event.dedupe_key or "")  # a second item with the same id is the duplicate
            else:
                results[i]["status"] = "duplicate"
    return {"results": results}


class ContactBody(Body):
    """A contact to create or update: matched by external_id, then email. Unknown keys are refused;
    `attributes` holds any other field (industry, plan ...)."""

    email: Text | None = Field(default=None, max_length=320)
    phone: Text | None = Field(default=None, max_length=64)
    first_name: Text | None = Field(default=None, max_length=1000)
    last_name: Text | None = Field(default=None, max_length=1000)
    company: Text | None = Field(default=None, max_length=1000)
    title: Text | None = Field(default=None, max_length=1000)
    timezone: Text | None = Field(default=None, max_length=64)
    owner: Text | None = Field(default=None, max_length=320)
    external_id: Text | None = Field(default=None, max_length=255)
    account_id: Text | None = Field(default=None, max_length=255)
    account_name: Text | None = Field(default=None, max_length=1000)
    company_domain: Text | None = Field(default=None, max_length=253)
    role: Text | None = Field(default=None, max_length=64)
    consent_email: bool | None = None
    consent_sms: bool | None = None
    attributes: dict[str, Annotated[Text, Field(max_length=10_000)]] = Field(default={}, max_length=100)

    @field_validator("attributes")
    @classmethod
    def _not_columns(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if key.strip().lower() in (*COLUMNS, *ACCOUNT_COLUMNS) or not key.strip() or len(key) > 200:
                raise ValueError(f"'{key[:60]}' cannot be an attribute name")
        return value

    def as_row(self) -> dict[str, str]:
        row = {k: ("yes" if v else "no") if isinstance(v, bool) else v
               for k, v in self.model_dump(exclude={"attributes"}).items() if v is not None}
        return {**{k.strip().lower(): v for k, v in self.attributes.items()}, **row}


@router.post("/contacts", summary="Create or update a contact (by external_id, then email), or a list of them",
             openapi_extra=_one_or_list(ContactBody))
def upsert(body: Annotated[Any, BodyParam()], user: ApiUser, engine: EngineDep) -> Any:
    if user.role not in ("admin", "marketer"):
        raise Forbidden("contacts are created and updated by admins and marketers")
    items = body if isinstance(body, list) else [body]
    if isinstance(body, list):
        _batch(body)
    rows: list[dict[str, str]] = []
    results: list[dict[str, Any]] = []
    positions: list[int] = []
    for i, raw in enumerate(items):
        try:
            rows.append(_one(ContactBody, raw).as_row() if not isinstance(body, list)
                        else ContactBody.model_validate(raw).as_row())
            positions.append(i)
            results.append({"index": i, "status": "recorded", "error": None})
        except ValidationError as exc:
            results.append({"index": i, "status": "rejected", "error": _why(exc)})
    rules = engine.project.rules
    with session_scope(engine.db) as s:
        now = datetime.now(UTC)
        done = upsert_contacts(s, rows, region=engine.settings.default_region, first_stage=rules.first_stage,
                               now=now, secret=engine.settings.server.secret_key, roles=rules.accounts.roles)
        # as after a CSV import: owners by the project's rules, and the accounts' stages follow their members
        assign_owners(s, rules.accounts.owners, now)
        refresh_stages(s, rules.accounts, rules.stage_ids, done.account_ids, now, rule_at=rules.account_rule_at)
    for pos, outcome in zip(positions, done.outcomes, strict=True):
        results[pos].update(status=outcome.status, error=outcome.error)
    if isinstance(body, list):
        return {"results": results}
    if results[0]["status"] == "rejected":
        raise InvalidInput(results[0]["error"])
    with session_scope(engine.db) as s:
        row = rows[0]
        c = find_contact_by(s, external_id=row.get("external_id"), email=row.get("email"),
                            phone=None if row.get("external_id") or row.get("email") else row.get("phone"),
                            region=engine.settings.default_region)
        return {"contact": contact_json(c)}


@router.get("/queue", summary="Touches, oldest due first (every status unless `status`)")
def queue(user: ApiUser, engine: EngineDep, status: Annotated[str | None, Query(max_length=32)] = None,
          owner: Annotated[str | None, Query(max_length=254)] = None,
          limit: Annotated[int, Query(ge=1, le=5000)] = 500) -> list[dict[str, Any]]:
    if status and status not in STATUSES:
        raise InvalidInput(f"unknown status '{status}' (one of: {', '.join(STATUSES)})")
    with session_scope(engine.db) as s:
        pairs = list_touches(s, owner=owner_scope(user) or owner, status=status, limit=limit)
        senders = from_emails(s, engine.settings, (c.owner for _t, c in pairs))
        return [touch_json(t, c, senders[c.owner.lower() if c.owner else None]) for t, c in pairs]


@router.get("/queue/{touch_id}", summary="One touch")
def touch(touch_id: int, user: ApiUser, engine: EngineDep) -> dict[str, Any]:
    with session_scope(engine.db) as s:
        t, c = get_touch(s, touch_id, owner_scope(user))
        return touch_json(t, c, from_emails(s, engine.settings, [c.owner])[c.owner.lower() if c.owner else None])


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
        return touch_json(t, c, from_emails(s, engine.settings, [c.owner])[c.owner.lower() if c.owner else None])


@router.get("/report", summary="Funnel, history, conversion, velocity, steps, channels, queue (as `report --json`)")
def get_report(request: Request, user: ApiUser, engine: EngineDep,
               since: Annotated[str | None, Query(max_length=20)] = None,
               until: Annotated[str | None, Query(max_length=20)] = None,
               owner: Annotated[str | None, Query(max_length=320)] = None,
               stage: Annotated[str | None, Query(max_length=100)] = None,
               playbook: Annotated[str | None, Query(max_length=200)] = None) -> Report:
    """A rep's report covers their own contacts (`owner` is ignored for them, as in the queue); `since`
    and `until` are UTC days (YYYY-MM-DD). `stage` (contacts there now), `playbook` (its touches and the
    contacts it touched) and `attr.NAME=value` (a contact attribute) narrow it further."""
    with engine.reading() as s:
        first, last = period(since, until, datetime.now(UTC).date())
        chosen = owner_scope(user) or ((owner or "").strip().lower() or None)
        if chosen is not None and not owner_scope(user):
            check_owner(s, chosen)
        f = narrowing(Filters(first, last, chosen), engine.project.rules, stage, playbook,
                      query_narrowing(request)[2])
        return build_report(s, engine.project.rules, f, engine.project.settings.report.advance_within,
                            today=datetime.now(UTC).date())


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
