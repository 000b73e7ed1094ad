"""The /experiments page: each experiment's variants, holdout and verdict in words, and (for marketers
and admins) the form that stops one and promotes a variant, through the same function as the CLI;
`GET /api/experiments` for scripts, the same JSON as `outreach experiments --json`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from outreach.db import session_scope
from outreach.errors import ConfigError, InvalidInput, NotFound
from outreach.experiments.results import report
from outreach.experiments.stop import stop_experiment
from outreach.web.deps import ApiUser, EngineDep, FormUser, PageUser
from outreach.web.render import flash, render_page
from outreach.web.sessions import Forbidden

router = APIRouter(include_in_schema=False)
MAY_STOP = ("admin", "marketer")
METRIC_WORDS = {"stage_advance": "moved to a later stage", "response": "replied or accepted a meeting"}


@router.get("/experiments")
def experiments_page(request: Request, user: PageUser, engine: EngineDep) -> Response:
    with session_scope(engine.db) as s:
        data = report(s, engine.project.rules)
    return render_page(request, "experiments.html", {"experiments": data, "may_stop": user.role in MAY_STOP,
                                                      "metric_words": METRIC_WORDS})


@router.get("/api/experiments", include_in_schema=True, tags=["experiments"])
def experiments_api(user: ApiUser, engine: EngineDep) -> list[dict[str, Any]]:
    """Every experiment as `outreach experiments --json` prints it."""
    with session_scope(engine.db) as s:
        return report(s, engine.project.rules)


@router.post("/experiments/{exp_id}/stop")
def stop_page(request: Request, exp_id: str, user: FormUser, engine: EngineDep,
              promote: Annotated[str, Form(max_length=300)] = "",
              write: Annotated[str, Form(max_length=10)] = "") -> Response:
    if user.role not in MAY_STOP:
        raise Forbidden("only marketers and admins stop experiments")
    try:
        with session_scope(engine.db) as s:
            done = stop_experiment(s, engine.project.rules, engine.project.path, exp_id, promote or None,
                                   write == "on", user.email, engine.settings.outbound_webhooks)
    except (NotFound, InvalidInput) as exc:
        flash(request, "error", str(exc))
        return RedirectResponse("/experiments", status_code=303)
    except ConfigError as exc:
        flash(request, "error", "The rules file was left as it was: the change would not pass the check ("
              + "; ".join(str(p) for p in exc.problems[:3]) + ")")
        return RedirectResponse("/experiments", status_code=303)
    text = f"Stopped {exp_id}: everyone now gets {done.content}."
    if done.written and done.edit:
        text += f" {done.edit.file} was updated (lines {done.edit.first}-{done.edit.last})."
    elif done.edit:
        text += f" Make this change in {done.edit.file}: " + " / ".join(done.edit.new).strip()
    elif done.note:
        text += " " + done.note
    flash(request, "ok", text)
    return RedirectResponse("/experiments", status_code=303)
