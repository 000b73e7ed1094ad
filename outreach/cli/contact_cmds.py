"""Commands on people: contacts (import, show, state a preference), evidence, users of the web app."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from outreach.cli.app import (
    JsonOpt,
    ProjectOpt,
    contacts_app,
    evidence_app,
    fail,
    guarded,
    open_engine,
    out_json,
    parse_time,
    users_app,
)

PROGRESS_FROM = 5000  # rows: a smaller file imports before a bar would be worth drawing


@contacts_app.command("import")
@guarded
def contacts_import(file: Path, strict: Annotated[bool, typer.Option("--strict")] = False,
                    encoding: Annotated[str | None, typer.Option(
                        "--encoding", help="The file's encoding (default: UTF-8, with or without a BOM).")] = None,
                    mapping: Annotated[str | None, typer.Option(
                        "--map", help="Read a CRM export: hubspot, salesforce, or a mapping YAML file.")] = None,
                    dry_run: Annotated[bool, typer.Option(
                        "--dry-run", help="Show how the first rows would land; write nothing.")] = False,
                    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar.")] = False,
                    stage_column: Annotated[str | None, typer.Option(
                        "--stage-column", help="The column that holds each contact's starting stage (the rules' "
                        "stage ids, or the --map file's `stages:` values).")] = None,
                    project: ProjectOpt = None, as_json: JsonOpt = False) -> None:
    """Import contacts from CSV (ours, or a CRM's export with --map); bad rows are reported and written to
    FILE.rejected.csv."""
    from sqlalchemy.exc import DBAPIError

    from outreach.accounts.owners import assign_owners
    from outreach.accounts.store import refresh_stages
    from outreach.contacts import StageMeaning, count_rows, file_encoding, import_csv, preview
    from outreach.db import session_scope
    from outreach.mappings import load_mapping
    from outreach.ownership import approval_steps, flags_for, warning

    if not file.is_file():
        raise fail(f"{file}: no such file")
    file_encoding(encoding)  # an unknown name is a bad argument, before anything is opened
    columns = load_mapping(mapping) if mapping else None
    engine = open_engine(project)
    ids = tuple(engine.project.rules.stage_ids)
    if columns is not None and columns.stages:
        wrong = sorted({v for v in columns.stages.values() if v not in ids})
        if wrong:
            raise fail(f"--map {mapping}: stages: {', '.join(wrong)} is not a stage of the rules ({', '.join(ids)})")
    stages = StageMeaning(ids, columns.stages if columns else {},
                          f"mapping {columns.name}" if columns and columns.stages else f"--stage-column {stage_column}"
                          ) if stage_column or (columns and columns.stages) else None
    secret = engine.settings.server.secret_key
    if dry_run:
        with session_scope(engine.db) as s:
            rows = preview(s, file, region=engine.settings.default_region, encoding=encoding, mapping=columns,
                           secret=secret, stages=stages, stage_column=stage_column)
            s.rollback()
        if as_json:
            out_json([{"row": p.row, "fields": p.fields, "error": p.error, "updates": p.updates} for p in rows])
            return
        for note in columns.notes if columns else []:
            typer.echo(f"note: {note}")
        for p in rows:
            if p.error or p.fields is None:
                typer.echo(f"row {p.row}: rejected: {p.error}")
                continue
            typer.echo(f"row {p.row}: " + (f"updates contact {p.updates}" if p.updates else "a new contact"))
            for key, value in p.fields.items():
                typer.echo(f"    {key:<16} {value}")
        typer.echo("(dry run: nothing written)")
        return
    total = 0 if quiet or as_json else count_rows(file)
    bar = typer.progressbar(length=total, label=f"importing {file.name}", file=sys.stderr) \
        if total >= PROGRESS_FROM else None

    def advance(row: int) -> None:
        if bar is not None:
            bar.update((total if row < 0 else min(row, total)) - bar.pos)

    try:
        if bar is not None:
            bar.__enter__()
        assigned = 0
        with session_scope(engine.db) as s:
            rules = engine.project.rules
            result = import_csv(s, file, region=engine.settings.default_region, encoding=encoding,
                                first_stage=rules.first_stage, now=datetime.now(UTC), strict=strict,
                                roles=rules.accounts.roles, secret=secret, mapping=columns, progress=advance,
                                stages=stages, stage_column=stage_column)
            if strict and result.rejected:
                s.rollback()
            else:  # members may have joined or left an account: its stage follows them
                assigned = assign_owners(s, rules.accounts.owners, datetime.now(UTC))
                refresh_stages(s, rules.accounts, rules.stage_ids, result.account_ids, datetime.now(UTC),
                               rule_at=rules.account_rule_at)
    except DBAPIError as exc:  # another import writing the same contacts at the same time, say
        raise fail(f"the database refused the import ({type(exc.orig).__name__}); nothing was imported: "
                   f"run it again") from None
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    for row, why in result.rejected:
        typer.echo(f"{file.name}: row {row}: {why}", err=True)
    if not (strict and result.rejected):  # contacts nobody can approve touches for: a warning, exit code unchanged
        with session_scope(engine.db) as s:
            steps = approval_steps(engine.project.rules)
            for flag in flags_for(s, result.owners, engine.project.rules):
                typer.echo(warning(flag, steps), err=True)
    if as_json:
        out_json({"created": result.created, "updated": result.updated,
                  "rejected": [{"row": r, "error": e} for r, e in result.rejected]})
    elif strict and result.rejected:
        typer.echo(f"--strict: {len(result.rejected)} bad row(s), nothing imported", err=True)
    else:
        typer.echo(f"imported {result.created} new, updated {result.updated}, rejected {len(result.rejected)}"
                   + (f" (written to {result.rejected_file})" if result.rejected_file else "")
                   + (f"; {assigned} given an owner by the rules" if assigned else ""))
    if result.rejected:
        raise typer.Exit(1)


@contacts_app.command("export")
@guarded
def contacts_export(fmt: Annotated[str, typer.Option("--format", help="csv or jsonl")] = "csv",
                    out: Annotated[Path | None, typer.Option("--out", help="Write here (default: stdout).")] = None,
                    project: ProjectOpt = None) -> None:
    """Every contact, one row each: account, stage and the evidence that proved it, channel preferences,
    consent, counts. Streamed (constant memory); CSV cells are escaped against formula injection."""
    import csv
    import json

    from outreach.contacts import escape_formula
    from outreach.db import session_scope
    from outreach.personal import EXPORT_COLUMNS, export_rows

    if fmt not in ("csv", "jsonl"):
        raise fail(f"--format '{fmt}': give csv or jsonl")
    engine = open_engine(project)
    try:
        fh = out.open("w", newline="", encoding="utf-8") if out else sys.stdout
    except OSError as exc:
        raise fail(f"--out {out}: {exc.strerror}") from None
    count = 0
    try:
        writer = csv.writer(fh)
        if fmt == "csv":
            writer.writerow(EXPORT_COLUMNS)
        with session_scope(engine.db) as s:
            for row in export_rows(s):
                if fmt == "csv":
                    writer.writerow([_cell(row[c]) if c == "phone" else escape_formula(_cell(row[c]))
                                     for c in EXPORT_COLUMNS])  # an E.164 number (+digits) is no formula
                else:
                    fh.write(json.dumps(row, ensure_ascii=False) + "\n")
                count += 1
    finally:
        if out:
            fh.close()
    if out:
        typer.echo(f"exported {count} contact(s) to {out}", err=True)


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


@contacts_app.command("export-personal")
@guarded
def contacts_export_personal(contact: str, project: ProjectOpt = None) -> None:
    """Everything held about one person (contact, evidence, messages sent and received, consent history),
    as one JSON document: the answer to a subject access request."""
    from outreach.contacts import find_contact
    from outreach.db import session_scope
    from outreach.personal import personal_data

    engine = open_engine(project)
    with session_scope(engine.db) as s:
        document = personal_data(s, find_contact(s, contact))
    out_json(document)


@contacts_app.command("forget")
@guarded
def contacts_forget(contact: str, actor: Annotated[str, typer.Option(
                        "--by", help="Who asked (recorded in the audit).")] = "cli",
                    project: ProjectOpt = None) -> None:
    """Erase a person's personal data, messages and evidence payloads (counts stay); their email and phone
    go on the do-not-contact list as keyed hashes, so no later import brings them back. Audited."""
    from outreach.contacts import find_contact
    from outreach.db import session_scope
    from outreach.personal import forget

    engine = open_engine(project)
    with session_scope(engine.db) as s:
        c = find_contact(s, contact)
        request = forget(s, c, secret=engine.settings.server.secret_key, actor=actor, now=datetime.now(UTC))
    typer.echo(f"contact {request.contact_id} forgotten (by {request.actor}); their addresses are on the "
               f"do-not-contact list")


@contacts_app.command("show")
@guarded
def contacts_show(contact: str, project: ProjectOpt = None, as_json: JsonOpt = False) -> None:
    """A contact's stage, evidence, touches, and the channel picked per interaction type, and why."""
    from outreach.contact_info import contact_detail
    from outreach.db import session_scope

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
    from outreach.contact_info import set_preference
    from outreach.db import session_scope

    engine = open_engine(project)
    with session_scope(engine.db) as s:
        c = set_preference(s, engine, contact, interaction, channel, source="cli")
    typer.echo(f"{c.email or c.phone} prefers {channel} for {interaction}")


@contacts_app.command("consent")
@guarded
def contacts_consent(contact: str, channel: Annotated[str, typer.Option("--channel", help="email or sms")],
                     granted: Annotated[bool, typer.Option("--granted/--revoked",
                                                           help="restore consent, or revoke it")],
                     source: Annotated[str, typer.Option("--source", help="where the consent came from")],
                     reason: Annotated[str, typer.Option("--reason", help="why it changes")],
                     project: ProjectOpt = None) -> None:
    """Restore (--granted, the operator's own shell: admins only) or revoke a contact's consent on a
    channel, audited: --granted lifts the suppression, --revoked adds one; both leave a record."""
    from outreach.consent import change_consent
    from outreach.contacts import find_contact
    from outreach.db import session_scope
    from outreach.outbound import enqueue_revocation

    engine = open_engine(project)
    now = datetime.now(UTC)
    with session_scope(engine.db) as s:
        c = find_contact(s, contact)
        change = change_consent(s, c, channel.strip().lower(), granted=granted, source=source, reason=reason,
                                actor="cli", now=now)
        enqueue_revocation(s, engine.settings.outbound_webhooks, change, now)  # told with the change
        who = c.email or c.phone
    typer.echo(f"{who}: {channel} consent {'granted' if granted else 'revoked'} (recorded)")


@evidence_app.command("add")
@guarded
def evidence_add(contact: str, event: str, at: Annotated[str | None, typer.Option("--at")] = None,
                 data: Annotated[str | None, typer.Option("--data", help="JSON object")] = None,
                 project: ProjectOpt = None) -> None:
    """Record a piece of evidence for a contact (a call note, a pricing view). email.resubscribed and
    sms.opted_in are refused (exit 2): only the buyer lifts an opt-out; see `contacts consent`."""
    from outreach.consent import refuse_buyer_consent
    from outreach.contact_info import validate_event
    from outreach.contacts import find_contact
    from outreach.db import session_scope
    from outreach.evidence import EvidenceIn
    from outreach.payload import check_time, parse_object

    validate_event(event)
    refuse_buyer_consent(event)
    payload = parse_object(data, "--data") if data else {}
    engine = open_engine(project)
    with session_scope(engine.db) as s:
        cid = find_contact(s, contact).id
    when = check_time(parse_time(at), "--at")
    result = engine.record([EvidenceIn(event, when, "cli", contact_id=cid, data=payload)])
    moved = "; ".join(f"stage {c.from_stage} -> {c.to_stage}" for c in result.stage_changes)
    typer.echo(f"recorded {event} for contact {cid}" + (f" ({moved})" if moved else ""))


@users_app.command("add")
@guarded
def users_add(email: str, role: Annotated[str, typer.Option("--role")],
              name: Annotated[str | None, typer.Option("--name", help="For the From name and signature.")] = None,
              timezone: Annotated[str | None, typer.Option("--timezone", help="IANA name, e.g. Europe/Berlin.")] = None,
              password_stdin: Annotated[bool, typer.Option("--password-stdin",
                                                           help="Read the password from one line of stdin.")] = False,
              no_password: Annotated[bool, typer.Option("--no-password",
                                                        help="API token only: the user cannot sign in.")] = False,
              password: Annotated[str | None, typer.Option("--password", envvar="OUTREACH_PASSWORD")] = None,
              project: ProjectOpt = None) -> None:
    """Add a user (admin, marketer or rep), or update one (and enable it again); prints an API token once.
    The password comes from a prompt, --password-stdin or OUTREACH_PASSWORD; --no-password makes an
    API-only user."""
    from outreach.db import session_scope
    from outreach.users import add_user

    if sum([password_stdin, no_password, password is not None]) > 1:
        raise fail("give one of --password-stdin, --no-password and --password (or OUTREACH_PASSWORD)")
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise fail("--password-stdin: stdin held no password line")
    elif password is None and not no_password:
        if not sys.stdin.isatty():
            raise fail("no password: stdin is not a terminal, so there is no prompt. Pipe it with "
                       "--password-stdin, or pass --no-password for an API-only user who cannot sign in")
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    engine = open_engine(project)
    with session_scope(engine.db) as s:
        user, token = add_user(s, email, role, password, name=name, timezone=timezone)
        summary = f"added {user.email} as {user.role}" + ("" if user.password_hash else " (API only: no password)")
    typer.echo(f"{summary}\nAPI token (shown once): {token}")


@users_app.command("disable")
@guarded
def users_disable(email: str, project: ProjectOpt = None) -> None:
    """Disable a user: no sign-in, no API token, every session ended (`users add` enables again)."""
    from outreach.db import session_scope
    from outreach.users import disable_user

    engine = open_engine(project)
    with session_scope(engine.db) as s:
        address = disable_user(s, email).email
    typer.echo(f"disabled {address}: signed out everywhere, API token refused (`users add` enables them again)")


@users_app.command("remove")
@guarded
def users_remove(email: str, project: ProjectOpt = None) -> None:
    """Remove a user for good (their sessions and token end with them)."""
    from outreach.db import session_scope
    from outreach.users import remove_user

    engine = open_engine(project)
    with session_scope(engine.db) as s:
        remove_user(s, email)
    typer.echo(f"removed {email.strip().lower()}")
