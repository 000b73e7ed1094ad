"""A rep cancels a meeting invite already sent: the buyer's calendar gets a METHOD:CANCEL for the same
UID (outreach.meetings.cancel_sent), sent by the dispatcher as any touch."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from outreach.db import session_scope
from outreach.errors import InvalidTransition
from outreach.meetings import cancel_sent
from outreach.queue import get_touch
from outreach.web.auth import owner_scope, require_actor
from outreach.web.deps import EngineDep, FormUser
from outreach.web.render import flash

router = APIRouter(include_in_schema=False)


@router.post("/queue/{touch_id}/cancel-meeting")
def cancel_meeting(request: Request, touch_id: int, user: FormUser, engine: EngineDep,
                   back: Annotated[str | None, Form()] = None) -> Response:
    require_actor(user)
    try:
        with session_scope(engine.db) as s:
            t, c = get_touch(s, touch_id, owner_scope(user))
            cancel = cancel_sent(s, t, c, user.email, datetime.now(UTC), engine.settings, engine.calendar)
            flash(request, "ok", f"Meeting cancelled: the buyer's calendar gets the cancellation as touch #{cancel.id}")
    except InvalidTransition as exc:
        flash(request, "error", str(exc))
    return RedirectResponse(f"/queue/{touch_id}", status_code=303)
