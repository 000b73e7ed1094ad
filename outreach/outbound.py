"""Outbound webhooks: the outbox written with each change, and its delivery.

`enqueue_*` write the event (its exact JSON body) and one delivery per subscribed receiver in the
caller's transaction: the change and the news of it commit together or not at all. `deliver_due`
(the scheduler's job, on one process at a time) posts what is due, oldest first, never an event of a
contact before that contact's earlier ones have gone out to the same receiver; a failure is retried
with exponential backoff for a day, then given up (and can be replayed). Nothing here touches the
event's own tables: a receiver that is down costs the engine nothing."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import func, select, update
from sqlmodel import Session, col

from channels.webhook_out import Attempt
from outreach.config import OutboundWebhook
from outreach.errors import NotFound
from outreach.evidence import SUPPRESS, RecordResult
from outreach.kinds import OutboundEvent
from outreach.models import ConsentChange, Contact, WebhookAttempt, WebhookDelivery, WebhookEvent, table_of
from outreach.queue import iso

FIRST_RETRY = timedelta(seconds=5)
LONGEST_WAIT = timedelta(hours=1)
GIVE_UP_AFTER = timedelta(days=1)
BATCH = 100
_ANSWERS = {"email.replied": OutboundEvent.EMAIL_REPLIED, "sms.replied": OutboundEvent.SMS_REPLIED,
            "meeting.accepted": OutboundEvent.MEETING_ACCEPTED}


class Poster(Protocol):
    def post(self, url: str, secret: str, msg_id: str, body: str) -> Attempt: ...


@dataclass(frozen=True)
class Outgoing:
    type: OutboundEvent
    contact_id: int | None
    data: dict[str, Any]
    at: datetime


def enqueue(session: Session, receivers: Sequence[OutboundWebhook], events: Iterable[Outgoing]) -> int:
    """Write `events` to the outbox with a delivery per receiver that subscribed to their type, in the
    caller's transaction, in a few statements however many; return how many deliveries were queued.
    No receiver, no row. Events keep their order (ids ascending), which delivery keeps per contact."""
    rows: list[dict[str, Any]] = []
    urls_of: dict[str, list[str]] = {}
    for event in events:
        urls = sorted({r.url for r in receivers if event.type in r.events})
        if not urls:
            continue
        msg_id = f"msg_{uuid.uuid4().hex}"
        body = json.dumps({"type": str(event.type), "timestamp": iso(event.at), "data": event.data},
                          separators=(",", ":"), default=str)
        rows.append({"msg_id": msg_id, "type": str(event.type), "contact_id": event.contact_id, "body": body,
                     "created_at": event.at})
        urls_of[msg_id] = urls
    if not rows:
        return 0
    events_table, deliveries_table = table_of(WebhookEvent), table_of(WebhookDelivery)
    session.execute(events_table.insert(), rows)  # executemany, in order: ids ascend with it
    ids: dict[str, int] = {}
    keys = [r["msg_id"] for r in rows]
    for part in range(0, len(keys), 500):
        for msg_id, event_id in session.execute(select(col(WebhookEvent.msg_id), col(WebhookEvent.id)).where(
                col(WebhookEvent.msg_id).in_(keys[part:part + 500]))):
            if event_id is not None:
                ids[msg_id] = event_id
    deliveries = [{"event_id": ids[r["msg_id"]], "url": url, "status": "pending", "attempts": 0,
                   "next_at": r["created_at"], "updated_at": r["created_at"]}
                  for r in rows for url in urls_of[r["msg_id"]]]
    session.execute(deliveries_table.insert(), deliveries)
    return len(deliveries)


def enqueue_record(session: Session, receivers: Sequence[OutboundWebhook], result: RecordResult,
                   now: datetime) -> int:
    """The outbound events of one `evidence.record`: replies, accepted meetings, opt-outs, then stage
    changes, each contact's in the order they happened."""
    if not receivers:
        return 0
    wanted = {e for r in receivers for e in r.events}
    events: list[tuple[datetime, int, Outgoing]] = []
    ids = sorted({e.contact_id for e in result.recorded} | {c.contact_id for c in result.stage_changes})
    who = _contacts(session, ids)
    for ev in result.recorded:
        evidence = {"id": ev.id, "type": ev.type, "occurred_at": iso(ev.occurred_at), "source": ev.source,
                    "channel": ev.channel, "touch_id": ev.touch_id}
        if ev.type in _ANSWERS:
            events.append((ev.occurred_at, 0, Outgoing(_ANSWERS[ev.type], ev.contact_id,
                                                       {"contact": who.get(ev.contact_id), "evidence": evidence},
                                                       now)))
        if ev.type in SUPPRESS and ev.type != "email.bounced":
            events.append((ev.occurred_at, 1, Outgoing(
                OutboundEvent.CONTACT_OPTED_OUT, ev.contact_id,
                {"contact": who.get(ev.contact_id), "channel": SUPPRESS[ev.type], "evidence": evidence}, now)))
    proofs = {ev.id: ev for ev in result.recorded}
    for ch in result.stage_changes:
        proof = proofs.get(ch.evidence_id)
        events.append((ch.at, 2, Outgoing(OutboundEvent.STAGE_CHANGED, ch.contact_id, {
            "contact": who.get(ch.contact_id), "from": ch.from_stage, "to": ch.to_stage, "at": iso(ch.at),
            "evidence": {"id": proof.id, "type": proof.type, "occurred_at": iso(proof.occurred_at)} if proof else None},
            now)))
    events.sort(key=lambda e: (e[0], e[1]))
    return enqueue(session, receivers, [e for _at, _n, e in events if e.type in wanted])


