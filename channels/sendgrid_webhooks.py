"""SendGrid's signed Event Webhook (Inbound Parse, the other direction, is in sendgrid_inbound).

Pure parsing and verification: callers hand in the raw body and get `NormalizedEvent`s back;
`EventWebhookHandler` is the route's handler.
A request that is not verified raises `WebhookRejected(403)` and a body that is not a JSON array
400, so that the route can answer without changing anything; a bad event inside a good batch is
kept raw instead (see `parse_events`)."""

from __future__ import annotations

import binascii
import hashlib
import json
import logging
import re
import time
from datetime import UTC, datetime

from sendgrid.helpers.eventwebhook import EventWebhook

from channels.base import TOUCH_ARG, NormalizedEvent, WebhookHandler, WebhookRequest
from outreach.errors import WebhookRejected

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
SOURCE = "sendgrid"
log = logging.getLogger(__name__)


# --- Event Webhook ---------------------------------------------------------------------------

def verify_event_signature(public_key_b64: str, body: bytes, signature: str | None, timestamp: str | None,
                           *, max_age: int = 600, now: float | None = None) -> None:
    """Return quietly when `body` carries a valid ECDSA signature made at most `max_age` seconds
    ago (or as far in the future, for clock skew); raise WebhookRejected(403) otherwise, including
    when no verification key is configured."""
    if not public_key_b64:
        raise WebhookRejected(403, "SendGrid event webhook verification key is not configured")
    if not signature or not timestamp:
        raise WebhookRejected(403, f"missing {SIGNATURE_HEADER} or {TIMESTAMP_HEADER} header")
    try:
        signed_at = int(timestamp.strip())
    except ValueError:
        raise WebhookRejected(403, f"{TIMESTAMP_HEADER} is not a unix time") from None
    # SendGrid shows the bare base64 key; accept a pasted PEM block as well.
    key = re.sub(r"-----(BEGIN|END) PUBLIC KEY-----|\s", "", public_key_b64)
    try:
        verifier = EventWebhook(key)
    except ValueError:
        raise WebhookRejected(403, "SendGrid event webhook verification key is invalid") from None
    try:
        # The SDK signs str(timestamp) + body as text; a body that is not UTF-8 cannot be SendGrid's.
        valid = verifier.verify_signature(body.decode("utf-8"), signature.strip(), timestamp.strip())
    except (UnicodeDecodeError, binascii.Error, ValueError):
        valid = False
    if not valid:
        raise WebhookRejected(403, "SendGrid event webhook signature does not verify")
    current = time.time() if now is None else now
    if abs(current - signed_at) > max_age:
        raise WebhookRejected(403, f"SendGrid event webhook timestamp is {int(current - signed_at)}s "
                                   f"old (limit {max_age}s): possible replay")


# Event name -> normalized type. bounce and dropped are decided by _classify.
_EVENT_TYPES: dict[str, str] = {
    "processed": "provider.processed",
    "deferred": "provider.deferred",
    "delivered": "email.delivered",
    "open": "email.opened",
    "click": "email.clicked",
    "spamreport": "email.complained",
    "unsubscribe": "email.unsubscribed",
    "group_unsubscribe": "email.unsubscribed",
    "group_resubscribe": "email.resubscribed",
}


NOT_OURS = "mail this engine did not send: no touch id in its custom args and an unknown message id"


def parse_events(body: bytes, received_at: datetime | None = None) -> list[NormalizedEvent]:
    """Normalize one Event Webhook batch (a JSON array of event objects).

    Raises WebhookRejected(400) when the body is not a JSON array. A bad item in it (not an object,
    no string `event`, no numeric `timestamp`) does not refuse the batch: SendGrid would retry the
    good events for a day and then drop them. It is logged and returned raw as `provider.malformed`,
    which the engine keeps as unattributed. Every event requires a touch of ours: SendGrid reports
    all mail of the account (password resets, newsletters), and those must not count."""
    try:
        items: object = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise WebhookRejected(400, f"event webhook body is not JSON: {exc}") from None
    if not isinstance(items, list):
        raise WebhookRejected(400, "event webhook body must be a JSON array of events")
    now = received_at or datetime.now(UTC)
    events: list[NormalizedEvent] = []
    for index, item in enumerate(items):
        problem, name, occurred_at = _check(index, item)
        if problem is not None or not isinstance(item, dict):
            log.warning("SendGrid event webhook: %s; kept raw: %.2000r", problem, item)
            digest = hashlib.sha256(json.dumps(item, sort_keys=True, default=str).encode()).hexdigest()
            events.append(NormalizedEvent("provider.malformed", now, SOURCE, dedupe_key=f"sendgrid:bad:{digest}",
                                          data={"raw": item}, requires_touch=f"malformed event: {problem}"))
            continue
        events.append(_normalize(item, name, occurred_at or now))
    return events


