"""Data out and personal data: the contacts export (streamed), a person's own data (a subject access
request) and forgetting a person (erasure), audited.

Forgetting keeps what the dashboards and the learner count (the contact row, emptied; its evidence
types and times; its touches and stage changes) and erases what says who the person was: addresses,
names, attributes, message bodies, evidence payloads, raw provider events. The email and phone live on
only as keyed hashes on the do-not-contact list, so an import or API upsert refuses them later."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import String, cast, delete, func, inspect, or_, select, update
from sqlmodel import Session, col

from outreach import batch_loads, outbound, tokens
from outreach.config import Retention
from outreach.consent import STAFF_SOURCES
from outreach.evidence import RESPONSES
from outreach.models import (
    Account,
    ConsentChange,
    Contact,
    DoNotContact,
    ErasureRequest,
    Evidence,
    Message,
    Preference,
    StageChange,
    Suppression,
    Touch,
    TouchStatus,
    UnattributedEvent,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEvent,
    table_of,
)
from outreach.queue import iso

EXPORT_COLUMNS = ("id", "external_id", "email", "phone", "first_name", "last_name", "company", "title",
                  "timezone", "owner", "account_id", "account_name", "role", "stage", "stage_entered_at", "stage_proof",
                  "stage_proof_at", "preferences", "consent_email", "consent_sms", "suppressed", "evidence",
                  "touches_sent", "responses", "created_at")
EXPORT_BATCH = 1000


def export_rows(session: Session, batch: int = EXPORT_BATCH) -> Iterator[dict[str, Any]]:
    """Every contact as one flat row (EXPORT_COLUMNS), in id order. Keyset pages of `batch` contacts,
    each with a handful of set-based queries for its extras: memory stays flat whatever the table's size."""
    after = 0
    table = table_of(Contact)
    columns = [table.c[name] for name in ("id", "external_id", "email", "phone", "first_name", "last_name",
                                          "company", "title", "timezone", "owner", "account_id", "role", "stage",
                                          "stage_entered_at", "consent_email", "consent_sms", "created_at")]
    account = table_of(Account)
    while True:
        # Core rows, not ORM objects: a third of the time, and nothing kept in the session
        page = session.execute(select(*columns, account.c.name.label("account_name")).outerjoin(
            account, account.c.id == table.c.account_id).where(table.c.id > after).order_by(table.c.id)
            .limit(batch)).all()
        if not page:
            return
        ids = [row.id for row in page]
        after = ids[-1]
        proofs = _stage_proofs(session, ids)
        prefs = batch_loads.stated_preferences(session, ids)
        suppressed = batch_loads.suppressions(session, ids)
        evidence = _count_by_contact(session, Evidence, ids)
        responses = _count_by_contact(session, Evidence, ids, col(Evidence.type).in_(sorted(RESPONSES)))
        sent = _count_by_contact(session, Touch, ids, col(Touch.status) == TouchStatus.SENT)
        for c in page:
            cid = c.id
            proof, proof_at = proofs.get(cid, (None, None))
            yield {"id": cid, "external_id": c.external_id, "email": c.email, "phone": c.phone,
                   "first_name": c.first_name, "last_name": c.last_name, "company": c.company, "title": c.title,
                   "timezone": c.timezone, "owner": c.owner, "account_id": c.account_id,
                   "account_name": c.account_name, "role": c.role, "stage": c.stage,
                   "stage_entered_at": iso(c.stage_entered_at), "stage_proof": proof, "stage_proof_at": proof_at,
                   "preferences": ";".join(f"{k}={v}" for k, v in sorted(prefs.get(cid, {}).items())),
                   "consent_email": c.consent_email, "consent_sms": c.consent_sms,
                   "suppressed": ";".join(sorted(suppressed.get(cid, set()))),
                   "evidence": evidence.get(cid, 0), "touches_sent": sent.get(cid, 0),
                   "responses": responses.get(cid, 0), "created_at": iso(c.created_at)}


