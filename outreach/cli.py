"""The `outreach` command. Exit codes: 0 done, 1 done but some input was rejected, 2 nothing done."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from .errors import ConfigError, InvalidInput, InvalidTransition, NotFound, OutreachError
from .project import Project, check_project

app = typer.Typer(help="outreach: a nurture and multichannel outreach engine.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
contacts_app = typer.Typer(help="Import, show and set preferences of contacts.", no_args_is_help=True)
queue_app = typer.Typer(help="The queue of touches: list, approve, reject.", no_args_is_help=True)
evidence_app = typer.Typer(help="Record what a buyer did.", no_args_is_help=True)
users_app = typer.Typer(help="People who use the web app.", no_args_is_help=True)
app.add_typer(contacts_app, name="contacts")
app.add_typer(queue_app, name="queue")
app.add_typer(evidence_app, name="evidence")
app.add_typer(users_app, name="users")

ProjectOpt = Annotated[Path | None, typer.Option("--project", envvar="OUTREACH_PROJECT",
                                                 help="The project folder (default: here).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
NowOpt = Annotated[str | None, typer.Option("--now", help="Act as if it were this time (ISO 8601).")]
F = TypeVar("F", bound=Callable[..., Any])
EXAMPLE = Path(__file__).resolve().parent.parent


def fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def guarded(fn: F) -> F:
    """Turn the engine's errors into a clear message and exit 2, never a traceback."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ConfigError as exc:
            for p in exc.problems:
                typer.echo(str(p), err=True)
            raise typer.Exit(2) from None
        except (NotFound, InvalidInput, InvalidTransition) as exc:
            raise fail(str(exc)) from None
        except OutreachError as exc:
            raise fail(str(exc)) from None

    return wrapper  # type: ignore[return-value]


def parse_time(value: str | None) -> datetime:
    if not value:
        return datetime.now(UTC)
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"--now/--at '{value}' is not an ISO 8601 time (2026-03-02T09:30:00Z)") from None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def out_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


def open_engine(project: Path | None) -> Any:
    from .engine import Engine

    return Engine(Project.open(project))


@app.command()
@guarded
def init(directory: Path) -> None:
    """Make a new project folder with a working example (config, rules, content, sample contacts)."""
    if (directory / "config.yaml").exists():
        raise fail(f"{directory}/config.yaml exists already: not overwriting a project")
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(EXAMPLE / "config.yaml", directory / "config.yaml")
    for name in ("rules", "content"):
        shutil.copytree(EXAMPLE / name, directory / name, dirs_exist_ok=True)
    if (EXAMPLE / "contacts.csv").exists():
        shutil.copy(EXAMPLE / "contacts.csv", directory / "contacts.csv")
    typer.echo(f"made {directory}: config.yaml, rules/, content/, contacts.csv\n"
               f"next: cd {directory} && outreach check && outreach contacts import contacts.csv")


@app.command()
@guarded
def check(project: ProjectOpt = None) -> None:
    """Validate config.yaml, rules/ and content/: prints FILE:LINE: message for each problem."""
    problems = check_project(project)
    for p in problems:
        typer.echo(str(p), err=not p.warning)
    errors = [p for p in problems if not p.warning]
    if errors:
        typer.echo(f"{len(errors)} error(s): nothing was loaded", err=True)
        raise typer.Exit(2)
    typer.echo("ok: config, rules, templates and rule tests are valid" + (
        f" ({len(problems)} warning(s))" if problems else ""))


@contacts_app.command("import")
@guarded
def contacts_import(file: Path, strict: Annotated[bool, typer.Option("--strict")] = False,
                    project: ProjectOpt = None, as_json: JsonOpt = False) -> None:
    """Import contacts from CSV; bad rows are reported and written to FILE.rejected.csv."""
    from .contacts import import_csv
    from .db import session_scope

    if not file.is_file():
        raise fail(f"{file}: no such file")
    engine = open_engine(project)
    with session_scope(engine.db) as s:
        result = import_csv(s, file, region=engine.settings.default_region,
                            first_stage=engine.project.rules.first_stage, now=datetime.now(UTC), strict=strict)
        if strict and result.rejected:
            s.rollback()
    for row, why in result.rejected:
        typer.echo(f"{file.name}: row {row}: {why}", err=True)
    if as_json:
        out_json({"created": result.created, "updated": result.updated,
                  "rejected": [{"row": r, "error": e} for r, e in result.rejected]})
    elif strict and result.rejected:
        typer.echo(f"--strict: {len(result.rejected)} bad row(s), nothing imported", err=True)
    else:
        typer.echo(f"imported {result.created} new, updated {result.updated}, rejected {len(result.rejected)}"
                   + (f" (written to {result.rejected_file})" if result.rejected_file else ""))
    if result.rejected:
        raise typer.Exit(1)


