"""The `outreach` command's app, its sub-apps and shared options, and the error handling every command
shares. Exit codes: 0 done, 1 done but some input was rejected, 2 nothing done.

The commands import the engine's modules inside their bodies, on purpose: importing the engine costs
about a second, and `outreach --help` or `outreach init` should not pay for what they do not use."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar, cast

import typer

from outreach.checks.project import open_project
from outreach.errors import ConfigError, InvalidInput, InvalidTransition, NotFound, OutreachError

if TYPE_CHECKING:
    from outreach.engine import Engine

app = typer.Typer(help="outreach: a nurture and multichannel outreach engine.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
contacts_app = typer.Typer(help="Import, show and set preferences of contacts.", no_args_is_help=True)
queue_app = typer.Typer(help="The queue of touches: list, approve, reject.", no_args_is_help=True)
evidence_app = typer.Typer(help="Record what a buyer did.", no_args_is_help=True)
users_app = typer.Typer(help="People who use the web app.", no_args_is_help=True)
accounts_app = typer.Typer(help="Accounts: buying committees, their stage and its proof.", no_args_is_help=True)
app.add_typer(contacts_app, name="contacts")
app.add_typer(queue_app, name="queue")
app.add_typer(evidence_app, name="evidence")
app.add_typer(users_app, name="users")
app.add_typer(accounts_app, name="accounts")

ProjectOpt = Annotated[Path | None, typer.Option("--project", envvar="OUTREACH_PROJECT",
                                                 help="The project folder (default: here).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
NowOpt = Annotated[str | None, typer.Option("--now", help="Act as if it were this time (ISO 8601).")]
F = TypeVar("F", bound=Callable[..., Any])


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

    return cast(F, wrapper)  # wraps keeps the signature


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


def open_engine(project: Path | None) -> Engine:
    from outreach.engine import Engine

    return Engine(open_project(project))

