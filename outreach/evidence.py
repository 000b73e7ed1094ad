"""Recording what buyers did: match each event to its contact and touch, drop repeats, record it,
apply suppressions, move stages (cancelling the old stage's unsent touches) and fire triggers.
A whole batch (a webhook request of 1,000 events) is handled with a few queries in one transaction.

Events arrive as `channels.base.NormalizedEvent`, the shape webhooks produce; what each event type
means to the engine (a response, a refusal, a suppression) is decided here and only here."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, delete, insert, inspect, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col

from channels.base import NormalizedEvent
from outreach import batch_loads, tokens
from outreach.consent import STAFF_SOURCES, refuse_buyer_consent
from outreach.models import (
    OPEN_STATUSES,
    Contact,
    DoNotContact,
    Evidence,
    StageChange,
    Suppression,
    Touch,
    TouchStatus,
    UnattributedEvent,
    table_of,
)
from outreach.ruleset import Ruleset
from outreach.stages import next_stage, relevant_events

# Which evidence shuts which channel at once, and which opens it again.
SUPPRESS = {"email.bounced": "email", "email.complained": "email", "email.unsubscribed": "email",
            "sms.opted_out": "sms"}
UNSUPPRESS = {"sms.opted_in": "sms", "email.resubscribed": "email"}
# Evidence that is a buyer's response (it teaches channel choice and counts as an answer); opens
# are not. NEGATIVE: the buyer's answer is no.
RESPONSES = frozenset({"email.clicked", "email.replied", "sms.replied", "meeting.accepted",
                       "call.connected", "social.replied"})  # a rep's task the buyer answered
NEGATIVE = frozenset({"meeting.declined", "email.unsubscribed", "email.complained", "sms.opted_out"})

# One event to record: the shape webhooks produce, under the name the engine's callers know.
EvidenceIn = NormalizedEvent

# A touch as matching needs it: (contact id, touch id, channel, interaction).
_Touch = tuple[int, int, str, str]


@dataclass
class RecordResult:
    recorded: list[Evidence] = field(default_factory=list)
    duplicates: int = 0
    unmatched: list[EvidenceIn] = field(default_factory=list)
    unattributed: list[EvidenceIn] = field(default_factory=list)  # kept raw: not provably the buyer's
    forgotten: int = 0  # unattributed events from a forgotten address: dropped, never stored
    stage_changes: list[StageChange] = field(default_factory=list)

    @property
    def contact_ids(self) -> list[int]:
        return sorted({e.contact_id for e in self.recorded})


def record(session: Session, rules: Ruleset, items: list[NormalizedEvent], now: datetime,
           secret: str | None = None) -> RecordResult:
    """Record `items` in `session` (the caller's transaction): repeats (by dedupe key) and events
    that match no contact are left out and counted. Staff sources may not lift a suppression
    (BuyerConsentOnly, nothing recorded): only the buyer does. An item that `requires_touch` and names
    no touch of ours (or, for a calendar answer, comes from another attendee than the invitee) is stored
    in UnattributedEvent instead: it moves no stage and teaches nothing, unless it comes from an address
    on the do-not-contact list (checked with `secret`, the key of its hashes): then it is dropped, so a
    forgotten person's address is not written down again."""
    for item in items:
        if item.source in STAFF_SOURCES:
            refuse_buyer_consent(item.type)
    result = RecordResult()
    touches = _touches_for(session, items)
    early = [i for i in items if i.requires_touch and i.provider_message_id and not i.touch_id
             and ("pmid", i.provider_message_id) not in touches]
    if early and lock_message_ids(session, [i.provider_message_id or "" for i in early]):
        # the send may have been recorded while we waited for its lock: look again (see take_unattributed)
        touches.update(_touches_for(session, early))
    def touch_of(item: NormalizedEvent) -> _Touch | None:
        return (touches.get(("id", item.touch_id)) or touches.get(("pmid", item.provider_message_id))
                or touches.get((f"conversation:{item.conversation}", item.phone)))

    # an event with a touch is that touch's contact's: only the others are looked up by address
    contacts = _contacts_for(session, [i for i in items if not i.contact_id and touch_of(i) is None])
    invitees = _invitees(session, items, touches)
    keys = [i.dedupe_key for i in items if i.dedupe_key]
    seen: set[str] = set()
    for part in range(0, len(keys), 900):
        seen.update(k for (k,) in session.execute(
            select(col(Evidence.dedupe_key)).where(col(Evidence.dedupe_key).in_(keys[part:part + 900]))) if k)
    rows: list[dict[str, Any]] = []
    for item in items:
        if item.dedupe_key and item.dedupe_key in seen:
            result.duplicates += 1
            continue
        touch = touch_of(item)
        if item.requires_touch:
            why = _unproven(item, touch, invitees)
            if why:
                result.unattributed.append(replace(item, requires_touch=why))
                continue
        attendee = invitees.get(touch[1], {}).get((item.email or "").lower()) if touch else None
        contact_id = item.contact_id or attendee or (touch[0] if touch else None) or contacts.get(
            ("email", (item.email or "").lower())) or contacts.get(("phone", item.phone or ""))
        if contact_id is None:
            result.unmatched.append(item)
            continue
        if item.dedupe_key:
            seen.add(item.dedupe_key)
        rows.append({"contact_id": contact_id, "type": item.type, "occurred_at": item.occurred_at,
                     "recorded_at": now, "source": item.source, "touch_id": touch[1] if touch else None,
                     "channel": touch[2] if touch else None, "interaction": touch[3] if touch else None,
                     "dedupe_key": item.dedupe_key, "data": dict(item.data)})
    result.recorded = _insert_evidence(session, rows)
    if secret and result.unattributed:
        kept = _not_forgotten(session, secret, result.unattributed)
        result.forgotten, result.unattributed = len(result.unattributed) - len(kept), kept
    _keep_unattributed(session, result.unattributed, now)
    _suppress(session, result.recorded, now)
    result.stage_changes = _advance(session, rules, result.recorded, now)
    return result


def _insert_evidence(session: Session, rows: list[dict[str, Any]]) -> list[Evidence]:
    """One multi-row INSERT ... RETURNING id for the batch, and plain Evidence objects for the callers
    (not in the session): building and flushing a thousand ORM objects cost four times the insert."""
    if not rows:
        return []
    session.flush()  # what the session holds goes first, as an autoflush would
    table = table_of(Evidence)
    ids = session.execute(insert(table).returning(table.c.id, sort_by_parameter_order=True), rows).scalars().all()
    return [Evidence.model_construct(id=i, **row) for i, row in zip(ids, rows, strict=True)]


def _unproven(item: NormalizedEvent, touch: _Touch | None, invitees: dict[int, dict[str, int]]) -> str | None:
    """Why `item` (which requires a touch) is not provably the buyer's, or None when it is."""
    if touch is None:
        return item.requires_touch
    if item.type.startswith("meeting.") and (item.email or "").lower() not in invitees.get(touch[1], {}):
        return f"calendar answer from {item.email or 'nobody'}, not the attendee the invite was sent to"
    return None


def _invitees(session: Session, items: list[NormalizedEvent],
              touches: dict[tuple[str, int | str | None], _Touch]) -> dict[int, dict[str, int]]:
    """touch id -> {address (lower-cased): contact id} of the buyers its invite was sent to (its contact,
    and the account's members it named), for the calendar answers in `items`."""
    tids = sorted({t[1] for i in items if i.requires_touch and i.type.startswith("meeting.")
                   for t in [touches.get(("id", i.touch_id))] if t})
    out: dict[int, dict[str, int]] = {}
    for part in batch_loads.chunks(tids):
        for tid, cid, address, more in session.execute(
                select(col(Touch.id), col(Contact.id), col(Contact.email), col(Touch.meeting_attendees)).join(
                Contact, col(Contact.id) == col(Touch.contact_id)).where(col(Touch.id).in_(part))):
            if tid is not None and cid is not None:
                # each buyer the invite named answers for themself: their RSVP is their evidence
                out[tid] = {str(a["email"]).lower(): int(a["contact_id"]) for a in more or []
                            if a.get("contact_id") is not None}
                out[tid][(address or "").lower()] = cid
    return out


def _not_forgotten(session: Session, secret: str, items: list[NormalizedEvent]) -> list[NormalizedEvent]:
    """`items` without those from an address on the do-not-contact list (it holds keyed hashes only)."""
    def digests(i: NormalizedEvent) -> list[str]:
        out = [tokens.address_digest(secret, "email", i.email.strip().lower())] if i.email else []
        return out + ([tokens.address_digest(secret, "phone", i.phone.strip())] if i.phone else [])

    wanted = sorted({d for i in items for d in digests(i)})
    listed: set[str] = set()
    for n in range(0, len(wanted), 500):
        listed.update(d for (d,) in session.execute(
            select(col(DoNotContact.digest)).where(col(DoNotContact.digest).in_(wanted[n:n + 500]))))
    return [i for i in items if not listed.intersection(digests(i))]


def _keep_unattributed(session: Session, items: list[NormalizedEvent], now: datetime) -> None:
    """Store events that are not provably the buyer's raw, once per dedupe key, for admins to see."""
    rows = [{"source": i.source, "type": i.type, "occurred_at": i.occurred_at, "received_at": now,
             "reason": (i.requires_touch or "")[:500], "email": i.email, "phone": i.phone,
             "provider_message_id": i.provider_message_id, "dedupe_key": i.dedupe_key,
             "data": {**dict(i.data), **({"touch_id": i.touch_id} if i.touch_id else {})}} for i in items]
    if not rows:
        return
    postgres = session.get_bind().dialect.name == "postgresql"
    for part in range(0, len(rows), 200):
        chunk = rows[part:part + 200]
        if postgres:
            session.execute(postgresql.insert(UnattributedEvent).values(chunk).on_conflict_do_nothing())
        else:
            session.execute(sqlite.insert(UnattributedEvent).values(chunk).on_conflict_do_nothing())


def _touches_for(session: Session, items: list[NormalizedEvent]) -> dict[tuple[str, int | str | None], _Touch]:
    """The touches items name: by id ("id", touch id), by provider message id ("pmid", id), and for
    items that continue a conversation, the latest touch sent on that channel to their phone
    ("conversation:<channel>", phone)."""
    ids = sorted({i.touch_id for i in items if i.touch_id})
    out: dict[tuple[str, int | str | None], _Touch] = {}
    cols = (col(Touch.contact_id), col(Touch.id), col(Touch.channel), col(Touch.interaction))
    for part in batch_loads.chunks(ids):
        for cid, tid, ch, inter in session.execute(select(*cols).where(col(Touch.id).in_(part))):
            if tid is not None:
                out[("id", tid)] = (cid, tid, ch, inter)
    # the message id is asked only where the touch id found nothing (record looks in that order)
    pmids = sorted({i.provider_message_id for i in items if i.provider_message_id and ("id", i.touch_id) not in out})
    for i in range(0, len(pmids), 900):
        for cid, tid, ch, inter, pmid in session.execute(
                select(*cols, col(Touch.provider_message_id)).where(
                    col(Touch.provider_message_id).in_(pmids[i:i + 900]))):
            if tid is not None:
                out[("pmid", pmid)] = (cid, tid, ch, inter)
    # An inbound SMS names no message of ours; a webhook brings one at a time, so one query each.
    for channel, phone in sorted({(i.conversation, i.phone) for i in items
                                  if i.conversation and i.phone and not i.touch_id}):
        row = session.execute(select(*cols).join(Contact, col(Contact.id) == col(Touch.contact_id)).where(
            col(Contact.phone) == phone, col(Touch.channel) == channel, col(Touch.status) == TouchStatus.SENT,
        ).order_by(col(Touch.sent_at).desc()).limit(1)).first()
        if row is not None and row[1] is not None:
            out[(f"conversation:{channel}", phone)] = (row[0], row[1], row[2], row[3])
    return out


def _contacts_for(session: Session, items: list[NormalizedEvent]) -> dict[tuple[str, str], int]:
    emails = sorted({i.email.lower() for i in items if i.email and not i.contact_id})
    phones = sorted({i.phone for i in items if i.phone and not i.contact_id})
    out: dict[tuple[str, str], int] = {}
    for i in range(0, max(len(emails), len(phones)), 400):
        conds: list[ColumnElement[bool]] = []
        if emails[i:i + 400]:
            conds.append(col(Contact.email).in_(emails[i:i + 400]))
        if phones[i:i + 400]:
            conds.append(col(Contact.phone).in_(phones[i:i + 400]))
        for cid, email, phone in session.execute(
                select(col(Contact.id), col(Contact.email), col(Contact.phone)).where(or_(*conds))):
            if cid is None:
                continue
            if email:
                out[("email", email)] = cid
            if phone:
                out.setdefault(("phone", phone), cid)
    return out


def _suppress(session: Session, recorded: list[Evidence], now: datetime) -> None:
    adds: dict[tuple[int, str], str] = {}
    # In the order the buyer acted; at the same moment an opt-out comes last, so it wins.
    for ev in sorted(recorded, key=lambda e: (e.occurred_at, e.type in SUPPRESS)):
        if ev.type in SUPPRESS:
            adds[(ev.contact_id, SUPPRESS[ev.type])] = ev.type
        elif ev.type in UNSUPPRESS:
            channel = UNSUPPRESS[ev.type]
            adds.pop((ev.contact_id, channel), None)
            session.execute(delete(Suppression).where(col(Suppression.contact_id) == ev.contact_id,
                                                      col(Suppression.channel) == channel))
            if channel == "sms":
                session.execute(update(Contact).where(col(Contact.id) == ev.contact_id).values(consent_sms=True))
    rows = [{"contact_id": cid, "channel": ch, "reason": why, "at": now} for (cid, ch), why in adds.items()]
    if rows:
        batch_loads.insert_ignore(session, inspect(Suppression).local_table, rows, ["contact_id", "channel"])
        sms_out = [cid for (cid, ch) in adds if ch == "sms"]
        if sms_out:
            session.execute(update(Contact).where(col(Contact.id).in_(sms_out)).values(consent_sms=False))


def _advance(session: Session, rules: Ruleset, recorded: list[Evidence], now: datetime) -> list[StageChange]:
    """Move every contact whose new evidence proves a further stage; cancel the old stage's touches."""
    wanted = relevant_events(rules)
    ids = sorted({ev.contact_id for ev in recorded if ev.type in wanted})
    if not ids:
        return []
    contacts = batch_loads.contacts_by_id(session, ids)
    events: dict[int, list[tuple[str, datetime]]] = defaultdict(list)
    for part in batch_loads.chunks(ids):
        for cid, kind, at in session.execute(
                select(col(Evidence.contact_id), col(Evidence.type), col(Evidence.occurred_at)).where(
                    col(Evidence.contact_id).in_(part), col(Evidence.type).in_(wanted))):
            events[cid].append((kind, at))
    changes = []
    proof = {(ev.contact_id, ev.type): ev.id for ev in recorded}
    cancel: dict[str, list[int]] = defaultdict(list)
    for cid in ids:
        contact = contacts[cid]
        advance = next_stage(rules, contact.stage, events[cid])
        if advance is None:
            continue
        change = StageChange(contact_id=cid, from_stage=contact.stage, to_stage=advance.stage, at=advance.at,
                             evidence_id=proof.get((cid, advance.condition.event)))
        session.add(change)
        cancel[advance.stage].append(cid)
        contact.stage = advance.stage
        contact.stage_entered_at = max(advance.at, contact.stage_entered_at)
        contact.stage_entry += 1
        session.add(contact)
        changes.append(change)
    # one statement per new stage, not one per contact (each would autoflush the session)
    for stage, cids in cancel.items():
        for part in batch_loads.chunks(cids):
            session.execute(update(Touch).where(
                col(Touch.contact_id).in_(part), col(Touch.status).in_(OPEN_STATUSES),
                col(Touch.rule).startswith("playbook:"), col(Touch.stage) != stage,
            ).values(status=TouchStatus.CANCELLED, reason="stage_changed", updated_at=now))
    session.flush()
    return changes


def take_unattributed(session: Session | Connection, provider_message_ids: list[str]) -> list[NormalizedEvent]:
    """Remove the unattributed events naming these provider message ids and return them as events to
    record again (the send they answer is now recorded, so `record` finds its touch by that id)."""
    out: list[NormalizedEvent] = []
    table = table_of(UnattributedEvent)
    lock_message_ids(session, provider_message_ids)
    ids = sorted(set(provider_message_ids))
    for part in (ids[i:i + 900] for i in range(0, len(ids), 900)):
        rows = session.execute(delete(table).where(table.c.provider_message_id.in_(part)).returning(
            table.c.source, table.c.type, table.c.occurred_at, table.c.reason, table.c.email, table.c.phone,
            table.c.provider_message_id, table.c.dedupe_key, table.c.data)).all()
        for source, kind, at, reason, email, phone, pmid, key, data in rows:
            data = dict(data or {})
            touch_id = data.pop("touch_id", None)
            out.append(NormalizedEvent(type=kind, occurred_at=at, source=source, email=email, phone=phone,
                                       provider_message_id=pmid, dedupe_key=key, data=data,
                                       touch_id=touch_id if isinstance(touch_id, int) else None,
                                       requires_touch=reason or None))
    return sorted(out, key=lambda e: e.occurred_at)


def early_callbacks(session: Session, limit: int = 5000) -> list[str]:
    """Provider message ids of unattributed events whose touch has been recorded since they came."""
    table = table_of(UnattributedEvent)
    return [pmid for (pmid,) in session.execute(select(table.c.provider_message_id).join(
        Touch, col(Touch.provider_message_id) == table.c.provider_message_id).distinct().limit(limit)) if pmid]


def lock_message_ids(session: Session | Connection, provider_message_ids: list[str]) -> bool:
    """On PostgreSQL, take a transaction lock per provider message id (in one order: no deadlocks).
    The dispatcher takes it when it records a send, a webhook when it finds no send for a message id:
    so either the webhook sees the send, or the dispatcher sees the event the webhook kept. SQLite has
    one writer at a time; housekeeping's sweep catches what is left there. False: no lock taken."""
    bind = session.get_bind() if isinstance(session, Session) else session
    if bind.dialect.name != "postgresql" or not provider_message_ids:
        return False
    session.execute(text("SELECT pg_advisory_xact_lock(h) FROM (SELECT DISTINCT hashtext(x) AS h "
                         "FROM unnest(CAST(:ids AS text[])) AS x ORDER BY h) AS ids"),
                    {"ids": sorted(set(provider_message_ids))})
    return True