@contacts_app.command("show")
@guarded
def contacts_show(contact: str, project: ProjectOpt = None, as_json: JsonOpt = False) -> None:
    """A contact's stage, evidence, touches, and the channel picked per interaction type, and why."""
    from .db import session_scope
    from .views import contact_detail

    engine = open_engine(project)
    with session_scope(engine.db) as s:
        detail = contact_detail(s, engine, contact)
    if as_json:
        out_json(detail)
        return
    c = detail["contact"]
    typer.echo(f"{c['first_name'] or ''} {c['last_name'] or ''} <{c['email'] or c['phone']}>  id {c['id']}"
               f"  owner {c['owner'] or '-'}")
    typer.echo(f"stage: {detail['stage']}")
    for ch in detail["stage_changes"]:
        typer.echo(f"  {ch['at']}  {ch['from']} -> {ch['to']}  proved by {ch['proof'] or '-'}")
    typer.echo(f"consent: {detail['consent']}  suppressed: {detail['suppressions'] or 'none'}")
    typer.echo("evidence:")
    for e in detail["evidence"]:
        typer.echo(f"  {e['occurred_at']}  {e['type']:<20} from {e['source']}"
                   + (f" (touch {e['touch_id']})" if e["touch_id"] else ""))
    typer.echo("touches:")
    for t in detail["touches"]:
        typer.echo(f"  #{t['id']} {t['status']:<16} {t['rule']}/{t['step']} {t['interaction']} by "
                   f"{t['channel'] or '-'} ({t['channel_reason']})" + (f"  [{t['reason']}]" if t["reason"] else ""))
    typer.echo("channels now:")
    for inter, pick in detail["channels"].items():
        typer.echo(f"  {inter:<12} {pick['channel'] or '-':<8} {pick['reason']}")


@contacts_app.command("prefer")
@guarded
def contacts_prefer(contact: str, interaction: Annotated[str, typer.Option("--interaction")],
                    channel: Annotated[str, typer.Option("--channel")], project: ProjectOpt = None) -> None:
    """State the channel a contact prefers for an interaction type."""
    from .db import session_scope
    from .views import set_preference

    engine = open_engine(project)
    with session_scope(engine.db) as s:
        c = set_preference(s, engine, contact, interaction, channel, source="cli")
    typer.echo(f"{c.email or c.phone} prefers {channel} for {interaction}")


