"""/targets: admins and marketers set targets on metrics; everyone sees each target week by week,
met or missed (a rep: over their own contacts)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from outreach.analytics import targets
from outreach.db import session_scope
from outreach.errors import InvalidInput
from outreach.web.dashboard import owners_of
from outreach.web.deps import EngineDep, FormUser, PageUser
from outreach.web.render import flash, render_page

router = APIRouter(include_in_schema=False)


@router.get("/targets")
def targets_page(request: Request, user: PageUser, engine: EngineDep) -> Response:
    rules, settings = engine.project.rules, engine.project.settings.report
    today = datetime.now(UTC).date()
    mine = user.email if user.role == "rep" else None
    with session_scope(engine.db) as s:  # the targets from the primary: one just set shows at once
        listed = targets.listed(s)
        s.expunge_all()
    with engine.reading() as s:  # their figures from the replica, when there is one
        rows = [(t, targets.describe(t, rules), targets.history(s, rules, t, today, settings.min_cases, mine))
                for t in listed]
        owners = [] if user.role == "rep" else owners_of(s)
    return render_page(request, "targets.html", {
        "rows": rows, "owners": owners, "may_set": user.role in ("admin", "marketer"), "is_rep": user.role == "rep",
        "stages": rules.stage_ids[:-1], "metrics": targets.METRICS, "min_cases": settings.min_cases})


@router.post("/targets")
def add_target(request: Request, user: FormUser, engine: EngineDep,
               metric: Annotated[str, Form(max_length=40)] = "", op: Annotated[str, Form(max_length=2)] = ">=",
               threshold: Annotated[str, Form(max_length=20)] = "", stage: Annotated[str, Form(max_length=100)] = "",
               within_days: Annotated[str, Form(max_length=6)] = "30",
               contacts_of: Annotated[str, Form(max_length=320)] = "") -> Response:
    try:
        try:
            days = int(within_days or "30")
        except ValueError:
            raise InvalidInput(f"within: '{within_days}' is not a whole number of days") from None
        with session_scope(engine.db) as s:
            t = targets.add(s, engine.project.rules, user, metric, op, threshold, stage or None, days,
                            contacts_of or None)
            said = targets.describe(t, engine.project.rules)
    except InvalidInput as exc:
        flash(request, "error", str(exc))
        return RedirectResponse("/targets", status_code=303)
    flash(request, "ok", f"Target set: {said}")
    return RedirectResponse("/targets", status_code=303)


@router.post("/targets/{target_id}/delete")
def delete_target(request: Request, target_id: int, user: FormUser, engine: EngineDep) -> Response:
    try:
        with session_scope(engine.db) as s:
            targets.remove(s, user, target_id)
    except InvalidInput as exc:
        flash(request, "error", str(exc))
    return RedirectResponse("/targets", status_code=303)
