"""Provider webhooks. Each request is verified before anything is read into the engine: unsigned
or wrongly signed -> 403, malformed -> 400, and in both cases nothing changes. A repeat changes
nothing the second time (provider event ids are dedupe keys)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from channels.base import NormalizedEvent

from ..errors import WebhookRejected
from ..evidence import EvidenceIn

log = logging.getLogger(__name__)
router = APIRouter(prefix="/webhooks", include_in_schema=False)
MAX_BODY = 5 * 1024 * 1024  # SendGrid batches stay far below this


async def _body(request: Request) -> bytes:
    length = int(request.headers.get("content-length") or 0)
    if length > MAX_BODY:
        raise WebhookRejected(413, f"body of {length} bytes is over the {MAX_BODY} byte limit")
    body = await request.body()
    if len(body) > MAX_BODY:
        raise WebhookRejected(413, "body over the size limit")
    return body


def to_evidence(ev: NormalizedEvent) -> EvidenceIn:
    return EvidenceIn(type=ev.type, occurred_at=ev.occurred_at, source=ev.source, touch_id=ev.touch_id,
                      provider_message_id=ev.provider_message_id, email=ev.email, phone=ev.phone,
                      dedupe_key=ev.dedupe_key, data=ev.data)


@router.post("/sendgrid/events")
async def sendgrid_events(request: Request) -> JSONResponse:
    from channels.sendgrid_webhooks import parse_events, verify_event_signature

    engine: Any = request.app.state.engine
    body = await _body(request)
    verify_event_signature(engine.settings.sendgrid.webhook_public_key, body,
                           request.headers.get("X-Twilio-Email-Event-Webhook-Signature"),
                           request.headers.get("X-Twilio-Email-Event-Webhook-Timestamp"))
    events = parse_events(body)
    result = await run_in_threadpool(engine.record, [to_evidence(e) for e in events])
    return JSONResponse({"received": len(events), "recorded": len(result.recorded),
                         "duplicates": result.duplicates, "unmatched": len(result.unmatched)})