def _count_by_contact(session: Session, model: type[Evidence] | type[Touch], ids: list[int],
                      *conds: Any) -> dict[int, int]:
    cid_col = col(model.contact_id)
    return {cid: n for cid, n in session.execute(
        select(cid_col, func.count()).where(cid_col.in_(ids), *conds).group_by(cid_col))}


def _stage_proofs(session: Session, ids: list[int]) -> dict[int, tuple[str | None, str | None]]:
    """contact id -> (the evidence type that proved its latest stage change, when it happened)."""
    out: dict[int, tuple[str | None, str | None]] = {}
    for cid, kind, at in session.execute(
            select(col(StageChange.contact_id), col(Evidence.type), col(Evidence.occurred_at))
            .outerjoin(Evidence, col(Evidence.id) == col(StageChange.evidence_id))
            .where(col(StageChange.contact_id).in_(ids)).order_by(col(StageChange.at), col(StageChange.id))):
        out[cid] = (kind, iso(at))  # the latest wins
    return out


def personal_data(session: Session, contact: Contact) -> dict[str, Any]:
    """Everything held about one person, as one JSON-ready document (a subject access request)."""
    cid = contact.id or 0

    def rows(model: Any, order: Any) -> list[Any]:
        return list(session.execute(select(model).where(col(model.contact_id) == cid)
                                    .order_by(order, col(model.id))).scalars().all())

    touches = rows(Touch, col(Touch.created_at))
    messages = {m.touch_id: m for m in session.execute(select(Message).where(
        col(Message.touch_id).in_([t.id for t in touches] or [-1]))).scalars()}
    addresses = [a for a in (contact.email, contact.phone) if a]
    raw = session.execute(select(UnattributedEvent).where(or_(
        col(UnattributedEvent.email).in_(addresses or [""]), col(UnattributedEvent.phone).in_(addresses or [""])))
        .order_by(col(UnattributedEvent.received_at))).scalars().all() if addresses else []
    return {
        "contact": {"id": cid, "email": contact.email, "phone": contact.phone, "first_name": contact.first_name,
                    "last_name": contact.last_name, "company": contact.company, "title": contact.title,
                    "timezone": contact.timezone, "owner": contact.owner, "external_id": contact.external_id,
                    "attributes": dict(contact.attributes or {}), "stage": contact.stage,
                    "stage_entered_at": iso(contact.stage_entered_at), "created_at": iso(contact.created_at)},
        "consent": {"email": contact.consent_email, "sms": contact.consent_sms},
        "consent_history": [{"channel": a.channel, "granted": a.granted, "source": a.source, "reason": a.reason,
                             "actor": a.actor, "at": iso(a.at)} for a in rows(ConsentChange, col(ConsentChange.at))],
        "suppressions": [{"channel": s.channel, "reason": s.reason, "at": iso(s.at)}
                         for s in rows(Suppression, col(Suppression.at))],
        "preferences": [{"interaction": p.interaction, "channel": p.channel, "source": p.source,
                         "updated_at": iso(p.updated_at)} for p in rows(Preference, col(Preference.updated_at))],
        "stage_changes": [{"from": s.from_stage, "to": s.to_stage, "at": iso(s.at), "evidence_id": s.evidence_id}
                          for s in rows(StageChange, col(StageChange.at))],
        "evidence": [{"id": e.id, "type": e.type, "occurred_at": iso(e.occurred_at), "source": e.source,
                      "touch_id": e.touch_id, "channel": e.channel, "data": e.data}
                     for e in rows(Evidence, col(Evidence.occurred_at))],
        "messages_sent": [_touch_doc(t, messages.get(t.id or 0)) for t in touches],
        "messages_received": [{"type": e.type, "source": e.source, "occurred_at": iso(e.occurred_at),
                               "reason": e.reason, "data": e.data} for e in raw],
    }