def enqueue_revocation(session: Session, receivers: Sequence[OutboundWebhook], change: ConsentChange,
                       now: datetime) -> int:
    """`contact.opted_out` for consent revoked by staff on the buyer's behalf (`contacts consent
    --revoked`), in the caller's transaction; a grant tells nothing. `evidence` is null (there is none):
    `revoked_by`, `source` and `reason` say who recorded it and why."""
    if change.granted or not any(OutboundEvent.CONTACT_OPTED_OUT in r.events for r in receivers):
        return 0
    who = _contacts(session, [change.contact_id]).get(change.contact_id)
    return enqueue(session, receivers, [Outgoing(OutboundEvent.CONTACT_OPTED_OUT, change.contact_id, {
        "contact": who, "channel": change.channel, "evidence": None, "revoked_by": change.actor,
        "source": change.source, "reason": change.reason}, now)])


def _contacts(session: Session, ids: list[int]) -> dict[int, dict[str, Any]]:
    out: dict[int, dict[str, Any]] = {}
    for part in range(0, len(ids), 500):
        for c in session.execute(select(Contact).where(col(Contact.id).in_(ids[part:part + 500]))).scalars():
            out[c.id or 0] = {"id": c.id, "email": c.email, "phone": c.phone, "external_id": c.external_id,
                              "stage": c.stage}
    return out


def backoff(attempts: int) -> timedelta:
    """The wait after the `attempts`-th failure: 5 s, 10 s, 20 s, ... at most an hour."""
    wait: timedelta = FIRST_RETRY * (2 ** min(max(0, attempts - 1), 20))
    return min(wait, LONGEST_WAIT)


@dataclass
class DeliveryRun:
    delivered: int = 0
    failed: int = 0  # will be retried
    given_up: int = 0
    held: int = 0  # waiting for an earlier event of the same contact


SessionFactory = Callable[[], AbstractContextManager[Session]]


