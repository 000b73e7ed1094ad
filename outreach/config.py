"""config.yaml -> typed settings. `${NAME}` is replaced from the environment; unknown keys are errors."""

from __future__ import annotations

import os
import re
import secrets
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from outreach.durations import parse_duration
from outreach.errors import ConfigError, Problem
from outreach.located_yaml import Located, load_file, validate

Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Window(Strict):
    """A weekly send window: `days: mon-fri` (or `mon,wed,fri`), `hours: "08:00-18:00"`."""

    days: str = "mon-fri"
    hours: str = "08:00-18:00"

    @field_validator("days")
    @classmethod
    def _days(cls, v: str) -> str:
        parse_days(v)
        return v

    @field_validator("hours")
    @classmethod
    def _hours(cls, v: str) -> str:
        parse_hours(v)
        return v

    @property
    def weekdays(self) -> frozenset[int]:
        return parse_days(self.days)

    @property
    def minutes(self) -> tuple[int, int]:
        return parse_hours(self.hours)


def parse_days(text: str) -> frozenset[int]:
    out: set[int] = set()
    for part in str(text).lower().replace(" ", "").split(","):
        ends = part.split("-")
        if not all(e in DAYS for e in ends) or len(ends) > 2:
            raise ValueError(f"'{text}' is not a list of days (write mon-fri or mon,wed,fri)")
        a, b = DAYS.index(ends[0]), DAYS.index(ends[-1])
        out.update(range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)])
    return frozenset(out)


