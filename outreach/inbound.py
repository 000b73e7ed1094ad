"""What comes back from buyers by mail, turned into evidence tied to the touch it answers: email
replies (by the Reply-To token, then In-Reply-To/References), calendar RSVPs (by the invite's
UID), and machine reports about our mail (bounces, read receipts, abuse reports). What cannot be
tied to a touch of ours is kept as unattributed, never as the buyer's.
`InboundParseHandler` is the route's handler for SendGrid Inbound Parse. (Inbound SMS need
no engine knowledge to parse: the engine ties them to their touch when it records them.)"""

from __future__ import annotations

import hashlib
from datetime import datetime

from channels.base import NormalizedEvent, WebhookHandler, WebhookRequest
from channels.meeting import REPLY_EVENT
from channels.sendgrid_inbound import MAX_POST, InboundEmail, auth_failure, parse_inbound, read_form, reply_tokens
from outreach import tokens
from outreach.config import Settings
from outreach.errors import WebhookRejected
from outreach.kinds import COUNTERED

NO_PROOF = ("matched by the sender address only: no reply token of ours and no reference to a message "
            "this engine sent")
FULL_TEXT_LIMIT = 20_000


def _touch_of(settings: Settings, mail: InboundEmail) -> int | None:
    secret = settings.server.secret_key
    for token in reply_tokens(mail, settings.sendgrid.inbound_domain):
        if (tid := tokens.touch_from_reply_token(secret, token)) is not None:
            return tid
    for mid in [mail.in_reply_to, *reversed(mail.references), *mail.original_ids]:
        if mid and (tid := tokens.touch_from_message_id(secret, mid)) is not None:
            return tid
    return None


# A machine report -> the event it is (a read receipt is no response; a hard bounce suppresses).
def _report_event(mail: InboundEmail) -> tuple[str, str | None]:
    report = mail.report
    assert report is not None
    if report.kind == "read_receipt":
        return "email.read_receipt", None
    if report.kind == "complaint":
        return "email.complained", report.recipients[0][0] if report.recipients else None
    failed = [r for r in report.recipients if r[1] == "failed"] or report.recipients
    address = failed[0][0] if failed else None
    return ("email.bounced" if report.hard else "email.soft_bounced"), address


def inbound_evidence(settings: Settings, mail: InboundEmail, now: datetime) -> list[NormalizedEvent]:
    """Evidence from one Inbound Parse post: RSVPs first (they may look automatic), then machine
    reports (bounces, read receipts, abuse reports), then the reply. Every item requires a touch of
    ours: a reply counts only with our reply token or a reference to a message we sent, and when
    SendGrid's SPF/DKIM verdicts do not say it fails; an RSVP only for an invite we sent (its UID),
    from the attendee it was sent to. Anything else is kept as unattributed, with the reason."""
    secret = settings.server.secret_key
    key = mail.message_id or hashlib.sha256(f"{mail.sender}|{mail.subject}|{mail.full_text}".encode()).hexdigest()[:32]
    forged = auth_failure(mail)
    items: list[NormalizedEvent] = []
    for reply in mail.calendar_replies:
        kind = REPLY_EVENT.get(reply.partstat.upper())
        if kind is None:
            continue
        invite = None if forged else tokens.touch_from_uid(secret, reply.uid)
        items.append(NormalizedEvent(
            kind, reply.dtstamp or now, "inbound", touch_id=invite,
            email=reply.attendee, dedupe_key=f"rsvp:{reply.uid}:{reply.sequence}:{reply.partstat}:{key}",
            data={"uid": reply.uid, "partstat": reply.partstat, "comment": reply.comment, "from": mail.sender},
            requires_touch=forged or f"calendar answer for an invite this engine did not send (UID {reply.uid[:200]})"))
    for counter in mail.calendar_counters:  # "propose a new time": outreach.counters moves the meeting
        invite = None if forged else tokens.touch_from_uid(secret, counter.uid)
        items.append(NormalizedEvent(
            COUNTERED, counter.dtstamp or now, "inbound", touch_id=invite, email=counter.attendee,
            dedupe_key=f"counter:{counter.uid}:{counter.start.isoformat()}:{key}",
            data={"uid": counter.uid, "proposed_start": counter.start.isoformat(),
                  "proposed_end": counter.end.isoformat(), "comment": counter.comment, "from": mail.sender},
            requires_touch=forged or f"a new time proposed for an invite this engine did not send "
                                     f"(UID {counter.uid[:200]})"))
    if items:
        return items
    touch_id = _touch_of(settings, mail)
    data: dict[str, object] = {"subject": mail.subject, "text": mail.text[:4000],
                               "full_text": mail.full_text[:FULL_TEXT_LIMIT], "from": mail.sender,
                               "spf": mail.spf, "dkim": mail.dkim}
    if mail.report is not None:
        kind, address = _report_event(mail)
        data.update(report=mail.report.kind, hard=mail.report.hard, detail=mail.report.detail,
                    recipients=[list(r) for r in mail.report.recipients])
        return [NormalizedEvent(kind, now, "inbound", touch_id=touch_id, email=address or None,
                                dedupe_key=f"inbound:{key}", data=data,
                                requires_touch=f"{mail.report.detail}: for mail this engine did not send")]
    kind = "email.auto_replied" if mail.auto_reply else "email.replied"
    if mail.auto_reply:
        data["auto_reply_reason"] = mail.auto_reply_reason
    return [NormalizedEvent(kind, now, "inbound", touch_id=None if forged else touch_id, email=mail.sender,
                            dedupe_key=f"inbound:{key}", data=data, requires_touch=forged or NO_PROOF)]


class InboundParseHandler(WebhookHandler):
    """Inbound Parse: replies and calendar RSVPs. SendGrid does not sign these posts, so the URL
    configured at SendGrid carries a secret: `?token=` must match the project's inbound token,
    checked before the body is read."""

    # The handler reads the multipart body itself (`read_form`), keeping each field's bytes for
    # SendGrid's `charsets` map and the raw MIME message; Starlette would decode them as UTF-8.
    max_body = MAX_POST
    verifies_url_only = True

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def verify(self, request: WebhookRequest) -> None:
        token = request.query.get("token")
        expected = tokens.short_mac(self.settings.server.secret_key, "inbound-parse", 24)
        if not token or not tokens.constant_eq(token, expected):
            raise WebhookRejected(403, "missing or wrong ?token= on the Inbound Parse URL")

    def parse(self, request: WebhookRequest) -> list[NormalizedEvent]:
        fields, files = read_form(request.body, request.headers.get("content-type", ""))
        mail = parse_inbound(fields, files)
        return inbound_evidence(self.settings, mail, request.received_at)