# What a buyer did to their address at SendGrid, not an answer to one message: an unsubscribe from a
# suppression group, a spam report, a bounce, a resubscribe hold for our sends whatever mail caused them
# (SendGrid itself applies them to every later send), so they count by address, touch or no touch.
ADDRESS_EVENTS = frozenset({"email.unsubscribed", "email.resubscribed", "email.complained", "email.bounced"})


def _check(index: int, item: object) -> tuple[str | None, str, datetime | None]:
    """(what is wrong with event #index or None, its lower-cased name, when it happened)."""
    if not isinstance(item, dict):
        return f"event #{index} is not a JSON object", "", None
    name, stamp = item.get("event"), item.get("timestamp")
    if not isinstance(name, str) or not name.strip():
        return f"event #{index} has no 'event' name", "", None
    if isinstance(stamp, bool) or not isinstance(stamp, int | float):
        return f"event #{index} ({name}) has no numeric 'timestamp'", name, None
    try:
        return None, name.strip().lower(), datetime.fromtimestamp(stamp, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return f"event #{index} ({name}) has an impossible timestamp", name, None


def _normalize(item: dict[str, object], name: str, occurred_at: datetime) -> NormalizedEvent:
    kind = _classify(item, name)
    event_id = item.get("sg_event_id")
    if isinstance(event_id, str) and event_id:
        dedupe_key = f"sendgrid:{event_id}"
    else:  # old or hand-made events have no id: the content itself identifies a repeat
        digest = hashlib.sha256(json.dumps(item, sort_keys=True, default=str).encode()).hexdigest()
        dedupe_key = f"sendgrid:sha256:{digest}"
    message_id = item.get("sg_message_id")
    # sg_message_id is X-Message-Id (what the send call returned) plus ".filter..." suffixes.
    provider_message_id = message_id.split(".", 1)[0] or None if isinstance(message_id, str) else None
    address = item.get("email")
    return NormalizedEvent(
        type=kind, occurred_at=occurred_at, source=SOURCE, dedupe_key=dedupe_key,
        touch_id=_touch_id(item.get(TOUCH_ARG)), provider_message_id=provider_message_id,
        email=address.strip().lower() or None if isinstance(address, str) else None,
        data=dict(item), requires_touch=None if kind in ADDRESS_EVENTS else NOT_OURS,
    )


def _classify(item: dict[str, object], name: str) -> str:
    if name == "bounce":
        # A "blocked" bounce is a refusal of this message (IP reputation, content), not a bad address.
        if str(item.get("type", "")).strip().lower() == "blocked":
            return "provider.blocked"
        return "email.bounced"
    if name == "dropped":
        reason = str(item.get("reason", "")).lower()
        if "unsubscribe" in reason:
            return "email.unsubscribed"
        if "spam report" in reason:
            return "email.complained"
        # "Invalid" is a bad address; "Invalid SMTPAPI header" is our own request's fault.
        if "bounce" in reason or ("invalid" in reason and "smtpapi" not in reason):
            return "email.bounced"
        return "provider.dropped"
    if name in _EVENT_TYPES:
        return _EVENT_TYPES[name]
    return "provider." + (re.sub(r"[^a-z0-9_]+", "_", name).strip("_") or "unknown")


def _touch_id(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"\s*\d{1,18}\s*", value):
        return int(value)
    return None


class EventWebhookHandler(WebhookHandler):
    """The signed Event Webhook (`sendgrid.webhook_public_key`), batches of up to ~1,000 events."""

    def __init__(self, public_key_b64: str) -> None:
        self.public_key_b64 = public_key_b64

    def verify(self, request: WebhookRequest) -> None:
        verify_event_signature(self.public_key_b64, request.body, request.headers.get(SIGNATURE_HEADER),
                               request.headers.get(TIMESTAMP_HEADER))

    def parse(self, request: WebhookRequest) -> list[NormalizedEvent]:
        return parse_events(request.body, request.received_at)
