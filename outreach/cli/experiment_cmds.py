"""`outreach experiments`: each experiment's figures and verdict; `experiments stop ID` to stop one and
promote a winner (the rules file stays the source of truth: the change is printed, or written)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from outreach.cli.app import JsonOpt, NowOpt, ProjectOpt, app, guarded, open_engine, out_json, parse_time

experiments_app = typer.Typer(help="Content experiments: figures, verdicts, stop and promote.")
app.add_typer(experiments_app, name="experiments")


@experiments_app.callback(invoke_without_command=True)
@guarded
def experiments(ctx: typer.Context, now: NowOpt = None, project: ProjectOpt = None, as_json: JsonOpt = False) -> None:
    """Every experiment: per variant the contacts, touches, successes and rate (95% interval), the
    holdout, and the verdict (too early, no difference, or the winner)."""
    if ctx.invoked_subcommand is not None:
        return
    from outreach.db import session_scope
    from outreach.experiments.results import report

    engine = open_engine(project)
    with session_scope(engine.db) as s:
        data = report(s, engine.project.rules, parse_time(now))
    if as_json:
        out_json(data)
        return
    if not data:
        typer.echo("no experiments: give a playbook step `content: [a, b]` and an `experiment:` "
                   "(see docs/EXPERIMENTS.md)")
    for exp in data:
        typer.echo("\n".join(table(exp)) + "\n")


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _diff(d: dict[str, Any] | None) -> str:
    return "-" if d is None else f"{100 * d['difference']:+.1f} pts [{100 * d['low']:+.1f}, {100 * d['high']:+.1f}]"


def table(exp: dict[str, Any]) -> list[str]:
    metric = "a stage advance" if exp["metric"] == "stage_advance" else "a reply or accepted meeting"
    status = f"stopped{', promoted ' + exp['promoted'] if exp['promoted'] else ''}" \
        if exp["status"] == "stopped" else "running"
    lines = [f"{exp['id']}  ({exp['rule']}/{exp['step']}, success: {metric}, {exp['allocation']} split, {status})",
             f"  verdict: {exp['verdict_text']}"]
    width = max(len(v["content"]) for v in exp["variants"]) if exp["variants"] else 8
    width = max(width, len("holdout"))
    lines.append(f"  {'content':<{width}}  {'contacts':>8}  {'touches':>7}  {'successes':>9}  "
                 f"{'rate (95% interval)':<22}  vs first variant        vs holdout")
    for v in exp["variants"]:
        interval = f"{_pct(v['rate'])} [{_pct(v['low'])}-{_pct(v['high'])}]" if v["rate"] is not None else "-"
        lines.append(f"  {v['content']:<{width}}  {v['contacts']:>8}  {v['touches']:>7}  {v['successes']:>9}  "
                     f"{interval:<22}  {_diff(v['vs_control']):<22}  {_diff(v['vs_holdout'])}")
    h = exp["holdout"]
    lines.append(f"  {'holdout':<{width}}  {h['contacts']:>8}  {0:>7}  {h['successes']:>9}  {_pct(h['rate'])}")
    return lines


@experiments_app.command("stop")
@guarded
def stop_cmd(exp_id: Annotated[str, typer.Argument(metavar="ID", help="The experiment's id in the rules.")],
             promote: Annotated[str | None, typer.Option("--promote", metavar="CONTENT",
                                                         help="The variant everyone gets from now on.")] = None,
             write: Annotated[bool, typer.Option("--write", help="Edit the rules file too.")] = False,
             project: ProjectOpt = None) -> None:
    """Stop an experiment (and promote a variant): prints the rules change, or makes it with --write."""
    from outreach.db import session_scope
    from outreach.experiments.stop import stop_experiment

    engine = open_engine(project)
    with session_scope(engine.db) as s:
        done = stop_experiment(s, engine.project.rules, engine.project.path, exp_id, promote, write, "cli",
                               engine.settings.outbound_webhooks)
    typer.echo(f"stopped {exp_id}: from now on its step sends {done.content} to everyone "
               f"({'promoted' if done.promoted else 'the first variant, as no variant was promoted'})")
    if done.note:
        typer.echo(done.note, err=True)
    if done.edit is None:
        return
    if done.written:
        typer.echo(f"wrote {done.edit.file} (lines {done.edit.first}-{done.edit.last}):\n" + done.edit.text())
    else:
        typer.echo("make this change in the rules (or run again with --write):\n" + done.edit.text())
