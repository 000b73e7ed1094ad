"""The cart and payments: Stripe and Shopify webhooks turned into buyer evidence, matched to contacts
by email. `order.placed` (a paid checkout, a new order), `invoice.paid`, `cart.abandoned` (a checkout
left unfinished) and `subscription.started`.

Stripe signs `timestamp.body` (the `Stripe-Signature` header), checked by the `stripe` library's own
code with its five-minute tolerance; Shopify signs the body (base64 HMAC-SHA256 in
`X-Shopify-Hmac-Sha256`) and sends no time, so a replay is caught by its webhook id instead. Only what
the engine needs of an order is kept (ids, amount, currency, item count): no addresses or cards."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any, ClassVar

from channels.base import NormalizedEvent, WebhookHandler, WebhookRequest
from outreach.errors import WebhookRejected

STRIPE_HEADER = "Stripe-Signature"
SHOPIFY_HEADER = "X-Shopify-Hmac-Sha256"
STRIPE_TOLERANCE = 300  # seconds: Stripe's own default
# Stripe event type -> our evidence type
STRIPE_EVENTS = {"checkout.session.completed": "order.placed", "checkout.session.expired": "cart.abandoned",
                 "invoice.paid": "invoice.paid", "customer.subscription.created": "subscription.started"}
# Shopify topic -> our evidence type (a checkout update without completed_at is a cart left behind)
SHOPIFY_TOPICS = {"orders/create": "order.placed", "orders/paid": "invoice.paid",
                  "checkouts/create": "cart.abandoned", "checkouts/update": "cart.abandoned"}


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise WebhookRejected(400, "the body is not JSON") from None
    if not isinstance(data, dict):
        raise WebhookRejected(400, "the body is not a JSON object")
    return data


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


class StripeHandler(WebhookHandler):
    """`POST /webhooks/stripe`: a Stripe event (one per request), signed with the endpoint's secret."""

    max_body: ClassVar[int] = 1024 * 1024

    def __init__(self, secret: str) -> None:
        self.secret = secret

    def verify(self, request: WebhookRequest) -> None:
        # The SDK is imported here, by the one endpoint that needs it: it costs a third of a second.
        import stripe

        if not self.secret:
            raise WebhookRejected(403, "stripe.webhook_secret is not configured")
        header = request.headers.get(STRIPE_HEADER)
        if not header:
            raise WebhookRejected(403, f"missing {STRIPE_HEADER} header")
        try:
            stripe.WebhookSignature.verify_header(request.body, header, self.secret, tolerance=STRIPE_TOLERANCE)
        except (stripe.SignatureVerificationError, UnicodeDecodeError, ValueError):
            raise WebhookRejected(403, "Stripe signature does not verify (wrong secret, other body, or too old)") \
                from None

    def parse(self, request: WebhookRequest) -> list[NormalizedEvent]:
        event = _json_object(request.body)
        kind, event_id, created = event.get("type"), event.get("id"), event.get("created")
        obj = (event.get("data") or {}).get("object") if isinstance(event.get("data"), dict) else None
        if not isinstance(kind, str) or not isinstance(event_id, str) or not isinstance(obj, dict):
            raise WebhookRejected(400, "not a Stripe event (type, id and data.object are needed)")
        ours = STRIPE_EVENTS.get(kind)
        if ours is None:
            return []  # an event this engine does not use: acknowledged, nothing recorded
        details = _dict(obj.get("customer_details"))
        metadata = _dict(obj.get("metadata"))
        email = (_text(details.get("email")) or _text(obj.get("customer_email")) or _text(metadata.get("email")))
        if email is None:
            return []  # nothing to match a contact by (a subscription names only a customer id)
        when = datetime.fromtimestamp(created, UTC) if isinstance(created, int) else request.received_at
        data = {"stripe_event": kind, "id": _text(obj.get("id")), "amount": obj.get("amount_total",
                                                                                   obj.get("amount_paid")),
                "currency": _text(obj.get("currency")), "livemode": bool(event.get("livemode"))}
        return [NormalizedEvent(ours, when, "stripe", email=email.lower(), dedupe_key=f"stripe:{event_id}",
                                data={k: v for k, v in data.items() if v is not None})]


class ShopifyHandler(WebhookHandler):
    """`POST /webhooks/shopify`: an order or checkout, signed with the app's client secret."""

    max_body: ClassVar[int] = 2 * 1024 * 1024

    def __init__(self, secret: str) -> None:
        self.secret = secret

    def verify(self, request: WebhookRequest) -> None:
        if not self.secret:
            raise WebhookRejected(403, "shopify.webhook_secret is not configured")
        given = request.headers.get(SHOPIFY_HEADER)
        if not given:
            raise WebhookRejected(403, f"missing {SHOPIFY_HEADER} header")
        expected = base64.b64encode(hmac.new(self.secret.encode(), request.body, hashlib.sha256).digest()).decode()
        if not hmac.compare_digest(expected.encode(), given.strip().encode()):
            raise WebhookRejected(403, "Shopify signature does not verify")

    def parse(self, request: WebhookRequest) -> list[NormalizedEvent]:
        topic = (request.headers.get("X-Shopify-Topic") or "").strip().lower()
        body = _json_object(request.body)
        if not topic:
            raise WebhookRejected(400, "missing X-Shopify-Topic header")
        ours = SHOPIFY_TOPICS.get(topic)
        if ours is None:
            return []
        if ours == "cart.abandoned" and body.get("completed_at"):
            return []  # a checkout that became an order: orders/create tells that
        customer = _dict(body.get("customer"))
        email = _text(body.get("email")) or _text(customer.get("email")) or _text(body.get("contact_email"))
        if email is None:
            return []
        ref = body.get("token") if ours == "cart.abandoned" else body.get("id")
        if not isinstance(ref, str | int) or isinstance(ref, bool):
            raise WebhookRejected(400, f"a Shopify {topic} body has an {'token' if ours == 'cart.abandoned' else 'id'}")
        # once per order, and once per abandoned checkout however often Shopify updates it
        key = f"shopify:{ours}:{ref}"
        when = _shopify_time(body.get("created_at")) or request.received_at
        line_items = body.get("line_items")
        data = {"shopify_topic": topic, "id": str(ref), "amount": _text(body.get("total_price")),
                "currency": _text(body.get("currency")),
                "items": len(line_items) if isinstance(line_items, list) else None}
        return [NormalizedEvent(ours, when, "shopify", email=email.lower(), dedupe_key=key,
                                data={k: v for k, v in data.items() if v is not None})]


def _shopify_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