@evidence_app.command("add")
@guarded
def evidence_add(contact: str, event: str, at: Annotated[str | None, typer.Option("--at")] = None,
                 data: Annotated[str | None, typer.Option("--data", help="JSON object")] = None,
                 project: ProjectOpt = None) -> None:
    """Record a piece of evidence for a contact (a call note, a pricing view)."""
    from .contacts import find_contact
    from .db import session_scope
    from .evidence import EvidenceIn
    from .views import validate_event

    engine = open_engine(project)
    validate_event(event)
    try:
        payload = json.loads(data) if data else {}
    except ValueError as exc:
        raise InvalidInput(f"--data is not JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise InvalidInput("--data must be a JSON object")
    with session_scope(engine.db) as s:
        cid = find_contact(s, contact).id
    when = parse_time(at)
    result = engine.record([EvidenceIn(event, when, "cli", contact_id=cid, data=payload)])
    moved = "; ".join(f"stage {c.from_stage} -> {c.to_stage}" for c in result.stage_changes)
    typer.echo(f"recorded {event} for contact {cid}" + (f" ({moved})" if moved else ""))


@app.command()
@guarded
def plan(dry_run: Annotated[bool, typer.Option("--dry-run")] = False,
         rules: Annotated[Path | None, typer.Option("--rules", help="with --dry-run: compare these rules")] = None,
         now: NowOpt = None, project: ProjectOpt = None, as_json: JsonOpt = False) -> None:
    """Queue the touches the rules call for now (--dry-run: show them, write nothing)."""
    from .dryrun import compare, compare_text, text
    from .dryrun import dry_run as dry

    engine = open_engine(project)
    when = parse_time(now)
    if rules is not None and not dry_run:
        raise InvalidInput("--rules goes with --dry-run")
    if dry_run:
        data = compare(engine, rules, when) if rules else dry(engine, when)[0]
        if as_json:
            out_json(data)
        else:
            typer.echo("\n".join(compare_text(data) if rules else text(data)))
        return
    result = engine.plan(when)
    if as_json:
        out_json({"queued": result.queued, "by_status": dict(result.by_status), "by_step": dict(result.by_step)})
    else:
        typer.echo(f"queued {result.queued} touch(es)" + "".join(
            f"\n  {k}: {v}" for k, v in sorted(result.by_step.items())))


@app.command("test")
@guarded
def rule_tests(files: Annotated[list[Path] | None, typer.Argument(help="Scenario files (default: rules/tests/*.yaml).")]
               = None, project: ProjectOpt = None, as_json: JsonOpt = False) -> None:
    """Run the rule tests: exit 0 all passed, 1 some failed, 2 a scenario file is invalid."""
    from .ruletests import run_tests

    code = run_tests(Project.open(project, migrate=False), files, as_json, typer.echo)
    if code:
        raise typer.Exit(code)


@queue_app.command("list")
@guarded
def queue_list(owner: Annotated[str | None, typer.Option("--owner")] = None,
               status: Annotated[str | None, typer.Option("--status")] = None,
               project: ProjectOpt = None, as_json: JsonOpt = False) -> None:
    """List touches (every status unless --status)."""
    from .db import session_scope
    from .queue import list_touches, touch_json

    engine = open_engine(project)
    with session_scope(engine.db) as s:
        rows = [touch_json(t, c) for t, c in list_touches(s, owner=owner, status=status)]
    if as_json:
        out_json(rows)
        return
    for t in rows:
        typer.echo(f"#{t['id']:<6} {t['status']:<16} {t['due_at']}  {t['contact']['email'] or '-':<28} "
                   f"{t['rule']}/{t['step']} {t['channel'] or '-'}" + (f"  [{t['reason']}]" if t["reason"] else ""))
    typer.echo(f"{len(rows)} touch(es)")


def _transition(action: str, ids: list[int], owner: str | None, reason: str | None, project: Path | None) -> None:
    from .db import session_scope
    from .queue import transition

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
    from .db import session_scope
    from .queue import approve_all

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


@app.command()
@guarded
def dispatch(now: NowOpt = None, project: ProjectOpt = None, as_json: JsonOpt = False) -> None:
    """Send what is due now."""
    engine = open_engine(project)
    when = parse_time(now)
    engine.housekeeping(when)
    r = engine.dispatch(when)
    data = {"claimed": r.claimed, "sent": r.sent, "failed": r.failed, "waiting": r.waiting,
            "retrying": r.retried, "suppressed": r.suppressed, "expired": r.expired}
    if as_json:
        out_json(data)
    else:
        typer.echo(", ".join(f"{k} {v}" for k, v in data.items()))
        for tid, why in sorted(r.reasons.items()):
            typer.echo(f"  touch {tid}: {why}", err=True)


@app.command()
@guarded
def report(project: ProjectOpt = None, as_json: JsonOpt = False) -> None:
    """The funnel, stage velocity, and response by channel and interaction type."""
    from .db import session_scope
    from .report import report as build

    engine = open_engine(project)
    with session_scope(engine.db) as s:
        data = build(s, engine.project.rules)
    if as_json:
        out_json(data)
        return
    typer.echo("funnel:")
    for f in data["funnel"]:
        typer.echo(f"  {f['stage']:<14} {f['contacts']:>7} now  {f['reached']:>7} reached")
    typer.echo("stage velocity:")
    for v in data["velocity"]:
        typer.echo(f"  {v['stage']:<14} {v['entered']:>7} entered, {v['avg_days_to_reach']} days on average")
    typer.echo("response by channel and interaction:")
    for r in data["response"]:
        typer.echo(f"  {r['channel']:<8} {r['interaction']:<12} {r['sent']:>6} sent {r['responded']:>6} "
                   f"responded ({r['response_rate']:.1%})")


@users_app.command("add")
@guarded
def users_add(email: str, role: Annotated[str, typer.Option("--role")],
              password: Annotated[str | None, typer.Option("--password", envvar="OUTREACH_PASSWORD")] = None,
              project: ProjectOpt = None) -> None:
    """Add a user (admin, marketer or rep); prints an API token once."""
    from .db import session_scope
    from .users import add_user

    engine = open_engine(project)
    if password is None and sys.stdin.isatty():
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    with session_scope(engine.db) as s:
        user, token = add_user(s, email, role, password)
    typer.echo(f"added {user.email} as {user.role}\nAPI token (shown once): {token}")


def main() -> None:
    app()


if __name__ == "__main__":  # `python -m outreach.cli`: run the module the commands registered on
    from outreach.cli import main as _main

    _main()
else:
    from . import cli_ops  # noqa: F401  (registers run, worker, sandbox, webhooks, simulate)
