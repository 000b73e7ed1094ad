"""What comes back from buyers by mail, turned into evidence tied to the touch it answers: email
replies (by the Reply-To token, then In-Reply-To/References) and calendar RSVPs (by the invite's
UID). `InboundParseHandler` is the route's handler for SendGrid Inbound Parse. (Inbound SMS need
no engine knowledge to parse: the engine ties them to their touch when it records them.)"""

from __future__ import annotations

import hashlib
from datetime import datetime

from channels.base import NormalizedEvent, WebhookHandler, WebhookRequest
from channels.meeting import REPLY_EVENT
from channels.sendgrid_inbound import MAX_POST, InboundEmail, parse_inbound, reply_tokens
from outreach import tokens
from outreach.config import Settings
from outreach.errors import WebhookRejected


def _touch_of(settings: Settings, mail: InboundEmail) -> int | None:
    secret = settings.server.secret_key
    for token in reply_tokens(mail, settings.sendgrid.inbound_domain):
        if (tid := tokens.touch_from_reply_token(secret, token)) is not None:
            return tid
    for mid in [mail.in_reply_to, *reversed(mail.references)]:
        if mid and (tid := tokens.touch_from_message_id(secret, mid)) is not None:
            return tid
    return None


def inbound_evidence(settings: Settings, mail: InboundEmail, now: datetime) -> list[NormalizedEvent]:
    """Evidence from one Inbound Parse post: RSVPs first (they may look automatic), then the reply."""
    secret = settings.server.secret_key
    key = mail.message_id or hashlib.sha256(f"{mail.sender}|{mail.subject}|{mail.text}".encode()).hexdigest()[:32]
    items: list[NormalizedEvent] = []
    for reply in mail.calendar_replies:
        kind = REPLY_EVENT.get(reply.partstat.upper())
        if kind is None:
            continue
        items.append(NormalizedEvent(
            kind, reply.dtstamp or now, "inbound", touch_id=tokens.touch_from_uid(secret, reply.uid),
            email=reply.attendee or mail.sender, dedupe_key=f"rsvp:{reply.uid}:{reply.sequence}:{reply.partstat}:{key}",
            data={"uid": reply.uid, "partstat": reply.partstat, "comment": reply.comment}))
    if items:
        return items
    touch_id = _touch_of(settings, mail)
    kind = "email.auto_replied" if mail.auto_reply else "email.replied"
    data: dict[str, object] = {"subject": mail.subject, "text": mail.text[:4000], "from": mail.sender}
    if mail.auto_reply:
        data["auto_reply_reason"] = mail.auto_reply_reason
    return [NormalizedEvent(kind, now, "inbound", touch_id=touch_id, email=mail.sender, dedupe_key=f"inbound:{key}",
                            data=data)]


class InboundParseHandler(WebhookHandler):
    """Inbound Parse: replies and calendar RSVPs. SendGrid does not sign these posts, so the URL
    configured at SendGrid carries a secret: `?token=` must match the project's inbound token,
    checked before the body is read."""

    # Raw mode sends the whole MIME message, attachments included, as one plain field: a part
    # limit below the body limit would refuse a genuine mail.
    max_body = MAX_POST
    max_part_size = MAX_POST
    reads_form = True
    verifies_url_only = True

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def verify(self, request: WebhookRequest) -> None:
        token = request.query.get("token")
        expected = tokens.short_mac(self.settings.server.secret_key, "inbound-parse", 24)
        if not token or not tokens.constant_eq(token, expected):
            raise WebhookRejected(403, "missing or wrong ?token= on the Inbound Parse URL")

    def parse(self, request: WebhookRequest) -> list[NormalizedEvent]:
        mail = parse_inbound(request.fields, request.files)
        return inbound_evidence(self.settings, mail, request.received_at)
