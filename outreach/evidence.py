"""Recording what buyers did: match each event to its contact and touch, drop repeats, record it,
apply suppressions, move stages (cancelling the old stage's unsent touches) and fire triggers.
A whole batch (a webhook request of 1,000 events) is handled with a few queries in one transaction."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlmodel import Session

from outreach import batch_loads
from outreach.models import CANCELLED, OPEN_STATUSES, Contact, Evidence, StageChange, Suppression, Touch
from outreach.ruleset import Ruleset
from outreach.stages import next_stage, relevant_events

# Which evidence shuts which channel at once, and which opens it again.
SUPPRESS = {"email.bounced": "email", "email.complained": "email", "email.unsubscribed": "email",
            "sms.opted_out": "sms"}
UNSUPPRESS = {"sms.opted_in": "sms", "email.resubscribed": "email"}
# Evidence that is a buyer's response (it teaches channel choice); opens are not.
RESPONSES = {"email.clicked", "email.replied", "sms.replied", "meeting.accepted"}
NEGATIVE = {"meeting.declined", "email.unsubscribed", "email.complained", "sms.opted_out"}


@dataclass
class EvidenceIn:
    """One event to record. The contact is found by contact_id, touch, provider message id,
    email or phone, in that order."""

    type: str
    occurred_at: datetime
    source: str = "api"
    contact_id: int | None = None
    touch_id: int | None = None
    provider_message_id: str | None = None
    email: str | None = None
    phone: str | None = None
    dedupe_key: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class RecordResult:
    recorded: list[Evidence] = field(default_factory=list)
    duplicates: int = 0
    unmatched: list[EvidenceIn] = field(default_factory=list)
    stage_changes: list[StageChange] = field(default_factory=list)

    @property
    def contact_ids(self) -> list[int]:
        return sorted({e.contact_id for e in self.recorded})


def record(session: Session, rules: Ruleset, items: list[EvidenceIn], now: datetime) -> RecordResult:
    result = RecordResult()
    touches = _touches_for(session, items)
    contacts = _contacts_for(session, items)
    keys = [i.dedupe_key for i in items if i.dedupe_key]
    seen: set[str] = set()
    for part in range(0, len(keys), 900):
        seen.update(k for (k,) in session.execute(
            select(Evidence.dedupe_key).where(Evidence.dedupe_key.in_(keys[part:part + 900]))))  # type: ignore[union-attr]
    for item in items:
        if item.dedupe_key and item.dedupe_key in seen:
            result.duplicates += 1
            continue
        touch = touches.get(("id", item.touch_id)) or touches.get(("pmid", item.provider_message_id))
        contact_id = item.contact_id or (touch[0] if touch else None) or contacts.get(
            ("email", (item.email or "").lower())) or contacts.get(("phone", item.phone or ""))
        if contact_id is None:
            result.unmatched.append(item)
            continue
        if item.dedupe_key:
            seen.add(item.dedupe_key)
        ev = Evidence(contact_id=contact_id, type=item.type, occurred_at=item.occurred_at, recorded_at=now,
                      source=item.source, touch_id=touch[1] if touch else None,
                      channel=touch[2] if touch else None, interaction=touch[3] if touch else None,
                      dedupe_key=item.dedupe_key, data=item.data)
        session.add(ev)
        result.recorded.append(ev)
    session.flush()
    _suppress(session, result.recorded, now)
    result.stage_changes = _advance(session, rules, result.recorded, now)
    return result


def _touches_for(session: Session, items: list[EvidenceIn]) -> dict[tuple[str, Any], tuple[int, int, str, str]]:
    ids = sorted({i.touch_id for i in items if i.touch_id})
    pmids = sorted({i.provider_message_id for i in items if i.provider_message_id})
    out: dict[tuple[str, Any], tuple[int, int, str, str]] = {}
    cols = (Touch.contact_id, Touch.id, Touch.channel, Touch.interaction, Touch.provider_message_id)
    for part in batch_loads.chunks(ids):
        for cid, tid, ch, inter, _ in session.execute(select(*cols).where(Touch.id.in_(part))):  # type: ignore[union-attr]
            out[("id", tid)] = (cid, tid, ch, inter)
    for i in range(0, len(pmids), 900):
        for cid, tid, ch, inter, pmid in session.execute(
                select(*cols).where(Touch.provider_message_id.in_(pmids[i:i + 900]))):  # type: ignore[union-attr]
            out[("pmid", pmid)] = (cid, tid, ch, inter)
    return out


def _contacts_for(session: Session, items: list[EvidenceIn]) -> dict[tuple[str, str], int]:
    emails = sorted({i.email.lower() for i in items if i.email and not i.contact_id})
    phones = sorted({i.phone for i in items if i.phone and not i.contact_id})
    out: dict[tuple[str, str], int] = {}
    for i in range(0, max(len(emails), len(phones)), 400):
        conds = []
        if emails[i:i + 400]:
            conds.append(Contact.email.in_(emails[i:i + 400]))  # type: ignore[union-attr]
        if phones[i:i + 400]:
            conds.append(Contact.phone.in_(phones[i:i + 400]))  # type: ignore[union-attr]
        for cid, email, phone in session.execute(select(Contact.id, Contact.email, Contact.phone).where(or_(*conds))):
            if email:
                out[("email", email)] = cid
            if phone:
                out.setdefault(("phone", phone), cid)
    return out


def _suppress(session: Session, recorded: list[Evidence], now: datetime) -> None:
    adds: dict[tuple[int, str], str] = {}
    for ev in recorded:
        if ev.type in SUPPRESS:
            adds[(ev.contact_id, SUPPRESS[ev.type])] = ev.type
        elif ev.type in UNSUPPRESS:
            channel = UNSUPPRESS[ev.type]
            adds.pop((ev.contact_id, channel), None)
            session.execute(delete(Suppression).where(Suppression.contact_id == ev.contact_id,  # type: ignore[arg-type]
                                                      Suppression.channel == channel))
            if channel == "sms":
                session.execute(update(Contact).where(Contact.id == ev.contact_id).values(consent_sms=True))  # type: ignore[arg-type]
    rows = [{"contact_id": cid, "channel": ch, "reason": why, "at": now} for (cid, ch), why in adds.items()]
    if rows:
        batch_loads.insert_ignore(session, Suppression.__table__, rows, ["contact_id", "channel"])
        sms_out = [cid for (cid, ch) in adds if ch == "sms"]
        if sms_out:
            session.execute(update(Contact).where(Contact.id.in_(sms_out)).values(consent_sms=False))  # type: ignore[union-attr]


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
                select(Evidence.contact_id, Evidence.type, Evidence.occurred_at).where(
                    Evidence.contact_id.in_(part), Evidence.type.in_(wanted))):  # type: ignore[attr-defined]
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
                Touch.contact_id.in_(part), Touch.status.in_(OPEN_STATUSES),  # type: ignore[attr-defined]
                Touch.rule.startswith("playbook:"), Touch.stage != stage,  # type: ignore[attr-defined]
            ).values(status=CANCELLED, reason="stage_changed", updated_at=now))
    session.flush()
    return changes