def deliver_due(session_factory: SessionFactory, receivers: Sequence[OutboundWebhook], sender: Poster, now: datetime,
                limit: int = BATCH, only: int | None = None) -> DeliveryRun:
    """Post the deliveries due at `now` (or only delivery `only`), each attempt committed as it ends.
    `session_factory()` gives a context-managed session (db.session_scope bound to the engine)."""
    secrets = {r.url: r.secret for r in receivers}
    run = DeliveryRun()
    with session_factory() as s:
        query = (select(col(WebhookDelivery.id), col(WebhookDelivery.url), col(WebhookDelivery.attempts),
                        col(WebhookEvent.id), col(WebhookEvent.contact_id), col(WebhookEvent.msg_id),
                        col(WebhookEvent.body), col(WebhookEvent.created_at))
                 .join(WebhookEvent, col(WebhookEvent.id) == col(WebhookDelivery.event_id))
                 .where(col(WebhookDelivery.status) == "pending"))
        query = (query.where(col(WebhookDelivery.id) == only) if only is not None
                 else query.where(col(WebhookDelivery.next_at) <= now))
        due = s.execute(query.order_by(col(WebhookEvent.id), col(WebhookDelivery.id)).limit(limit)).all()
        first = _first_pending(s, {(r[1], r[4]) for r in due if r[4] is not None})
    blocked: set[tuple[str, int]] = set()
    for did, url, attempts, eid, cid, msg_id, body, created in due:
        key = (url, cid)
        if cid is not None and (key in blocked or first.get(key, eid) < eid):
            run.held += 1  # an earlier event of this contact has not reached this receiver yet
            continue
        secret = secrets.get(url)
        result = (sender.post(url, secret, msg_id, body) if secret is not None
                  else Attempt(False, None, "this receiver is no longer in config.yaml", 0))
        with session_factory() as s:
            s.add(WebhookAttempt(delivery_id=did, at=now, status=result.status, error=result.error,
                                 duration_ms=result.duration_ms))
            values: dict[str, Any] = {"attempts": attempts + 1, "last_status": result.status,
                                      "last_error": result.error, "updated_at": now}
            if result.delivered:
                values.update(status="delivered", delivered_at=now)
                run.delivered += 1
            elif now - _aware(created, now) >= GIVE_UP_AFTER or secret is None:
                values.update(status="failed")
                run.given_up += 1
            else:
                values.update(next_at=now + backoff(attempts + 1))
                run.failed += 1
            s.execute(update(WebhookDelivery).where(col(WebhookDelivery.id) == did).values(**values))
        if not result.delivered and cid is not None:
            blocked.add(key)
    return run


def _aware(dt: datetime, like: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=like.tzinfo)


def _first_pending(session: Session, keys: set[tuple[str, int | None]]) -> dict[tuple[str, int], int]:
    """(receiver, contact) -> the oldest event still pending for that pair."""
    if not keys:
        return {}
    cids = sorted({cid for _url, cid in keys if cid is not None})
    out: dict[tuple[str, int], int] = {}
    for part in range(0, len(cids), 500):
        for url, cid, eid in session.execute(
                select(col(WebhookDelivery.url), col(WebhookEvent.contact_id), func.min(col(WebhookEvent.id)))
                .join(WebhookEvent, col(WebhookEvent.id) == col(WebhookDelivery.event_id))
                .where(col(WebhookDelivery.status) == "pending",
                       col(WebhookEvent.contact_id).in_(cids[part:part + 500]))
                .group_by(col(WebhookDelivery.url), col(WebhookEvent.contact_id))):
            out[(url, cid)] = eid
    return out


def deliveries(session: Session, limit: int = 100) -> list[dict[str, Any]]:
    """The delivery log, newest first."""
    rows = session.execute(
        select(WebhookDelivery, col(WebhookEvent.type), col(WebhookEvent.msg_id), col(WebhookEvent.contact_id),
               col(WebhookEvent.created_at))
        .join(WebhookEvent, col(WebhookEvent.id) == col(WebhookDelivery.event_id))
        .order_by(col(WebhookDelivery.id).desc()).limit(limit)).all()
    return [{"id": d.id, "event": kind, "webhook_id": msg_id, "contact_id": cid, "url": d.url, "status": d.status,
             "attempts": d.attempts, "last_status": d.last_status, "last_error": d.last_error,
             "created_at": iso(created), "next_at": iso(d.next_at) if d.status == "pending" else None,
             "delivered_at": iso(d.delivered_at)} for d, kind, msg_id, cid, created in rows]


def replay(session: Session, delivery_id: int, now: datetime) -> WebhookDelivery:
    """Queue a delivery again (given up, or delivered and lost by the receiver), due now, with the same
    webhook-id so that a receiver that had it can tell."""
    delivery = session.get(WebhookDelivery, delivery_id)
    if delivery is None:
        raise NotFound(f"no webhook delivery {delivery_id} (see `outreach webhooks deliveries`)")
    delivery.status, delivery.next_at, delivery.updated_at = "pending", now, now
    session.add(delivery)
    session.flush()
    return delivery


def erase_contact(session: Session, contact_id: int) -> None:
    """Forgetting a person: their events' bodies keep only the type and the contact's id."""
    for eid, kind in session.execute(select(col(WebhookEvent.id), col(WebhookEvent.type)).where(
            col(WebhookEvent.contact_id) == contact_id)).all():
        session.execute(update(WebhookEvent).where(col(WebhookEvent.id) == eid).values(
            body=json.dumps({"type": kind, "timestamp": None, "data": {"contact": {"id": contact_id},
                                                                       "erased": True}})))
