"""Twilio webhooks: inbound SMS (replies and STOP/START/HELP keywords) and status callbacks.

Pure parsing and verification of the form fields Twilio posts; anything wrong raises
`WebhookRejected` with 403 (signature) or 400 (malformed) so that the route changes nothing.
`InboundSmsHandler` and `StatusHandler` are the route's handlers."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal
from xml.sax.saxutils import escape

from twilio.request_validator import RequestValidator

from channels.base import NormalizedEvent, WebhookHandler, WebhookOutcome, WebhookReply, WebhookRequest
from outreach.errors import WebhookRejected

SIGNATURE_HEADER = "X-Twilio-Signature"
SOURCE = "twilio"

Keyword = Literal["stop", "start", "help"]

# SPEC section 9 and Twilio's default keyword lists: the whole message, any case, surrounding blanks
# and trailing punctuation ignored (`normalize_keyword`).
KEYWORDS: dict[str, Keyword] = {
    **dict.fromkeys(("STOP", "STOPALL", "STOP ALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"),
                    "stop"),
    **dict.fromkeys(("START", "UNSTOP", "YES"), "start"),
    **dict.fromkeys(("HELP", "INFO"), "help"),
}
_TRAILING_PUNCTUATION = re.compile(r"[\W_]+$")  # anything but letters and digits, at the end
# Twilio's Advanced Opt-Out names the keyword class itself in OptOutType.
_OPT_OUT_TYPES: dict[str, Keyword] = {"STOP": "stop", "START": "start", "HELP": "help"}

_XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>'
_XML_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def verify_signature(auth_token: str, url: str, params: Mapping[str, str], signature: str | None) -> None:
    """Return quietly when `signature` (the X-Twilio-Signature header) is Twilio's HMAC of `url`
    (the public URL Twilio called, from config, with its query string) and the form `params`;
    raise WebhookRejected(403) when the token is unset or the signature is missing or wrong."""
    if not auth_token:
        raise WebhookRejected(403, "Twilio auth token is not configured")
    if not signature:
        raise WebhookRejected(403, f"missing {SIGNATURE_HEADER} header")
    if not RequestValidator(auth_token).validate(url, params, signature.strip()):
        raise WebhookRejected(403, "Twilio signature does not verify")


@dataclass
class InboundSms:
    """An SMS a contact sent to one of our numbers. `keyword` is set when the whole message is an
    opt-out, opt-in or help keyword; `data` keeps every field Twilio posted."""

    message_sid: str
    from_: str
    to: str
    body: str
    keyword: Keyword | None = None
    account_sid: str | None = None
    num_media: int = 0
    data: dict[str, str] = field(default_factory=dict)


def normalize_keyword(body: str) -> str:
    """A message as carriers match keywords: upper case, blanks collapsed, surrounding blanks and
    trailing punctuation dropped (" Stop! " -> "STOP", "stop  all." -> "STOP ALL")."""
    return " ".join(_TRAILING_PUNCTUATION.sub("", body.strip()).split()).upper()


def keyword_of(body: str, opt_out_type: str | None = None) -> Keyword | None:
    """The keyword class of a message: Twilio's OptOutType when it names one, else the whole body
    (normalized by `normalize_keyword`) looked up in KEYWORDS. "stop please" is a reply, not a keyword."""
    if opt_out_type and opt_out_type.strip().upper() in _OPT_OUT_TYPES:
        return _OPT_OUT_TYPES[opt_out_type.strip().upper()]
    return KEYWORDS.get(normalize_keyword(body))


def parse_inbound_sms(params: Mapping[str, str]) -> InboundSms:
    """Read Twilio's incoming-message webhook form. Raises WebhookRejected(400) when MessageSid
    or From is missing."""
    sid = (params.get("MessageSid") or params.get("SmsSid") or "").strip()
    sender = (params.get("From") or "").strip()
    if not sid or not sender:
        raise WebhookRejected(400, "inbound SMS needs MessageSid and From")
    body = params.get("Body") or ""
    try:
        num_media = int(params.get("NumMedia") or 0)
    except ValueError:
        num_media = 0
    return InboundSms(
        message_sid=sid, from_=sender, to=(params.get("To") or "").strip(), body=body,
        keyword=keyword_of(body, params.get("OptOutType")), account_sid=params.get("AccountSid") or None,
        num_media=num_media, data=dict(params.items()),
    )


def inbound_sms_events(sms: InboundSms, *, now: datetime | None = None) -> list[NormalizedEvent]:
    """Events for one inbound SMS: `sms.opted_out` / `sms.opted_in` for STOP / START keywords,
    nothing for HELP (the route answers it with `twiml_message`), otherwise `sms.replied`.
    Twilio sends no time for inbound messages, so `now` (default: the clock) is used; the touch is
    left to the engine (`conversation="sms"`: the latest SMS touch sent to that number)."""
    if sms.keyword == "help":
        return []
    kind = {"stop": "sms.opted_out", "start": "sms.opted_in"}.get(sms.keyword or "", "sms.replied")
    return [NormalizedEvent(
        type=kind, occurred_at=now or datetime.now(UTC), source=SOURCE,
        dedupe_key=f"{SOURCE}:{sms.message_sid}", phone=sms.from_, conversation="sms",
        data={**sms.data, "body": sms.body, "keyword": sms.keyword},
    )]


NOT_YET_OURS = "a status for a MessageSid no send of ours has recorded (yet)"
_INBOUND_STATUSES = frozenset({"receiving", "received"})


def parse_status(params: Mapping[str, str], *, now: datetime | None = None) -> NormalizedEvent | None:
    """Normalize a status callback for a message we sent: delivered -> `sms.delivered`,
    failed/undelivered -> `sms.failed` (ErrorCode in data["error_code"]), any other status ->
    `provider.<status>`. Returns None for inbound-message statuses
    (receiving, received). Raises WebhookRejected(400) without MessageSid or MessageStatus."""
    sid = (params.get("MessageSid") or params.get("SmsSid") or "").strip()
    raw_status = (params.get("MessageStatus") or params.get("SmsStatus") or "").strip().lower()
    status = re.sub(r"[^a-z0-9_]+", "_", raw_status).strip("_")
    if not sid or not status:
        raise WebhookRejected(400, "status callback needs MessageSid and MessageStatus")
    if status in _INBOUND_STATUSES:
        return None
    data: dict[str, object] = dict(params.items())
    if status == "delivered":
        kind = "sms.delivered"
    elif status in ("failed", "undelivered"):
        kind = "sms.failed"
        data["error_code"] = (params.get("ErrorCode") or "").strip() or None
    else:
        kind = f"provider.{status}"
    return NormalizedEvent(
        type=kind, occurred_at=now or datetime.now(UTC), source=SOURCE,
        dedupe_key=f"{SOURCE}:{sid}:{status}", provider_message_id=sid,
        phone=(params.get("To") or "").strip() or None, data=data,
        # by MessageSid only, never by phone: a callback that beats the send's record is kept and
        # attributed when the dispatcher records that MessageSid
        requires_touch=NOT_YET_OURS,
    )


def twiml_message(text: str | None) -> str:
    """TwiML for the webhook answer: an empty <Response/> sends nothing back; with `text` (a HELP
    answer) one <Message> carrying it, XML-escaped."""
    if not text:
        return f"{_XML_DECLARATION}<Response></Response>"
    return f"{_XML_DECLARATION}<Response><Message>{escape(_XML_FORBIDDEN.sub('', text))}</Message></Response>"


class _TwilioHandler(WebhookHandler):
    """Twilio posts a form and signs the public URL it called with the form's fields."""

    reads_form = True

    def __init__(self, auth_token: str) -> None:
        self.auth_token = auth_token

    def verify(self, request: WebhookRequest) -> None:
        verify_signature(self.auth_token, request.url, request.fields, request.headers.get(SIGNATURE_HEADER))


