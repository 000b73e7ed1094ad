"""What comes back from buyers, turned into evidence tied to the touch it answers: email replies
(by the Reply-To token, then In-Reply-To/References), calendar RSVPs (by the invite's UID) and
SMS (by the number, to the latest SMS touch of that conversation)."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from sqlalchemy import select

from channels.meeting import REPLY_EVENT
from channels.sendgrid_inbound import reply_tokens
from channels.twilio_webhooks import inbound_sms_events
from outreach import tokens
from outreach.config import Settings
from outreach.db import session_scope
from outreach.evidence import EvidenceIn
from outreach.models import SENT, Contact, Touch


def _touch_of(settings: Settings, mail: Any) -> int | None:
    secret = settings.server.secret_key
    for token in reply_tokens(mail, settings.sendgrid.inbound_domain):
        if (tid := tokens.touch_from_reply_token(secret, token)) is not None:
            return tid
    for mid in [mail.in_reply_to, *reversed(mail.references)]:
        if mid and (tid := tokens.touch_from_message_id(secret, mid)) is not None:
            return tid
    return None


def inbound_evidence(settings: Settings, mail: Any, now: datetime) -> list[EvidenceIn]:
    """Evidence from one Inbound Parse post: RSVPs first (they may look automatic), then the reply."""
    secret = settings.server.secret_key
    key = mail.message_id or hashlib.sha256(f"{mail.sender}|{mail.subject}|{mail.text}".encode()).hexdigest()[:32]
    items: list[EvidenceIn] = []
    for reply in mail.calendar_replies:
        kind = REPLY_EVENT.get(reply.partstat.upper())
        if kind is None:
            continue
        items.append(EvidenceIn(
            kind, reply.dtstamp or now, "inbound", touch_id=tokens.touch_from_uid(secret, reply.uid),
            email=reply.attendee or mail.sender, dedupe_key=f"rsvp:{reply.uid}:{reply.sequence}:{reply.partstat}:{key}",
            data={"uid": reply.uid, "partstat": reply.partstat, "comment": reply.comment}))
    if items:
        return items
    touch_id = _touch_of(settings, mail)
    kind = "email.auto_replied" if mail.auto_reply else "email.replied"
    data = {"subject": mail.subject, "text": mail.text[:4000], "from": mail.sender}
    if mail.auto_reply:
        data["auto_reply_reason"] = mail.auto_reply_reason
    return [EvidenceIn(kind, now, "inbound", touch_id=touch_id, email=mail.sender, dedupe_key=f"inbound:{key}",
                       data=data)]


def sms_evidence(engine: Any, sms: Any, now: datetime) -> list[EvidenceIn]:
    """Evidence from an inbound SMS, tied to the latest SMS touch sent to that number."""
    events = inbound_sms_events(sms, now=now)
    if not events:
        return []
    with session_scope(engine.db) as s:
        row = s.execute(select(Touch.id, Touch.contact_id).join(Contact, Contact.id == Touch.contact_id).where(
            Contact.phone == sms.from_, Touch.channel == "sms", Touch.status == SENT
        ).order_by(Touch.sent_at.desc()).limit(1)).first()  # type: ignore[union-attr]
    out = []
    for ev in events:
        out.append(EvidenceIn(ev.type, ev.occurred_at, ev.source, touch_id=row[0] if row else None,
                              contact_id=row[1] if row else None, phone=ev.phone, dedupe_key=ev.dedupe_key,
                              data=ev.data))
    return out