def _touch_doc(t: Touch, m: Message | None) -> dict[str, Any]:
    out: dict[str, Any] = {"touch_id": t.id, "status": t.status, "interaction": t.interaction,
                           "channel": t.channel, "content": t.content, "sent_at": iso(t.sent_at),
                           "created_at": iso(t.created_at)}
    if m is not None:
        out.update({"to": m.to, "subject": m.subject, "text": m.text, "html": m.html})
    elif t.subject_override or t.body_override:
        out.update({"subject": t.subject_override, "text": t.body_override})
    return out


def forget(session: Session, contact: Contact, *, secret: str, actor: str, now: datetime) -> ErasureRequest:
    """Erase `contact`'s personal data in the caller's transaction, remember their addresses as keyed
    hashes on the do-not-contact list, and audit who asked. Touches still open are cancelled."""
    cid = contact.id or 0
    addresses = [a for a in (contact.email, contact.phone) if a]
    digests = [{"kind": kind, "digest": tokens.address_digest(secret, kind, value), "at": now}
               for kind, value in (("email", contact.email), ("phone", contact.phone)) if value]
    if digests:
        batch_loads.insert_ignore(session, inspect(DoNotContact).local_table, digests, ["digest"])
    session.execute(update(Contact).where(col(Contact.id) == cid).values(
        email=None, phone=None, first_name=None, last_name=None, company=None, title=None, external_id=None,
        attributes={}, consent_email=False, consent_sms=False))
    touch_ids = select(col(Touch.id)).where(col(Touch.contact_id) == cid).scalar_subquery()
    session.execute(update(Message).where(col(Message.touch_id).in_(touch_ids)).values(
        to="", subject=None, text="", html=None))
    session.execute(update(Touch).where(col(Touch.contact_id) == cid).values(subject_override=None,
                                                                            body_override=None))
    session.execute(update(Touch).where(col(Touch.contact_id) == cid, col(Touch.status).in_(
        [TouchStatus.PENDING, TouchStatus.APPROVED])).values(status=TouchStatus.CANCELLED, reason="forgotten",
                                                             updated_at=now))
    for address in addresses:  # a provider's refusal may quote the address ("550 no such user: ...")
        session.execute(update(Touch).where(col(Touch.contact_id) == cid, func.lower(col(Touch.reason)).contains(
            address.lower(), autoescape=True)).values(reason="(erased)"))
    session.execute(update(Evidence).where(col(Evidence.contact_id) == cid).values(data={}))
    # Dedupe keys are provider ids, but an inbound reply's may hold the sender: keep a hash of those.
    for eid, key in session.execute(select(col(Evidence.id), col(Evidence.dedupe_key)).where(
            col(Evidence.contact_id) == cid, col(Evidence.dedupe_key).is_not(None))).all():
        if key and any(a.lower() in key.lower() for a in addresses):
            session.execute(update(Evidence).where(col(Evidence.id) == eid).values(
                dedupe_key="forgotten:" + hashlib.sha256(key.encode()).hexdigest()))
    session.execute(update(ConsentChange).where(col(ConsentChange.contact_id) == cid).values(
        source="(erased)", reason="(erased)"))
    if addresses:
        lowered = [a.lower() for a in addresses]
        session.execute(delete(UnattributedEvent).where(or_(
            func.lower(col(UnattributedEvent.email)).in_(lowered), col(UnattributedEvent.phone).in_(addresses))))
    outbound.erase_contact(session, cid)
    if contact.account_id:
        _leave_account(session, cid, contact.account_id, now)
    request = ErasureRequest(contact_id=cid, actor=actor, at=now)
    session.add(request)
    session.flush()
    return request


