"""The `outreach` commands that run processes: the engine, workers, the sandbox, the simulator."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

import typer

from outreach.checks.project import open_project
from outreach.cli.app import JsonOpt, ProjectOpt, app, fail, guarded, out_json


@app.command()
@guarded
def simulate(buyers: Annotated[int, typer.Option("--buyers", min=1, help="Buyers in the market.")] = 10_000,
             weeks: Annotated[int, typer.Option("--weeks", min=1, help="Simulated weeks.")] = 8,
             seed: Annotated[int, typer.Option("--seed", help="The same seed, the same market.")] = 1,
             jobs: Annotated[int | None, typer.Option("--jobs", min=1,
                                                      help="Processes (default: one per policy).")] = None,
             experiment: Annotated[Literal["aa", "lift"] | None, typer.Option(
                 "--experiment", help="Run a content experiment many times instead: aa (two identical "
                 "variants) or lift (the second better by --lift).")] = None,
             lift: Annotated[float, typer.Option("--lift", min=0, help="With --experiment lift: the true "
                                                 "relative lift of the second variant.")] = 0.2,
             runs: Annotated[int, typer.Option("--runs", min=1, help="With --experiment: how many runs.")] = 200,
             project: ProjectOpt = None, as_json: JsonOpt = False) -> None:
    """Run the rules over a simulated market, once per channel policy, and compare them."""
    from outreach.simulator import run as sim
    if experiment is not None:
        from outreach.simulator import content
        from outreach.simulator.market import MarketSpec

        spec = replace(MarketSpec(), buyers=buyers, weeks=weeks, seed=seed)
        found = content.experiment(experiment, lift, runs, spec)
        if as_json:
            out_json(found)
        else:
            typer.echo(content.experiment_text(found, experiment))
        return
    result = sim.simulate(open_project(project, migrate=False), buyers=buyers, weeks=weeks, seed=seed, jobs=jobs)
    if as_json:
        out_json(result)
    else:
        typer.echo(sim.table(result))


@app.command()
@guarded
def run(project: ProjectOpt = None,
        port: Annotated[int | None, typer.Option("--port")] = None) -> None:
    """Run the scheduler, the web app and the webhooks in one process."""
    from outreach.config import port_warning
    from outreach.server import serve

    setup_logging()
    opened = open_project(project)
    if warning := port_warning(opened.settings, port):
        typer.echo(f"warning: {warning}", err=True)
    serve(opened, port=port, web=True)


@app.command()
@guarded
def worker(project: ProjectOpt = None) -> None:
    """Run the scheduler and dispatcher only (several may run against one PostgreSQL database)."""
    from outreach.server import serve

    setup_logging()
    serve(open_project(project), web=False)


@app.command()
def sandbox(port: Annotated[int, typer.Option("--port")] = 8025,
            host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
            key_file: Annotated[Path | None, typer.Option(
                "--key-file", help="keep the webhook signing key here")] = None,
            callbacks: Annotated[bool, typer.Option("--callbacks/--no-callbacks")] = True,
            engine_url: Annotated[str | None, typer.Option(
                "--engine-url", help="where emitted webhooks go (the engine's server.public_url)")] = None,
            twilio_token: Annotated[str | None, typer.Option(
                "--twilio-token", envvar="TWILIO_AUTH_TOKEN", help="signs emitted Twilio webhooks")] = None,
            inbound_url: Annotated[str | None, typer.Option(
                "--inbound-url", help="the Inbound Parse URL `outreach webhooks` prints")] = None,
            script: Annotated[Path | None, typer.Option(
                "--script", help="a scripted buyer (YAML rules; see docs/SANDBOX.md)")] = None) -> None:
    """A local stand-in for the SendGrid and Twilio APIs (nothing leaves the machine); it can also
    post their webhooks back to the engine, on command or as a scripted buyer (docs/SANDBOX.md)."""
    from outreach.sandbox.buyer import load_script
    from outreach.sandbox.server import serve as serve_sandbox

    setup_logging()
    text = None
    if script is not None:
        try:
            text = script.read_text()
            load_script(text)
        except (OSError, ValueError) as exc:
            raise fail(f"{script}: {exc}") from None
    typer.echo(f"sandbox on http://{host}:{port}: set sendgrid.api_base and twilio.api_base to it; "
               f"GET /sandbox/keys gives the webhook public key")
    serve_sandbox(host, port, key_file=str(key_file) if key_file else None, callbacks=callbacks,
                  engine_url=engine_url, twilio_token=twilio_token, inbound_url=inbound_url, script=text)


webhooks_app = typer.Typer(help="Webhooks: the inbound URLs to give providers, and the outbound deliveries.")
app.add_typer(webhooks_app, name="webhooks")


@webhooks_app.callback(invoke_without_command=True)
@guarded
def webhooks(ctx: typer.Context, project: ProjectOpt = None, as_json: JsonOpt = False) -> None:
    """The URLs to give SendGrid and Twilio (from server.public_url), Inbound Parse's
    secret included. `webhooks deliveries` and `webhooks replay ID` for the outbound ones."""
    from outreach import tokens
    from outreach.config import load_settings
    from outreach.project import project_dir

    if ctx.invoked_subcommand is not None:
        return
    settings = load_settings(project_dir(project))
    base = settings.server.public_url.rstrip("/")
    inbound = tokens.short_mac(settings.server.secret_key, "inbound-parse", 24)
    urls = {"sendgrid_events": f"{base}/webhooks/sendgrid/events",
            "sendgrid_inbound_parse": f"{base}/webhooks/sendgrid/inbound?token={inbound}",
            "twilio_sms": f"{base}/webhooks/twilio/sms", "twilio_status": f"{base}/webhooks/twilio/status"}
    if as_json:
        out_json(urls)
    else:
        for name, url in urls.items():
            typer.echo(f"{name:<24} {url}")


@webhooks_app.command("deliveries")
@guarded
def webhooks_deliveries(project: ProjectOpt = None, as_json: JsonOpt = False,
                        limit: Annotated[int, typer.Option("--limit", min=1, help="How many, newest first.")] = 50,
                        ) -> None:
    """The outbound webhook delivery log, newest first: event, receiver, status, attempts, last answer."""
    from outreach.db import session_scope
    from outreach.outbound import deliveries

    opened = open_project(project)
    with session_scope(opened.engine) as s:
        rows = deliveries(s, limit)
    if as_json:
        out_json(rows)
        return
    if not rows:
        typer.echo("no outbound webhook deliveries yet (outbound_webhooks: in config.yaml names the receivers)")
    zone = ZoneInfo(opened.settings.timezone)
    for r in rows:
        when = datetime.fromisoformat(r["created_at"].replace("Z", "+00:00")).astimezone(zone)
        answer = r["last_error"] or (f"HTTP {r['last_status']}" if r["last_status"] else "not tried yet")
        typer.echo(f"#{r['id']:<6} {when:%Y-%m-%d %H:%M} {r['event']:<22} {r['status']:<10} "
                   f"{r['attempts']} attempt(s), {answer}  -> {r['url']}")


@webhooks_app.command("replay")
@guarded
def webhooks_replay(delivery: int, project: ProjectOpt = None) -> None:
    """Send an outbound webhook delivery again now (same webhook-id); if the receiver fails it is
    retried on the usual schedule by `outreach run`/`worker`."""
    from channels.webhook_out import WebhookSender
    from outreach.db import session_scope
    from outreach.engine import Engine
    from outreach.outbound import replay

    engine = Engine(open_project(project))
    now = datetime.now(UTC)
    with session_scope(engine.db) as s:
        d = replay(s, delivery, now)
        url = d.url
    sender = WebhookSender()
    try:
        run = engine.deliver_webhooks(sender, now, only=delivery)
    finally:
        sender.close()
    if run.delivered:
        typer.echo(f"delivery {delivery} sent again to {url}: delivered")
    elif run.held:
        typer.echo(f"delivery {delivery} queued: an earlier event of the same contact goes to {url} first")
    else:
        raise fail(f"delivery {delivery} to {url} failed again; it will be retried (see `outreach webhooks "
                   f"deliveries`)", code=1)


def setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("alembic", "apscheduler"):  # every 5 s tick and migration plugin is not news
        logging.getLogger(noisy).setLevel(logging.WARNING)


