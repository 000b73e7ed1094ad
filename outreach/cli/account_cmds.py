"""`outreach accounts list|show`: buying committees, the account's stage and the proof of it."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import typer

from outreach.cli.app import JsonOpt, ProjectOpt, accounts_app, guarded, open_engine, out_json


def _local(text: str | None, tz: ZoneInfo) -> str:
    """An ISO time from the JSON, as a person in the project's zone reads it."""
    if not text:
        return "-"
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(tz).strftime("%a %d %b %Y %H:%M %Z")


@accounts_app.command("list")
@guarded
def accounts_list(project: ProjectOpt = None, as_json: JsonOpt = False) -> None:
    """Every account with its stage and number of members."""
    from outreach.accounts.info import list_accounts
    from outreach.db import session_scope

    engine = open_engine(project)
    with session_scope(engine.db) as s:
        rows, _total = list_accounts(s)
    if as_json:
        out_json(rows)
        return
    if not rows:
        typer.echo("no accounts yet: import contacts with an account_id or company_domain column, or from "
                   "company email addresses")
        return
    tz = ZoneInfo(engine.settings.timezone)
    for r in rows:
        a = r["account"]
        paused = f"  paused until {_local(r['paused_until'], tz)}" if r["paused_until"] else ""
        typer.echo(f"{a['id']:<24} {(a['name'] or a['domain'] or '')[:32]:<32} {r['stage'] or '(no stage yet)':<16} "
                   f"{r['member_count']} member(s){paused}")


@accounts_app.command("show")
@guarded
def accounts_show(account: str, project: ProjectOpt = None, as_json: JsonOpt = False) -> None:
    """One account: its stage and the members' evidence that proved it, and its members."""
    from outreach.accounts.info import account_json
    from outreach.db import session_scope

    engine = open_engine(project)
    with session_scope(engine.db) as s:
        data = account_json(s, account, datetime.now(UTC))
    if as_json:
        out_json(data)
        return
    tz = ZoneInfo(engine.settings.timezone)
    a = data["account"]
    typer.echo(f"{a['name'] or a['id']}  (id {a['id']}, domain {a['domain'] or '-'})")
    typer.echo(f"stage: {data['stage'] or 'none yet'}")
    proof = data["proof"]
    if proof:
        who = ", ".join(f"{m['email']} ({(m['role'] or 'no role').replace('_', ' ')}, {m['stage']})"
                        for m in proof.get("members", []))
        typer.echo(f"  because {proof.get('rule')}: {who}" + (f"  [{proof['where']}]" if proof.get("where") else ""))
    if data["paused_until"]:
        typer.echo(f"automated touches paused until {_local(data['paused_until'], tz)} (a member answered)")
    typer.echo("members:")
    for m in data["members"]:
        typer.echo(f"  {m['id']:>6}  {m['email'] or '-':<36} {(m['role'] or '-').replace('_', ' '):<22} {m['stage']}")
