"""Provider webhooks. Each request is verified before anything is read into the engine: unsigned
or wrongly signed -> 403, malformed -> 400, and in both cases nothing changes. A repeat changes
nothing the second time (provider event ids are dedupe keys).

Every endpoint runs the same pipeline (`_handle`): the body within the handler's size limit,
`verify`, `parse`, every event recorded in one transaction, then the handler's answer. A provider
endpoint is one `register` line: its path and how to build its handler from the settings."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from starlette.datastructures import FormData
from starlette.types import Message

from channels.base import WebhookHandler, WebhookOutcome, WebhookRequest
from channels.commerce_webhooks import ShopifyHandler, StripeHandler
from channels.sendgrid_webhooks import EventWebhookHandler
from channels.twilio_webhooks import InboundSmsHandler, StatusHandler
from outreach.config import Settings
from outreach.engine import Engine
from outreach.errors import WebhookRejected
from outreach.evidence import RecordResult
from outreach.inbound import InboundParseHandler

log = logging.getLogger(__name__)
PREFIX = "/webhooks"
router = APIRouter(prefix=PREFIX, include_in_schema=False)
MAX_BODY = WebhookHandler.max_body  # SendGrid batches and Twilio forms stay far below
MAX_INBOUND = InboundParseHandler.max_body  # Inbound Parse allows up to 30 MB with attachments

HandlerFactory = Callable[[Settings], WebhookHandler]


async def _body(request: Request, limit: int = MAX_BODY) -> bytes:
    """The raw body, refused (413) as soon as it passes `limit`: a stated Content-Length is checked
    before reading, and a chunked body is counted as it streams, so it is never buffered whole."""
    try:
        length = int(request.headers.get("content-length") or 0)
    except ValueError:
        raise WebhookRejected(400, "Content-Length is not a number") from None
    if length > limit:
        raise WebhookRejected(413, f"body of {length} bytes is over the {limit} byte limit")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise WebhookRejected(413, "body over the size limit")
        chunks.append(chunk)
    return b"".join(chunks)


async def _form(request: Request, body: bytes, max_part_size: int = 1024 * 1024) -> FormData:
    """The form in `body` (already read by `_body`), parsed by Starlette from a replayed stream."""
    async def replay() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        return await Request(request.scope, replay).form(max_part_size=max_part_size)
    except Exception as exc:  # starlette raises its own errors for broken multipart bodies
        raise WebhookRejected(400, f"not a well-formed form: {exc}") from None


async def _read(request: Request, handler: WebhookHandler, head: WebhookRequest) -> WebhookRequest:
    """`head` with the body, and the form when the handler reads one (last value of a repeated name)."""
    body = await _body(request, handler.max_body)
    if not handler.reads_form:
        return WebhookRequest(head.url, head.headers, head.query, body, head.received_at)
    fields: dict[str, str] = {}
    files: dict[str, bytes] = {}
    for key, value in (await _form(request, body, handler.max_part_size)).multi_items():
        if isinstance(value, str):
            fields[key] = value
        else:
            files[key] = await value.read()
    return WebhookRequest(head.url, head.headers, head.query, body, head.received_at, fields, files)


async def _handle(request: Request, path: str, factory: HandlerFactory) -> Response:
    engine: Engine = request.app.state.engine
    settings: Settings = engine.settings
    handler = factory(settings)
    # What URL signatures cover: the public URL the provider called, not the one this server sees.
    url = settings.server.public_url.rstrip("/") + PREFIX + path
    head = WebhookRequest(url + (f"?{request.url.query}" if request.url.query else ""), request.headers,
                          dict(request.query_params), b"", datetime.now(UTC))
    if handler.verifies_url_only:  # refuse a caller without the URL's secret before reading its body
        handler.verify(head)
    webhook = await _read(request, handler, head)

    def verify_parse_record() -> tuple[int, RecordResult]:
        # off the event loop, in one hop: an ECDSA check and a 1,000-event parse would hold up every
        # other request for milliseconds
        if not handler.verifies_url_only:
            handler.verify(webhook)
        events = handler.parse(webhook)
        return len(events), engine.record(events) if events else RecordResult()

    count, result = await run_in_threadpool(verify_parse_record)
    reply = handler.respond(webhook, WebhookOutcome(count, len(result.recorded), result.duplicates,
                                                    len(result.unmatched)))
    return Response(reply.body, media_type=reply.media_type)


def register(path: str, factory: HandlerFactory, summary: str, *, on: APIRouter = router) -> None:
    """Serve the provider endpoint `PREFIX + path` with the handler `factory` builds."""
    async def endpoint(request: Request) -> Response:
        return await _handle(request, path, factory)

    endpoint.__doc__ = summary
    endpoint.__name__ = endpoint.__qualname__ = "webhook_" + path.strip("/").replace("/", "_")
    on.add_api_route(path, endpoint, methods=["POST"], response_class=Response)


register("/sendgrid/events", lambda s: EventWebhookHandler(s.sendgrid.webhook_public_key),
         "SendGrid Event Webhook: a signed JSON array of up to ~1,000 events, recorded in one transaction.")
register("/sendgrid/inbound", InboundParseHandler, "SendGrid Inbound Parse: replies and calendar RSVPs.")
register("/twilio/sms", lambda s: InboundSmsHandler(s.twilio.auth_token, s.sender.help_text),
         "An inbound SMS: a reply, an opt-out or opt-in keyword, or a HELP request.")
register("/twilio/status", lambda s: StatusHandler(s.twilio.auth_token),
         "A delivery status callback for an SMS we sent.")
register("/stripe", lambda s: StripeHandler(s.stripe.webhook_secret),
         "Stripe: paid checkouts, expired checkouts, paid invoices, new subscriptions, matched by email.")
register("/shopify", lambda s: ShopifyHandler(s.shopify.webhook_secret),
         "Shopify: new and paid orders, checkouts left unfinished, matched by email.")
