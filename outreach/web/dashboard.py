"""/dashboard: the report's widgets (chart, table, CSV each) for a period and an owner from the query
string. A rep sees the figures of their own contacts; admins and marketers see everyone's, or one owner's."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlmodel import Session, col

from outreach.analytics.activity import deliverability
from outreach.analytics.build import build_report, check_owner
from outreach.analytics.csvout import widget_csv
from outreach.analytics.html import widgets
from outreach.analytics.model import DeliverabilityRow, Filters, Report, period
from outreach.analytics.snapshots import kept_days
from outreach.db import session_scope
from outreach.engine import Engine
from outreach.models import Contact, User
from outreach.web.deps import EngineDep, PageUser
from outreach.web.render import SECURITY_HEADERS, render_page

router = APIRouter()
Day = Annotated[str | None, Query(max_length=20)]
Owner = Annotated[str | None, Query(max_length=320)]


def _filters(s: Session, user: User, since: str | None, until: str | None, owner: str | None) -> Filters:
    first, last = period(since or None, until or None, datetime.now(UTC).date())
    chosen = (owner or "").strip().lower() or None
    if user.role == "rep":  # as on /queue, another owner asked for is not shown: their own figures are
        chosen = user.email
    elif chosen is not None:
        check_owner(s, chosen)
    return Filters(first, last, chosen)


def _report(engine: Engine, user: User, since: str | None, until: str | None,
            owner: str | None) -> tuple[Filters, Report, list[str], dict[str, bool], list[DeliverabilityRow]]:
    with session_scope(engine.db) as s:
        f = _filters(s, user, since, until, owner)
        data = build_report(s, engine.project.rules, f, engine.project.settings.report.advance_within,
                            today=datetime.now(UTC).date())
        owners = [] if user.role == "rep" else _owners(s)
        kept = kept_days(s, f)
        delivery = deliverability(s, f)
    return f, data, owners, kept, delivery


def _owners(s: Session) -> list[str]:
    """Whom a manager can pick: the reps, and anyone who owns contacts (the index on owner answers it)."""
    reps = s.execute(select(col(User.email)).where(col(User.role) == "rep", col(User.disabled_at).is_(None))).scalars()
    owning = s.execute(select(col(Contact.owner)).where(col(Contact.owner).is_not(None)).distinct()).scalars()
    return sorted({*reps, *(o for o in owning if o)})


@router.get("/dashboard")
def dashboard(request: Request, user: PageUser, engine: EngineDep, since: Day = None, until: Day = None,
              owner: Owner = None) -> Response:
    f, data, owners, kept, delivery = _report(engine, user, since, until, owner)
    settings = engine.project.settings.report
    query = urlencode({"since": f.since.isoformat(), "until": f.until.isoformat(),
                             **({"owner": f.owner} if f.owner and user.role != "rep" else {})})
    return render_page(request, "dashboard.html", {
        "f": f, "owners": owners, "is_rep": user.role == "rep", "min_cases": settings.min_cases,
        "widgets": widgets(data, settings.min_cases, settings.advance_within, csv=query, kept=kept,
                                deliverability=delivery)})


@router.get("/dashboard.csv")
def dashboard_csv(widget: Annotated[str, Query(max_length=20)], user: PageUser, engine: EngineDep,
                  since: Day = None, until: Day = None,
                  owner: Owner = None) -> Response:
    f, data, _, _, delivery = _report(engine, user, since, until, owner)
    body = widget_csv(data, widget, engine.project.settings.report.min_cases, delivery)
    who = f"-{re.sub(r'[^A-Za-z0-9._-]', '_', f.owner)}" if f.owner else ""
    name = f"{widget}-{f.since}-{f.until}{who}.csv"
    return Response(body, media_type="text/csv; charset=utf-8",
                    headers={**SECURITY_HEADERS, "Content-Disposition": f'attachment; filename="{name}"'})
