"""/dashboards: each person builds their own dashboards from the report's widgets (pick, order,
filter, save), several each, and opens anyone's in the project by its link /dashboards/{id}."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from outreach.analytics import saved
from outreach.analytics.build import build_report, deliverability
from outreach.analytics.html import WIDGETS, widgets
from outreach.analytics.model import parse_attr
from outreach.analytics.snapshots import kept_days
from outreach.db import session_scope
from outreach.errors import InvalidInput
from outreach.models import SavedDashboard, User
from outreach.web.dashboard import owners_of, rule_names
from outreach.web.deps import EngineDep, FormUser, PageUser
from outreach.web.render import flash, render_page

router = APIRouter(include_in_schema=False)


def _choice(form: dict[str, list[str]]) -> saved.Choice:
    """The form's fields: `widget` checked per widget, `order_<widget>` its place (blank: after the others)."""
    def one(key: str) -> str:
        return (form.get(key) or [""])[0]

    picked = form.get("widget", [])

    def place(w: str) -> tuple[float, int]:
        text = one(f"order_{w}").strip()
        try:
            return (float(text) if text else float("inf"), WIDGETS.index(w) if w in WIDGETS else 99)
        except ValueError:
            raise InvalidInput(f"order of {saved.TITLES.get(w, w)}: '{text}' is not a number") from None

    days_text = one("days").strip() or "30"
    try:
        days = int(days_text)
    except ValueError:
        raise InvalidInput(f"days: '{days_text}' is not a whole number of days") from None
    attrs = [parse_attr(a, "attribute") for a in form.get("attr", []) if a.strip()]
    return saved.Choice(name=one("name"), widgets=sorted(picked, key=place), days=days,
                        contacts_of=one("contacts_of") or None, stage=one("stage") or None,
                        playbook=one("playbook") or None, attrs=attrs)


async def _form(request: Request) -> dict[str, list[str]]:
    data = await request.form()
    out: dict[str, list[str]] = {}
    for k, v in data.multi_items():
        if isinstance(v, str):
            out.setdefault(k, []).append(v)
    return out


def _editor(request: Request, engine: EngineDep, user: User, d: SavedDashboard | None) -> Response:
    rules = engine.project.rules
    with session_scope(engine.db) as s:
        owners = [] if user.role == "rep" else owners_of(s)
    chosen = d.widgets if d else list(WIDGETS)
    rows = [(w, saved.TITLES[w], w in chosen, chosen.index(w) + 1 if w in chosen else "") for w in WIDGETS]
    rows.sort(key=lambda r: (not r[2], r[3] if isinstance(r[3], int) else 99))
    return render_page(request, "dashboard_edit.html", {
        "d": d, "rows": rows, "owners": owners, "is_rep": user.role == "rep", "stages": rules.stage_ids,
        "playbooks": rule_names(rules), "attr_rows": [*((d.attrs.items()) if d else []), ("", "")]})


@router.get("/dashboards")
def list_page(request: Request, user: PageUser, engine: EngineDep) -> Response:
    with session_scope(engine.db) as s:
        mine, others = saved.listed(s, user)
    return render_page(request, "dashboards.html", {"mine": mine, "others": others, "titles": saved.TITLES})


@router.get("/dashboards/new")
def new_page(request: Request, user: PageUser, engine: EngineDep) -> Response:
    return _editor(request, engine, user, None)


@router.get("/dashboards/{dashboard_id}/edit")
def edit_page(request: Request, dashboard_id: int, user: PageUser, engine: EngineDep) -> Response:
    with session_scope(engine.db) as s:
        d = saved.get(s, dashboard_id)
        s.expunge(d)
    return _editor(request, engine, user, d)


def _saved(request: Request, engine: EngineDep, user: User, form: dict[str, list[str]],
           dashboard_id: int | None) -> Response:
    back = "/dashboards/new" if dashboard_id is None else f"/dashboards/{dashboard_id}/edit"
    try:
        choice = _choice(form)
        with session_scope(engine.db) as s:
            d = saved.save(s, engine.project.rules, user, choice, dashboard_id)
            new_id = d.id
    except InvalidInput as exc:
        flash(request, "error", str(exc))
        return RedirectResponse(back, status_code=303)
    flash(request, "ok", f"Saved “{choice.name.strip()}”: anyone signed in can open it at this link")
    return RedirectResponse(f"/dashboards/{new_id}", status_code=303)


@router.post("/dashboards")
async def create(request: Request, user: FormUser, engine: EngineDep) -> Response:
    return _saved(request, engine, user, await _form(request), None)


@router.post("/dashboards/{dashboard_id}")
async def change(request: Request, dashboard_id: int, user: FormUser, engine: EngineDep) -> Response:
    return _saved(request, engine, user, await _form(request), dashboard_id)


@router.post("/dashboards/{dashboard_id}/delete")
def remove(request: Request, dashboard_id: int, user: FormUser, engine: EngineDep) -> Response:
    with session_scope(engine.db) as s:
        saved.delete(s, user, dashboard_id)
    flash(request, "ok", "Dashboard deleted")
    return RedirectResponse("/dashboards", status_code=303)


@router.get("/dashboards/{dashboard_id}")
def view(request: Request, dashboard_id: int, user: PageUser, engine: EngineDep) -> Response:
    settings = engine.project.settings.report
    with session_scope(engine.db) as s:  # the dashboard from the primary: one just saved shows at once
        d = saved.get(s, dashboard_id)
        s.expunge(d)
    with engine.reading() as s:  # its figures from the replica, when there is one
        f = saved.filters_of(d, user, datetime.now(UTC).date())
        data = build_report(s, engine.project.rules, f, settings.advance_within, today=datetime.now(UTC).date())
        delivery = deliverability(s, engine.project.rules, f) if "deliverability" in d.widgets else []
        kept = {} if f.narrowed else kept_days(s, f)
    query = urlencode({"since": f.since.isoformat(), "until": f.until.isoformat(),
                       **({"owner": f.owner} if f.owner and user.role != "rep" else {}), **f.query()})
    return render_page(request, "dashboard_view.html", {
        "d": d, "f": f, "is_rep": user.role == "rep", "mine": d.owner == user.email, "min_cases": settings.min_cases,
        "widgets": widgets(data, settings.min_cases, settings.advance_within, csv=query, kept=kept,
                           deliverability=delivery, show=d.widgets)})
