"""Provider webhooks. Each request is verified before anything is read into the engine: unsigned
or wrongly signed -> 403, malformed -> 400, and in both cases nothing changes. A repeat changes
nothing the second time (provider event ids are dedupe keys)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import FormData

from channels.base import NormalizedEvent
from outreach.errors import WebhookRejected
from outreach.evidence import EvidenceIn
from outreach.inbound import inbound_evidence, sms_evidence

log = logging.getLogger(__name__)
router = APIRouter(prefix="/webhooks", include_in_schema=False)
MAX_BODY = 5 * 1024 * 1024  # SendGrid batches and Inbound Parse posts (without big attachments) stay below
MAX_INBOUND = 30 * 1024 * 1024  # Inbound Parse allows up to 30 MB with attachments


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
    async def replay() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        return await Request(request.scope, replay).form(max_part_size=max_part_size)
    except Exception as exc:  # starlette raises its own errors for broken multipart bodies
        raise WebhookRejected(400, f"not a well-formed form: {exc}") from None


def to_evidence(ev: NormalizedEvent) -> EvidenceIn:
    return EvidenceIn(type=ev.type, occurred_at=ev.occurred_at, source=ev.source, touch_id=ev.touch_id,
                      provider_message_id=ev.provider_message_id, email=ev.email, phone=ev.phone,
                      dedupe_key=ev.dedupe_key, data=ev.data)


def _summary(received: int, result: Any) -> dict[str, int]:
    return {"received": received, "recorded": len(result.recorded), "duplicates": result.duplicates,
            "unmatched": len(result.unmatched)}


@router.post("/sendgrid/events")
async def sendgrid_events(request: Request) -> JSONResponse:
    """SendGrid Event Webhook: a signed JSON array of up to ~1,000 events, recorded in one transaction."""
    from channels.sendgrid_webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, parse_events, verify_event_signature

    engine: Any = request.app.state.engine
    body = await _body(request)
    verify_event_signature(engine.settings.sendgrid.webhook_public_key, body,
                           request.headers.get(SIGNATURE_HEADER), request.headers.get(TIMESTAMP_HEADER))
    events = parse_events(body)
    result = await run_in_threadpool(engine.record, [to_evidence(e) for e in events])
    return JSONResponse(_summary(len(events), result))


@router.post("/sendgrid/inbound")
async def sendgrid_inbound(request: Request, token: str | None = None) -> JSONResponse:
    """Inbound Parse: replies and calendar RSVPs. SendGrid does not sign these posts, so the URL
    configured at SendGrid carries a secret: `?token=` must match the project's inbound token."""
    from channels.sendgrid_inbound import parse_inbound
    from outreach import tokens

    engine: Any = request.app.state.engine
    expected = tokens.short_mac(engine.settings.server.secret_key, "inbound-parse", 24)
    if not token or not tokens.constant_eq(token, expected):
        raise WebhookRejected(403, "missing or wrong ?token= on the Inbound Parse URL")
    # Raw mode sends the whole MIME message, attachments included, as one plain field: Starlette's
    # default 1 MB part limit would refuse a genuine mail, so only the body limit applies.
    form = await _form(request, await _body(request, MAX_INBOUND), max_part_size=MAX_INBOUND)
    fields: dict[str, object] = {}
    files: dict[str, bytes] = {}
    for key, value in form.multi_items():
        if isinstance(value, str):
            fields[key] = value
        else:
            files[key] = await value.read()
    mail = parse_inbound(fields, files)
    items = inbound_evidence(engine.settings, mail, datetime.now(UTC))
    result = await run_in_threadpool(engine.record, items)
    return JSONResponse(_summary(len(items), result))


def _twilio_url(engine: Any, request: Request, path: str) -> str:
    url = engine.settings.server.public_url.rstrip("/") + path
    return url + (f"?{request.url.query}" if request.url.query else "")


async def _twilio_params(request: Request, path: str) -> dict[str, str]:
    from channels.twilio_webhooks import SIGNATURE_HEADER, verify_signature

    engine: Any = request.app.state.engine
    form = await _form(request, await _body(request))
    params = {k: str(v) for k, v in form.multi_items()}
    verify_signature(engine.settings.twilio.auth_token, _twilio_url(engine, request, path), params,
                     request.headers.get(SIGNATURE_HEADER))
    return params


@router.post("/twilio/sms")
async def twilio_sms(request: Request) -> Response:
    """An inbound SMS: a reply, an opt-out or opt-in keyword, or a HELP request."""
    from channels.twilio_webhooks import parse_inbound_sms, twiml_message

    engine: Any = request.app.state.engine
    params = await _twilio_params(request, "/webhooks/twilio/sms")
    sms = parse_inbound_sms(params)
    items = await run_in_threadpool(sms_evidence, engine, sms, datetime.now(UTC))
    if items:
        await run_in_threadpool(engine.record, items)
    answer = engine.settings.sender.help_text if sms.keyword == "help" else None
    return Response(twiml_message(answer), media_type="application/xml")


@router.post("/twilio/status")
async def twilio_status(request: Request) -> Response:
    """A delivery status callback for an SMS we sent."""
    from channels.twilio_webhooks import parse_status

    engine: Any = request.app.state.engine
    params = await _twilio_params(request, "/webhooks/twilio/status")
    if not params.get("MessageSid"):
        raise WebhookRejected(400, "no MessageSid")
    event = parse_status(params)
    if event is not None:
        await run_in_threadpool(engine.record, [to_evidence(event)])
    return Response("<Response></Response>", media_type="application/xml")

