"""One-click unsubscribe (RFC 8058). The link in List-Unsubscribe carries a signed token. A POST
(the mailbox provider's `List-Unsubscribe=One-Click`, or the confirm button) unsubscribes and
answers 200 with no redirect; a GET only shows the confirm page, since link scanners follow GETs.

Every POST is an act of its own: its dedupe key carries a fresh nonce, never only the contact, so
a second unsubscribe after a resubscribe takes effect again."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from html import escape

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from outreach import tokens
from outreach.engine import Engine
from outreach.evidence import EvidenceIn

router = APIRouter(include_in_schema=False)

PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;color:#1f2933}}
button{{font:inherit;padding:.6rem 1.2rem;border:0;border-radius:6px;background:#1f6feb;color:#fff;cursor:pointer}}
</style></head><body><h1>{title}</h1>{body}</body></html>"""


def _ids(request: Request, token: str) -> tuple[int, int] | None:
    engine: Engine = request.app.state.engine
    value = tokens.unsign(engine.settings.server.secret_key, "unsubscribe", token)
    if not isinstance(value, list) or len(value) != 2 or not all(isinstance(v, int) for v in value):
        return None
    return value[0], value[1]


def _not_found() -> HTMLResponse:
    return HTMLResponse(PAGE.format(title="Link not valid", body="<p>This unsubscribe link is not valid.</p>"),
                        status_code=404)


def unsubscribe_event(contact_id: int, touch_id: int, now: datetime) -> EvidenceIn:
    """One click or POST of the link: its own act, deduplicated by its own nonce and time."""
    nonce = f"{now.strftime('%Y%m%dT%H%M%S.%f')}:{secrets.token_hex(8)}"
    return EvidenceIn("email.unsubscribed", now, "unsubscribe", contact_id=contact_id, touch_id=touch_id or None,
                      dedupe_key=f"unsubscribe:{contact_id}:{nonce}")


@router.get("/unsubscribe/{token}")
def confirm_page(request: Request, token: str) -> HTMLResponse:
    if _ids(request, token) is None:
        return _not_found()
    body = (f'<p>Stop receiving these emails?</p><form method="post" action="/unsubscribe/{escape(token)}">'
            '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
            '<button type="submit">Unsubscribe</button></form>')
    return HTMLResponse(PAGE.format(title="Unsubscribe", body=body))


@router.post("/unsubscribe/{token}")
async def unsubscribe(request: Request, token: str) -> HTMLResponse:
    ids = _ids(request, token)
    if ids is None:
        return _not_found()
    contact_id, touch_id = ids
    engine: Engine = request.app.state.engine
    item = unsubscribe_event(contact_id, touch_id, datetime.now(UTC))
    await run_in_threadpool(engine.record, [item])
    return HTMLResponse(PAGE.format(title="Unsubscribed", body="<p>You will not get these emails any more.</p>"))