class InboundSmsHandler(_TwilioHandler):
    """An inbound SMS: a reply, an opt-out or opt-in keyword, or a HELP request (answered with
    `help_text` in TwiML)."""

    def __init__(self, auth_token: str, help_text: str | None) -> None:
        super().__init__(auth_token)
        self.help_text = help_text

    def parse(self, request: WebhookRequest) -> list[NormalizedEvent]:
        return inbound_sms_events(parse_inbound_sms(request.fields), now=request.received_at)

    def respond(self, request: WebhookRequest, outcome: WebhookOutcome) -> WebhookReply:
        help_asked = parse_inbound_sms(request.fields).keyword == "help"  # parse() accepted it already
        return WebhookReply(twiml_message(self.help_text if help_asked else None), "application/xml")


class StatusHandler(_TwilioHandler):
    """A delivery status callback for an SMS we sent."""

    def parse(self, request: WebhookRequest) -> list[NormalizedEvent]:
        if not request.fields.get("MessageSid"):
            raise WebhookRejected(400, "no MessageSid")
        event = parse_status(request.fields, now=request.received_at)
        return [] if event is None else [event]

    def respond(self, request: WebhookRequest, outcome: WebhookOutcome) -> WebhookReply:
        return WebhookReply("<Response></Response>", "application/xml")
