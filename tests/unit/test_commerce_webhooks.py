"""Stripe events and Shopify topics -> evidence: which become which, matched by which email, and what
is left out (events the engine does not use, bodies without an email)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from channels.base import WebhookRequest
from channels.commerce_webhooks import ShopifyHandler, StripeHandler
from outreach.errors import WebhookRejected

NOW = datetime(2026, 3, 2, 10, tzinfo=UTC)


def request(body: dict[str, Any], **headers: str) -> WebhookRequest:
    return WebhookRequest("https://x/webhooks", headers, {}, json.dumps(body).encode(), NOW)


def stripe_event(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    return {"id": "evt_1", "type": kind, "created": 1772445600, "data": {"object": {"id": "obj_1", **obj}}}


@pytest.mark.parametrize(("kind", "obj", "expected"), [
    ("checkout.session.completed", {"customer_details": {"email": "Ada@X.org"}, "amount_total": 900,
                                    "currency": "eur"}, ("order.placed", "ada@x.org")),
    ("checkout.session.expired", {"customer_email": "ada@x.org"}, ("cart.abandoned", "ada@x.org")),
    ("invoice.paid", {"customer_email": "ada@x.org", "amount_paid": 900}, ("invoice.paid", "ada@x.org")),
    ("customer.subscription.created", {"metadata": {"email": "ada@x.org"}}, ("subscription.started", "ada@x.org")),
    ("customer.subscription.created", {"customer": "cus_1"}, None),  # no email to match by
    ("charge.refunded", {"customer_email": "ada@x.org"}, None),  # not used by the engine
])
def test_stripe_events(kind: str, obj: dict[str, Any], expected: tuple[str, str] | None) -> None:
    events = StripeHandler("whsec_x").parse(request(stripe_event(kind, obj)))
    if expected is None:
        assert events == []
        return
    (event,) = events
    assert (event.type, event.email, event.dedupe_key, event.source) == (*expected, "stripe:evt_1", "stripe")
    assert event.occurred_at == datetime.fromtimestamp(1772445600, UTC) and event.data["id"] == "obj_1"


@pytest.mark.parametrize(("topic", "body", "expected"), [
    ("orders/create", {"id": 5, "email": "ada@x.org", "total_price": "9"}, ("order.placed", "shopify:order.placed:5")),
    ("orders/paid", {"id": 5, "customer": {"email": "ada@x.org"}}, ("invoice.paid", "shopify:invoice.paid:5")),
    ("checkouts/update", {"token": "t1", "email": "ada@x.org", "completed_at": None},
     ("cart.abandoned", "shopify:cart.abandoned:t1")),
    ("checkouts/update", {"token": "t1", "email": "ada@x.org", "completed_at": "2026-03-02T10:00:00Z"}, None),
    ("orders/create", {"id": 5}, None),
    ("products/update", {"id": 5, "email": "ada@x.org"}, None),
])
def test_shopify_topics(topic: str, body: dict[str, Any], expected: tuple[str, str] | None) -> None:
    events = ShopifyHandler("s").parse(request(body, **{"X-Shopify-Topic": topic}))
    if expected is None:
        assert events == []
        return
    (event,) = events
    assert (event.type, event.dedupe_key, event.email) == (*expected, "ada@x.org")


def test_not_configured_is_refused() -> None:
    for handler in (StripeHandler(""), ShopifyHandler("")):
        with pytest.raises(WebhookRejected) as caught:
            handler.verify(request({}))
        assert caught.value.status == 403 and "webhook_secret is not configured" in str(caught.value)
