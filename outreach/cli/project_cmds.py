"""Commands on the project as a whole: make one, check it, plan, send what is due, test the rules, report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from outreach.checks.project import check_project, open_project
from outreach.cli.app import JsonOpt, NowOpt, ProjectOpt, app, guarded, open_engine, out_json, parse_time
from outreach.errors import InvalidInput


@app.command()
@guarded
def init(directory: Path) -> None:
    """Make a new project folder with a working example (config, rules, content, sample contacts)."""
    from outreach.scaffold import create_project

    made = create_project(directory)
    typer.echo(f"made {directory}: {', '.join(made)}\n"
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


@app.command()
@guarded
def plan(dry_run: Annotated[bool, typer.Option("--dry-run")] = False,
         rules: Annotated[Path | None, typer.Option("--rules", help="with --dry-run: compare these rules")] = None,
         now: NowOpt = None, project: ProjectOpt = None, as_json: JsonOpt = False) -> None:
    """Queue the touches the rules call for now (--dry-run: show them, write nothing)."""
    from outreach.dryrun import compare, compare_text, text
    from outreach.dryrun import dry_run as dry

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
    from outreach.ruletests import run_tests

    code = run_tests(open_project(project, migrate=False), files, as_json, typer.echo)
    if code:
        raise typer.Exit(code)


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
def report(
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
    since: Annotated[str | None, typer.Option("--since", help="First UTC day, YYYY-MM-DD (default: 30 days "
                                                               "before --until).")] = None,
    until: Annotated[str | None, typer.Option("--until", help="Last UTC day, YYYY-MM-DD (default: today).")] = None,
    owner: Annotated[str | None, typer.Option("--owner", help="Only the contacts this rep (email) owns.")] = None,
    stage: Annotated[str | None, typer.Option("--stage", help="Only the contacts at this stage now.")] = None,
    playbook: Annotated[str | None, typer.Option("--playbook", help="Only this playbook's touches (a stage's "
                                                                    "playbook, or trigger:NAME), and the contacts "
                                                                    "it touched.")] = None,
    attr: Annotated[list[str] | None, typer.Option("--attr", help="Only the contacts with this attribute, "
                                                                  "NAME=VALUE (like industry=software); "
                                                                  "repeat for several.")] = None,
    html: Annotated[Path | None, typer.Option("--html", help="Also write a self-contained page with charts "
                                                              "(no network needed) to this file.")] = None,
    now: NowOpt = None,
) -> None:
    """The buying funnel and its history, conversion, days per stage, results per step and channel, the queue."""
    from outreach.analytics.build import build_report, check_owner, deliverability
    from outreach.analytics.model import Filters, narrowing, parse_attr, period
    from outreach.analytics.snapshots import kept_days
    from outreach.analytics.text import render

    today = parse_time(now).date()
    first, last = period(since, until, today)
    engine = open_engine(project)
    settings = engine.project.settings.report
    with engine.reading() as s:
        if owner is not None:
            check_owner(s, owner.strip().lower())
        filters = narrowing(Filters(first, last, owner.strip().lower() if owner is not None else None),
                            engine.project.rules, stage, playbook, [parse_attr(a) for a in attr or []])
        data = build_report(s, engine.project.rules, filters, settings.advance_within,
                            today=None if now else today)  # --now in the past: no live counts for it
        kept = {} if filters.narrowed else kept_days(s, filters)
        delivery = deliverability(s, engine.project.rules, filters) if html is not None else []
    if html is not None:
        from outreach.analytics.html import write_html

        try:
            write_html(html, data, settings.min_cases, settings.advance_within, filters.owner, kept, delivery)
        except OSError as exc:
            raise InvalidInput(f"--html {html}: cannot write it ({exc.strerror})") from None
    if as_json:
        out_json(data)
        return
    typer.echo(render(data, settings.min_cases, filters.owner, filters.described()))
    if html is not None:
        typer.echo(f"\nwrote {html}: open it in a browser (it needs no network)")