def parse_hours(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*", str(text))
    if not match:
        raise ValueError(f"'{text}' is not a range of hours (write \"08:00-18:00\")")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if not (0 <= start < end <= 24 * 60 and m1 < 60 and m2 < 60):
        raise ValueError(f"'{text}': the window must start before it ends, within one day")
    return start, end


class Cap(Strict):
    day: int | None = Field(default=None, ge=0)
    week: int | None = Field(default=None, ge=0)


class Holiday(Strict):
    date: date
    timezones: list[str] = []  # empty: everywhere
    countries: list[str] = []  # matched against a contact's `country` attribute


def _holiday(v: Any) -> Any:
    return {"date": v} if isinstance(v, str | date) else v


class Policy(Strict):
    send_windows: dict[Literal["email", "sms", "meeting"], Window] = {
        "email": Window(days="mon-fri", hours="08:00-18:00"),
        "sms": Window(days="mon-fri", hours="09:00-19:00"),
        "meeting": Window(days="mon-fri", hours="09:00-17:00"),
    }
    caps: dict[Literal["all", "email", "sms", "meeting"], Cap] = {
        "all": Cap(day=1, week=3), "sms": Cap(week=2)}
    approval_expires_after: Duration = timedelta(days=3)
    holidays: list[Annotated[Holiday, BeforeValidator(_holiday)]] = []
    email_consent: Literal["opt_out", "opt_in"] = "opt_out"


class Providers(Strict):
    email: Literal["outbox", "sendgrid", "smtp"] = "outbox"
    sms: Literal["outbox", "twilio"] = "outbox"
    meeting: Literal["email"] = "email"


class Sender(Strict):
    email: str = "sales@example.com"
    name: str = "Example Sales"
    sms_from: str = "+15005550006"
    domain: str = "example.com"
    help_text: str = "Example Sales: reply STOP to opt out. Questions? sales@example.com"
    sms_rate: float = Field(default=1.0, gt=0)  # messages a second: long code 1, toll-free 3, short code 100


class SendGrid(Strict):
    api_key: str = ""
    api_base: str = "https://api.sendgrid.com"
    webhook_public_key: str = ""
    inbound_domain: str = "reply.example.com"
    timeout: float = 10.0


class Smtp(Strict):
    host: str = "localhost"
    port: int = 25
    username: str = ""
    password: str = ""
    starttls: bool = False
    timeout: float = 10.0


class Twilio(Strict):
    account_sid: str = ""
    auth_token: str = ""
    api_base: str = "https://api.twilio.com"
    messaging_service_sid: str = ""
    timeout: float = 10.0


class Server(Strict):
    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str = "http://127.0.0.1:8000"
    secret_key: str = ""


class Dispatch(Strict):
    batch_size: int = Field(default=200, ge=1)
    concurrency: int = Field(default=8, ge=1)
    max_attempts: int = Field(default=5, ge=1)
    retry_base: Duration = timedelta(seconds=30)
    poll_every: Duration = timedelta(seconds=5)
    plan_every: Duration = timedelta(minutes=1)
    # a touch `sending` for longer than this was left by a worker that died (never re-sent blindly)
    sending_lease: Duration = timedelta(minutes=10)


class Settings(Strict):
    database: str = "sqlite:///outreach.db"
    timezone: str = "UTC"
    default_region: str = "US"
    providers: Providers = Providers()
    sender: Sender = Sender()
    sendgrid: SendGrid = SendGrid()
    smtp: Smtp = Smtp()
    twilio: Twilio = Twilio()
    server: Server = Server()
    policy: Policy = Policy()
    dispatch: Dispatch = Dispatch()

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone '{v}' (use an IANA name like Europe/Berlin)") from None
        return v


def _interpolate(value: Any) -> Any:
    if isinstance(value, str):
        return _ENV.sub(lambda m: os.environ.get(m.group(1), ""), value)
    if isinstance(value, dict):
        return {k: _interpolate(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v) for v in value]
    return value


def merge(base: Any, overrides: Any) -> Any:
    """`overrides` laid over `base`: mappings merge key by key, anything else replaces."""
    if isinstance(base, dict) and isinstance(overrides, dict):
        return {**base, **{k: merge(base.get(k), v) for k, v in overrides.items()}}
    return overrides


def load_settings(project: Path, overrides: dict[str, Any] | None = None) -> Settings:
    """Read PROJECT/config.yaml (with `overrides` laid over it: a rule test's `config:`); raise
    ConfigError with every problem found."""
    path = project / "config.yaml"
    if not path.exists():
        raise ConfigError([Problem(str(path), 1, "no config.yaml here: is this an outreach project? "
                                   "(`outreach init DIR` makes one)")])
    src, problems = load_file(path, "config.yaml")
    if src is None:
        raise ConfigError(problems)
    if src.data is not None and not isinstance(src.data, dict):
        raise ConfigError([*problems, src.problem((), "config.yaml must be a mapping of settings (key: value "
                                                      "lines), not a list or text")])
    data = merge(src.data or {}, overrides) if overrides else src.data
    settings, found = validate(Located(src.file, _interpolate(data), src.lines), Settings)
    if settings is None or problems:  # duplicate keys come back with the data: still an error
        raise ConfigError(sorted(problems + found, key=lambda p: p.line))
    return _resolve(settings, project)


def _resolve(settings: Settings, project: Path) -> Settings:
    """Make a relative SQLite path relative to the project, and make sure a secret key exists."""
    updates: dict[str, Any] = {}
    db = settings.database
    if db.startswith("sqlite:///") and not db.startswith("sqlite:////") and ":memory:" not in db:
        updates["database"] = "sqlite:///" + str((project / db.removeprefix("sqlite:///")).resolve())
    if not settings.server.secret_key:
        updates["server"] = settings.server.model_copy(update={"secret_key": _project_secret(project)})
    return settings.model_copy(update=updates) if updates else settings


def _project_secret(project: Path) -> str:
    """A per-project random key kept beside the database, for signing links and sessions when
    `server.secret_key` is not set (set it from the environment when several hosts serve one project)."""
    path = project / ".outreach-secret"
    if path.exists():
        return path.read_text().strip()
    key = secrets.token_urlsafe(32)
    try:
        path.write_text(key)
        path.chmod(0o600)
    except OSError:
        pass
    return key