def _leave_account(session: Session, cid: int, account_id: str, now: datetime) -> None:
    """The forgotten person leaves their account: an account of no one else goes (its name and domain
    may be the person's own business); one with other members keeps them, with the person's address
    taken out of the proof of its stage."""
    session.execute(update(Contact).where(col(Contact.id) == cid).values(account_id=None, role=None))
    account = session.get(Account, account_id)
    if account is None:
        return
    others = session.scalar(select(func.count()).select_from(Contact).where(col(Contact.account_id) == account_id))
    if not others:
        session.delete(account)
        return
    proof = dict(account.stage_proof or {})
    members = proof.get("members")
    if isinstance(members, list):
        proof["members"] = [{**m, "email": None} if isinstance(m, dict) and m.get("id") == cid else m
                            for m in members]
        account.stage_proof, account.updated_at = proof, now
        session.add(account)


PRUNE_BATCH = 5000


@dataclass
class Pruned:
    messages: int = 0
    evidence: int = 0
    unattributed: int = 0
    webhook_events: int = 0


def prune(session: Session, retention: Retention, now: datetime) -> Pruned:
    """Apply `retention:` (the scheduler runs it hourly): message bodies older than `message_bodies`
    emptied; evidence payloads from providers older than `provider_payloads` emptied (what staff and
    scripts wrote, `api`/`cli`/`web`, is theirs to keep), unattributed provider events and finished
    outbound webhook events older than that deleted. In batches, each row touched once."""
    done = Pruned()
    if retention.message_bodies is not None:
        cutoff = now - retention.message_bodies
        done.messages = _in_batches(session, Message, [
            col(Message.created_at) < cutoff,
            or_(col(Message.text) != "", col(Message.html).is_not(None), col(Message.subject).is_not(None))],
            {"text": "", "html": None, "subject": None})
    if retention.provider_payloads is not None:
        cutoff = now - retention.provider_payloads
        done.evidence = _in_batches(session, Evidence, [
            col(Evidence.recorded_at) < cutoff, col(Evidence.source).not_in(sorted(STAFF_SOURCES)),
            cast(col(Evidence.data), String) != "{}"], {"data": {}})
        done.unattributed = _delete_old(session, UnattributedEvent, col(UnattributedEvent.received_at) < cutoff)
        done.webhook_events = _prune_webhooks(session, cutoff)
    return done


def _in_batches(session: Session, model: Any, where: list[Any], values: dict[str, Any]) -> int:
    """UPDATE model SET values WHERE where, PRUNE_BATCH rows a statement (`where` must stop matching a
    row once it is updated): a year of messages is not rewritten in one long statement."""
    total = 0
    while True:
        ids = list(session.execute(select(col(model.id)).where(*where).limit(PRUNE_BATCH)).scalars())
        if not ids:
            return total
        session.execute(update(model).where(col(model.id).in_(ids)).values(**values))
        total += len(ids)
        session.flush()


def _delete_old(session: Session, model: Any, cond: Any) -> int:
    total = 0
    while True:
        ids = list(session.execute(select(col(model.id)).where(cond).limit(PRUNE_BATCH)).scalars())
        if not ids:
            return total
        session.execute(delete(model).where(col(model.id).in_(ids)))
        total += len(ids)


def _prune_webhooks(session: Session, cutoff: datetime) -> int:
    """Outbound events older than `cutoff` none of whose deliveries is still pending, with their log."""
    pending = select(col(WebhookDelivery.event_id)).where(col(WebhookDelivery.status) == "pending")
    total = 0
    while True:
        ids = list(session.execute(select(col(WebhookEvent.id)).where(
            col(WebhookEvent.created_at) < cutoff, col(WebhookEvent.id).not_in(pending)).limit(PRUNE_BATCH)).scalars())
        if not ids:
            return total
        deliveries = select(col(WebhookDelivery.id)).where(col(WebhookDelivery.event_id).in_(ids))
        session.execute(delete(WebhookAttempt).where(col(WebhookAttempt.delivery_id).in_(deliveries)))
        session.execute(delete(WebhookDelivery).where(col(WebhookDelivery.event_id).in_(ids)))
        session.execute(delete(WebhookEvent).where(col(WebhookEvent.id).in_(ids)))
        total += len(ids)
