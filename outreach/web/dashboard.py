"""/dashboard: the report's widgets (chart, table, CSV each) for a period and an owner from the query
string. A rep sees the figures of their own contacts; admins and marketers see everyone's, or one owner's."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlmodel import Session, col

from outreach.analytics import targets
from outreach.analytics.activity import steps
from outreach.analytics.build import build_report, check_owner, deliverability, sent_touches
from outreach.analytics.csvout import widget_csv
from outreach.analytics.html import widgets
from outreach.analytics.model import DeliverabilityRow, Filters, Report, StepRow, narrowing, parse_attr, period
from outreach.analytics.snapshots import kept_days
from outreach.engine import Engine
from outreach.models import Contact, User
from outreach.ruleset import Ruleset
from outreach.web.deps import EngineDep, PageUser
from outreach.web.render import SECURITY_HEADERS, render_page

router = APIRouter()
Day = Annotated[str | None, Query(max_length=20)]
Owner = Annotated[str | None, Query(max_length=320)]


def query_narrowing(request: Request) -> tuple[str | None, str | None, list[tuple[str, str]]]:
    """stage, playbook and attr.NAME=value (or attr=NAME=value, as the page's form sends it) from a query
    string (empty values are no filter)."""
    q = request.query_params
    attrs = [parse_attr(f"{k}={v}", k) for k, v in q.multi_items() if k.startswith("attr.") and v.strip()]
    attrs += [parse_attr(v, "attr") for v in q.getlist("attr") if v.strip()]
    return q.get("stage") or None, q.get("playbook") or None, attrs


def _filters(s: Session, engine: Engine, request: Request, user: User, since: str | None, until: str | None,
             owner: str | None) -> Filters:
    first, last = period(since or None, until or None, datetime.now(UTC).date())
    chosen = (owner or "").strip().lower() or None
    if user.role == "rep":  # as on /queue, another owner asked for is not shown: their own figures are
        chosen = user.email
    elif chosen is not None:
        check_owner(s, chosen)
    return narrowing(Filters(first, last, chosen), engine.project.rules, *query_narrowing(request))


def _report(engine: Engine, request: Request, user: User, since: str | None, until: str | None,
            owner: str | None) -> tuple[Filters, Report, list[str], dict[str, bool], list[DeliverabilityRow]]:
    with engine.reading() as s:
        f = _filters(s, engine, request, user, since, until, owner)
        data = build_report(s, engine.project.rules, f, engine.project.settings.report.advance_within,
                            today=datetime.now(UTC).date())
        owners = [] if user.role == "rep" else owners_of(s)
        kept = {} if f.narrowed else kept_days(s, f)
        delivery = deliverability(s, engine.project.rules, f)
    return f, data, owners, kept, delivery


STEP_DAYS = 30  # the period /rules shows beside each step


def step_results(engine: Engine, user: User) -> dict[str, StepRow]:
    """What each playbook step and trigger did in the last 30 UTC days ("playbook:STAGE/STEP" or
    "trigger:ID/ID" -> the report's steps row), from the report's own functions; a rep's own contacts."""
    today = datetime.now(UTC).date()
    f = Filters(today - timedelta(days=STEP_DAYS - 1), today, user.email if user.role == "rep" else None)
    with engine.reading() as s:
        sent = sent_touches(s, engine.project.rules, f, engine.project.settings.report.advance_within)
        rows = steps(s, engine.project.rules, f, sent)
    return {f"{r['rule']}/{r['step']}": r for r in rows}


def rule_names(rules: Ruleset) -> list[str]:
    """The playbooks and triggers a report can be narrowed to, as touches name them."""
    return [*(f"playbook:{s}" for s in rules.stage_ids if rules.playbooks.get(s)),
            *(f"trigger:{t.id}" for t in rules.triggers)]


def owners_of(s: Session) -> list[str]:
    """Whom a manager can pick: the reps, and anyone who owns contacts (the index on owner answers it)."""
    reps = s.execute(select(col(User.email)).where(col(User.role) == "rep", col(User.disabled_at).is_(None))).scalars()
    owning = s.execute(select(col(Contact.owner)).where(col(Contact.owner).is_not(None)).distinct()).scalars()
    return sorted({*reps, *(o for o in owning if o)})


@router.get("/dashboard")
def dashboard(request: Request, user: PageUser, engine: EngineDep, since: Day = None, until: Day = None,
              owner: Owner = None) -> Response:
    f, data, owners, kept, delivery = _report(engine, request, user, since, until, owner)
    settings = engine.project.settings.report
    with engine.reading() as s:  # each target as of today: a missed one is flagged above the widgets
        goals = [(t.metric, targets.describe(t, engine.project.rules),
                  targets.point(s, engine.project.rules, t, datetime.now(UTC).date(), settings.min_cases,
                                user.email if user.role == "rep" else None)) for t in targets.listed(s)]
    query = urlencode({"since": f.since.isoformat(), "until": f.until.isoformat(),
                       **({"owner": f.owner} if f.owner and user.role != "rep" else {}), **f.query()})
    rules = engine.project.rules
    return render_page(request, "dashboard.html", {
        "f": f, "owners": owners, "is_rep": user.role == "rep", "min_cases": settings.min_cases,
        "stages": rules.stage_ids, "playbooks": rule_names(rules),
        "attr_rows": [*f.attrs, ("", "")], "goals": goals,
        "widgets": widgets(data, settings.min_cases, settings.advance_within, csv=query, kept=kept,
                                deliverability=delivery)})


@router.get("/dashboard.csv")
def dashboard_csv(request: Request, widget: Annotated[str, Query(max_length=20)], user: PageUser, engine: EngineDep,
                  since: Day = None, until: Day = None,
                  owner: Owner = None) -> Response:
    f, data, _, _, delivery = _report(engine, request, user, since, until, owner)
    body = widget_csv(data, widget, engine.project.settings.report.min_cases, delivery)
    who = f"-{re.sub(r'[^A-Za-z0-9._-]', '_', f.owner)}" if f.owner else ""
    name = f"{widget}-{f.since}-{f.until}{who}.csv"
    return Response(body, media_type="text/csv; charset=utf-8",
                    headers={**SECURITY_HEADERS, "Content-Disposition": f'attachment; filename="{name}"'})
