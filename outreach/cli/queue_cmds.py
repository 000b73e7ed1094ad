"""`outreach queue ...`: list touches and move them through their states."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from outreach.cli.app import JsonOpt, ProjectOpt, guarded, open_engine, out_json, queue_app
from outreach.errors import InvalidInput


@queue_app.command("list")
@guarded
def queue_list(owner: Annotated[str | None, typer.Option("--owner")] = None,
               status: Annotated[str | None, typer.Option("--status")] = None,
               project: ProjectOpt = None, as_json: JsonOpt = False) -> None:
    """List touches (every status unless --status)."""
    from outreach.db import session_scope
    from outreach.queue import list_touches, touch_json
    from outreach.senders import from_emails

    engine = open_engine(project)
    with session_scope(engine.db) as s:
        pairs = list_touches(s, owner=owner, status=status)
        senders = from_emails(s, engine.settings, (c.owner for _t, c in pairs))
        rows = [touch_json(t, c, senders[c.owner.lower() if c.owner else None]) for t, c in pairs]
    if as_json:
        out_json(rows)
        return
    for t in rows:
        typer.echo(f"#{t['id']:<6} {t['status']:<16} {t['due_at']}  {t['contact']['email'] or '-':<28} "
                   f"{t['rule']}/{t['step']} {t['channel'] or '-'}" + (f"  [{t['reason']}]" if t["reason"] else ""))
    typer.echo(f"{len(rows)} touch(es)")


def _transition(action: str, ids: list[int], owner: str | None, reason: str | None, project: Path | None) -> None:
    from outreach.db import session_scope
    from outreach.queue import transition

    engine = open_engine(project)
    with session_scope(engine.db) as s:
        done = transition(s, action, ids, datetime.now(UTC), owner=owner, reason=reason)
    typer.echo(f"{action}: {', '.join(str(t.id) for t in done)}")


@queue_app.command("approve")
@guarded
def queue_approve(ids: Annotated[list[int] | None, typer.Argument()] = None,
                  all_: Annotated[bool, typer.Option("--all")] = False,
                  owner: Annotated[str | None, typer.Option("--owner")] = None, project: ProjectOpt = None) -> None:
    """Approve touches by id, or every pending one (--all, optionally of one --owner)."""
    from outreach.db import session_scope
    from outreach.queue import approve_all

    if all_ == bool(ids):
        raise InvalidInput("give touch ids or --all")
    if all_:
        engine = open_engine(project)
        with session_scope(engine.db) as s:
            n = approve_all(s, datetime.now(UTC), owner)
        typer.echo(f"approved {n} touch(es)")
        return
    _transition("approve", ids or [], owner, None, project)


@queue_app.command("reject")
@guarded
def queue_reject(touch_id: int, reason: Annotated[str, typer.Option("--reason")],
                 project: ProjectOpt = None) -> None:
    """Reject a touch, with a reason."""
    _transition("reject", [touch_id], None, reason, project)


@queue_app.command("resend")
@guarded
def queue_resend(ids: list[int], project: ProjectOpt = None) -> None:
    """Send again touches left `uncertain` by a worker that died mid-send (after checking the provider)."""
    _transition("resend", ids, None, None, project)


@queue_app.command("drop")
@guarded
def queue_drop(ids: list[int], project: ProjectOpt = None) -> None:
    """Drop touches left `uncertain` (they were probably sent)."""
    _transition("drop", ids, None, None, project)


@queue_app.command("done")
@guarded
def queue_done(touch_id: int, outcome: Annotated[str, typer.Option("--outcome", help=(
                   "call: connected|voicemail|no_answer; social: sent|replied|no_answer"))],
               note: Annotated[str, typer.Option("--note")] = "",
               by: Annotated[str, typer.Option("--by", help="who did it (shown on the timeline)")] = "cli",
               project: ProjectOpt = None) -> None:
    """Record a task's outcome (a call made, a social message sent): the outcome becomes evidence."""
    engine = open_engine(project)
    result = engine.record_task(touch_id, outcome, note, by, source="cli")
    moved = "; ".join(f"stage {c.from_stage} -> {c.to_stage}" for c in result.stage_changes)
    typer.echo(f"done: {touch_id} ({outcome})" + (f", {moved}" if moved else ""))
