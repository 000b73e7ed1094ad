"""A user's own profile: the time zone the app shows every time in, and the name on their messages."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from zoneinfo import available_timezones

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from outreach.db import session_scope
from outreach.errors import InvalidInput
from outreach.users import set_profile
from outreach.web.deps import EngineDep, FormUser, PageUser
from outreach.web.render import flash, render_page

router = APIRouter(include_in_schema=False)
ZONES = sorted(z for z in available_timezones() if "/" in z and not z.startswith(("Etc/", "SystemV/")))


@router.get("/profile")
def profile_page(request: Request, user: PageUser, engine: EngineDep) -> Response:
    return render_page(request, "profile.html", {"zones": ZONES, "default_zone": engine.settings.timezone,
                                                       "now": datetime.now(UTC)})


@router.post("/profile")
def save_profile(request: Request, user: FormUser, engine: EngineDep,
                 timezone: Annotated[str, Form(max_length=64)] = "",
                 name: Annotated[str, Form(max_length=200)] = "") -> Response:
    try:
        with session_scope(engine.db) as s:
            saved = set_profile(s, user.id or 0, timezone=timezone, name=name)
            zone = saved.timezone
    except InvalidInput as exc:
        flash(request, "error", str(exc))
        return RedirectResponse("/profile", status_code=303)
    flash(request, "ok", f"Saved: times are shown in {zone or engine.settings.timezone or 'UTC'}")
    return RedirectResponse("/profile", status_code=303)
