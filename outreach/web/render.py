"""The UI's own Jinja2 templates (apart from the buyers' content/): the environment, its filters, flash
messages, and times shown in the viewer's time zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import Request
from fastapi.responses import Response
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context
from sqlalchemy.exc import SQLAlchemyError

from outreach.db import session_scope
from outreach.errors import InvalidInput
from outreach.inbox import count_waiting, expiring_today
from outreach.kinds import TASK_OUTCOMES
from outreach.tasks import OUTCOME_WORDS
from outreach.web.sessions import csrf_token

TEMPLATES_DIR = Path(__file__).parent / "templates"


def to_utc(dt: datetime | None) -> datetime | None:
    """Aware UTC; a naive value (SQLite hands those back) is UTC already."""
    if dt is None:
        return None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def viewer_tz(request: Request) -> ZoneInfo:
    """The signed-in user's time zone, else the project's."""
    user = getattr(request.state, "user", None)
    for name in (getattr(user, "timezone", None), request.app.state.engine.settings.timezone, "UTC"):
        try:
            if name:
                return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            continue
    return ZoneInfo("UTC")


def parse_local(value: str, tz: ZoneInfo) -> datetime:
    """A datetime-local form value (2026-03-02T09:30) read in the viewer's zone, as UTC."""
    try:
        dt = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput(f"'{value}' is not a date and time (2026-03-02T09:30)") from None
    return (dt if dt.tzinfo else dt.replace(tzinfo=tz)).astimezone(UTC)


def flash(request: Request, kind: str, text: str) -> None:
    """A one-time message shown on the next page (kind: ok | error)."""
    request.session["flash"] = [*request.session.get("flash", []), [kind, text]][-5:]


def _context(request: Request) -> dict[str, Any]:
    user = getattr(request.state, "user", None)
    return {"csrf": csrf_token(request), "user": user,
            "flashes": request.session.pop("flash", []), "tz": viewer_tz(request).key,
            "path": request.url.path, "badge": _badge(request, user)}


def _badge(request: Request, user: Any) -> dict[str, int]:
    """The nav's counts for a signed-in user: replies that wait, touches that go stale before the end
    of the user's day (their own buyers' for a rep). A page still renders when the database cannot
    answer (the error pages among them)."""
    if user is None or not getattr(user, "email", None):
        return {}
    now = datetime.now(UTC)
    local = now.astimezone(viewer_tz(request))
    day_end = (local.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)).astimezone(UTC)
    owner = user.email if user.role == "rep" else None
    try:
        with session_scope(request.app.state.engine.db) as s:
            return {"replies": count_waiting(s, now, owner), "expiring": expiring_today(s, now, day_end, owner)}
    except SQLAlchemyError:
        return {}


templates = Jinja2Templates(directory=TEMPLATES_DIR, context_processors=[_context])
env = templates.env
env.trim_blocks = True
env.lstrip_blocks = True


def fmt_time(dt: datetime | None, request: Request, fmt: str = "%a %d %b %H:%M") -> str:
    value = to_utc(dt)
    return value.astimezone(viewer_tz(request)).strftime(fmt) if value else "—"


@pass_context
def _when(ctx: Any, dt: datetime | str | None, fmt: str = "%a %d %b %Y, %H:%M") -> str:
    if isinstance(dt, str):
        dt = _iso_dt(dt)
    return fmt_time(dt, ctx["request"], fmt)


def _ago(dt: datetime | str | None) -> str:
    value = to_utc(_iso_dt(dt) if isinstance(dt, str) else dt)
    if value is None:
        return ""
    seconds = (value - datetime.now(UTC)).total_seconds()
    past, s = seconds < 0, abs(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= size:
            text = f"{int(s // size)}{unit}"
            break
    else:
        return "now"
    return f"{text} ago" if past else f"in {text}"


@pass_context
def _local_input(ctx: Any, dt: datetime | None) -> str:
    return fmt_time(dt, ctx["request"], "%Y-%m-%dT%H:%M") if dt else ""


def _iso_dt(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def _pct(value: float | None) -> str:
    return f"{(value or 0) * 100:.1f}%"


def _status_label(status: str | None) -> str:
    return (status or "").replace("_", " ")


@pass_context
def _their_time(ctx: Any, dt: datetime | str | None, zone: str | None, fmt: str = "%a %H:%M") -> str:
    """The buyer's wall-clock time for `dt` ("Thu 09:30 in Asia/Singapore"), or "" when the buyer's zone is
    unknown or the viewer's own: shown beside send and meeting times, where the buyer's hour matters."""
    value = to_utc(_iso_dt(dt) if isinstance(dt, str) else dt)
    if value is None or not zone:
        return ""
    try:
        theirs = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        return ""
    mine = viewer_tz(ctx["request"])
    if theirs.key == mine.key or value.astimezone(theirs).utcoffset() == value.astimezone(mine).utcoffset():
        return ""
    return f"{value.astimezone(theirs).strftime(fmt)} in {theirs.key}"


@pass_context
def _clock_of(ctx: Any, zone: str | None) -> str:
    """The buyer's time now ("Thu 10:12 in Asia/Singapore"), in the project's zone when theirs is unknown:
    a task card's "is this a good moment to call"."""
    default = ctx["request"].app.state.engine.settings.timezone
    try:
        theirs = ZoneInfo(zone or default)
    except (ZoneInfoNotFoundError, ValueError):
        theirs = ZoneInfo("UTC")
    return f"{datetime.now(UTC).astimezone(theirs).strftime('%a %H:%M')} in {theirs.key}"


env.filters.update(ago=_ago, their_time=_their_time, pct=_pct, clock_of=_clock_of,
                   status_label=_status_label, when=_when, local_input=_local_input)
env.globals.update(task_outcomes=TASK_OUTCOMES, outcome_words=OUTCOME_WORDS)


# Pages load only their own script and styles, and may not be framed (clickjacking on Approve).
# Inline styles stay allowed for the dashboard's bar widths; inline scripts do not.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                               "img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def render_page(request: Request, name: str, context: dict[str, Any] | None = None, status: int = 200) -> Response:
    ctx = {"request": request, **(context or {})}
    return templates.TemplateResponse(request, name, ctx, status_code=status, headers=SECURITY_HEADERS)
