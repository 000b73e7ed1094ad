"""config.yaml -> typed settings. `${NAME}` is replaced from the environment (unset: an error);
OUTREACH_<KEY> variables override the file; unknown keys are errors."""

from __future__ import annotations

import base64
import binascii
import difflib
import functools
import ipaddress
import json
import math
import os
import re
import secrets
from collections.abc import Mapping
from datetime import date, timedelta
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, Union, cast, get_args, get_origin
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from outreach.durations import parse_duration
from outreach.errors import ConfigError, Problem
from outreach.kinds import OutboundEvent
from outreach.located_yaml import Loc, Located, load_file, path_text, validate

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


@functools.lru_cache(maxsize=256)  # pure, and asked for each touch the dispatcher decides on
def parse_days(text: str) -> frozenset[int]:
    out: set[int] = set()
    for part in str(text).lower().replace(" ", "").split(","):
        ends = part.split("-")
        if not all(e in DAYS for e in ends) or len(ends) > 2:
            raise ValueError(f"'{text}' is not a list of days (write mon-fri or mon,wed,fri)")
        a, b = DAYS.index(ends[0]), DAYS.index(ends[-1])
        out.update(range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)])
    return frozenset(out)


@functools.lru_cache(maxsize=256)
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
    send_windows: dict[Literal["email", "sms", "meeting", "call", "social"], Window] = {
        "email": Window(days="mon-fri", hours="08:00-18:00"),
        "sms": Window(days="mon-fri", hours="09:00-19:00"),
        "meeting": Window(days="mon-fri", hours="09:00-17:00"),
        # tasks (docs/RULES.md, "Tasks"): when a rep's call or social message is due, in the buyer's zone
        "call": Window(days="mon-fri", hours="09:00-17:00"),
        "social": Window(days="mon-fri", hours="08:00-18:00"),
    }
    caps: dict[Literal["all", "email", "sms", "meeting", "call", "social"], Cap] = {
        "all": Cap(day=1, week=3), "sms": Cap(week=2)}
    approval_expires_after: Duration = timedelta(days=3)
    holidays: list[Annotated[Holiday, BeforeValidator(_holiday)]] = []
    email_consent: Literal["opt_out", "opt_in"] = "opt_out"
    # the share of contacts (chosen by a hash of their id) that get no automated touch at all: the
    # global control group that measures the whole program's lift over doing nothing
    holdout: float = Field(default=0.0, ge=0, le=0.5)


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
    # proxies whose X-Forwarded-For is believed (addresses or networks); nobody else's is
    trusted_proxies: list[str] = []

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, v: list[str]) -> list[str]:
        for item in v:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"'{item}' is not an IP address or network (like 10.0.0.0/8)") from None
        return v


class Dispatch(Strict):
    batch_size: int = Field(default=200, ge=1)
    concurrency: int = Field(default=8, ge=1)
    max_attempts: int = Field(default=5, ge=1)
    retry_base: Duration = timedelta(seconds=30)
    poll_every: Duration = timedelta(seconds=5)
    plan_every: Duration = timedelta(minutes=1)
    # a touch `sending` for longer than this was left by a worker that died (never re-sent blindly)
    sending_lease: Duration = timedelta(minutes=10)
    # a process whose heartbeat is older than this is taken for dead and its `sending` touches settled;
    # it beats every sixth of it, so a few missed beats (a stalled database) do not make it look dead
    worker_timeout: Duration = timedelta(seconds=30)

    @field_validator("worker_timeout")
    @classmethod
    def _timeout(cls, v: timedelta) -> timedelta:
        if v < timedelta(seconds=3):
            raise ValueError("at least 3s: a worker beats every sixth of it, and a beat is a database write")
        if v > timedelta(minutes=10):
            raise ValueError("at most 10m: a dead worker's touches wait this long before they are settled")
        return v


class ReportSettings(Strict):
    """The dashboards' and `outreach report`'s judgement calls."""

    # a rate from fewer cases than this is shown as "too few to read" (its interval is too wide to act on)
    min_cases: int = Field(default=20, ge=1)
    # a touch counts as followed by a stage advance when the contact moves on within this long after it
    advance_within: Duration = timedelta(days=14)


class OutboundWebhook(Strict):
    """A receiver of outbound webhooks (Standard Webhooks): where, the `whsec_` secret that signs, and
    the event types it gets (all of them when `events` is left out)."""

    url: str
    secret: str
    events: list[str] = [e.value for e in OutboundEvent]

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"'{v}' is not an http(s) URL")
        return v

    @field_validator("secret")
    @classmethod
    def _secret(cls, v: str) -> str:
        if not v.startswith("whsec_"):
            raise ValueError("the secret starts with whsec_, then base64 of 24 to 64 random bytes (make one with "
                             "`python -c \"import base64, os; print('whsec_' + base64.b64encode(os.urandom(32))"
                             ".decode())\"`)")
        try:
            key = base64.b64decode(v.removeprefix("whsec_"), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("the part after whsec_ is not base64") from None
        if not 24 <= len(key) <= 64:
            raise ValueError(f"the key after whsec_ is {len(key)} bytes: give 24 to 64 (32 is usual)")
        return v

    @field_validator("events")
    @classmethod
    def _events(cls, v: list[str]) -> list[str]:
        known = [e.value for e in OutboundEvent]
        for name in v:
            if name not in known:
                raise ValueError(f"unknown event '{name}' (one of: {', '.join(known)})")
        if not v:
            raise ValueError("events is empty: name at least one (or leave it out for all)")
        return v


class Retention(Strict):
    """How long what people wrote and what providers sent is kept (left out: for ever). The prune job
    empties older message bodies and evidence payloads and deletes older unattributed events and
    outbound webhook events; the rows the dashboards count stay."""

    message_bodies: Duration | None = None
    provider_payloads: Duration | None = None

    @field_validator("message_bodies", "provider_payloads")
    @classmethod
    def _positive(cls, v: timedelta | None) -> timedelta | None:
        if v is not None and v < timedelta(days=1):
            raise ValueError("keep at least a day (1d): replies and retries need their payloads for a while")
        return v


class Tracking(Strict):
    """Email links through the engine (`/c/{token}`) and page views from the marketer's site (`/t.js`).
    `pages` maps a path (shell-style pattern) to the evidence a view of it records; other pages are
    not recorded. A link works for `link_expires`; a visitor it identified stays known for
    `visitor_expires`."""

    pages: dict[str, str] = {"/pricing*": "pricing.viewed"}
    link_expires: Duration = timedelta(days=90)
    visitor_expires: Duration = timedelta(days=30)

    @field_validator("pages")
    @classmethod
    def _pages(cls, v: dict[str, str]) -> dict[str, str]:
        for pattern, event in v.items():
            if not pattern.startswith("/"):
                raise ValueError(f"'{pattern}' is a path on the site: it starts with /")
            if not re.match(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$", event):
                raise ValueError(f"'{event}' is not an evidence name like pricing.viewed")
        return v


class Stripe(Strict):
    webhook_secret: str = ""  # whsec_... from the Stripe dashboard's webhook endpoint


class Shopify(Strict):
    webhook_secret: str = ""  # the app's client secret (signs X-Shopify-Hmac-Sha256)


class CalendarLink(Strict):
    """A rep's CalDAV calendar (Google, iCloud, Fastmail, Nextcloud; Exchange through a bridge): the
    engine reads its busy times and writes the meetings it proposes there."""

    url: str  # the CalDAV server or the calendar's own URL
    username: str = ""
    password: str = ""
    calendar: str = ""  # the calendar's name under the account; empty: the URL is the calendar, else the first
    timeout: float = 10.0


class Settings(Strict):
    database: str = "sqlite:///outreach.db"
    # a read replica of `database` for the read-only analytics (dashboards, /api/report, `outreach report`,
    # the targets page); empty: they read `database`. Everything that writes stays on `database`.
    database_replica: str = ""
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
    report: ReportSettings = ReportSettings()
    outbound_webhooks: list[OutboundWebhook] = []
    retention: Retention = Retention()
    tracking: Tracking = Tracking()
    stripe: Stripe = Stripe()
    shopify: Shopify = Shopify()
    calendars: dict[str, CalendarLink] = {}  # a rep's email -> their connected calendar

    @field_validator("calendars")
    @classmethod
    def _rep_emails(cls, v: dict[str, CalendarLink]) -> dict[str, CalendarLink]:
        return {k.strip().lower(): link for k, link in v.items()}

    @field_validator("database_replica")
    @classmethod
    def _replica(cls, v: str) -> str:
        if not v.strip():
            return ""
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            make_url(v)
        except ArgumentError:
            raise ValueError(f"'{v}' is not a database URL (like postgresql+psycopg://reader@replica.internal/"
                             "outreach), or leave it empty to read from database") from None
        return v

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone '{v}' (use an IANA name like Europe/Berlin)") from None
        return v


class _Unset(str):
    """A value that named an environment variable which is not set (read as empty meanwhile). Kept
    as a marker until every source is merged: a value that the environment or an argument replaces
    is no error."""

    names: tuple[str, ...] = ()


def _interpolate(value: Any, environ: Mapping[str, str]) -> Any:
    """`${NAME}` replaced from `environ`, everywhere in the data; a set-but-empty variable is a value
    like any other, an unset one leaves an _Unset marker."""
    if isinstance(value, str):
        missing = [m.group(1) for m in _ENV.finditer(value) if m.group(1) not in environ]
        text = _ENV.sub(lambda m: environ.get(m.group(1), ""), value)
        if not missing:
            return text
        marker = _Unset(text)
        marker.names = tuple(dict.fromkeys(missing))
        return marker
    if isinstance(value, dict):
        return {k: _interpolate(v, environ) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, environ) for v in value]
    return value


def _unset(value: Any, loc: Loc = ()) -> list[tuple[Loc, _Unset]]:
    """Every _Unset marker left in the data, with its key path."""
    if isinstance(value, _Unset):
        return [(loc, value)]
    if isinstance(value, dict):
        return [found for k, v in value.items() for found in _unset(v, (*loc, k))]
    if isinstance(value, list):
        return [found for i, v in enumerate(value) for found in _unset(v, (*loc, i))]
    return []


def _plain(value: Any) -> Any:
    if isinstance(value, str):
        return str(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def merge(base: Any, overrides: Any) -> Any:
    """`overrides` laid over `base`: mappings merge key by key, anything else replaces."""
    if isinstance(base, dict) and isinstance(overrides, dict):
        return {**base, **{k: merge(base.get(k), v) for k, v in overrides.items()}}
    return overrides


# --- OUTREACH_<KEY> environment variables ---------------------------------------------------------

ENV_PREFIX = "OUTREACH_"
# OUTREACH_ variables that are not settings: the project folder and the password of the CLI, and the
# test suite's switches. Never read as config overrides.
NOT_SETTINGS = frozenset({"PROJECT", "PASSWORD", "TEST_PG", "REQUIRE_PG", "REQUIRE_BROWSER"})
# a provider's section only has to be complete (its ${NAME}s set) when that provider is chosen
_PROVIDER_SECTIONS = {"sendgrid": ("email", "sendgrid"), "smtp": ("email", "smtp"), "twilio": ("sms", "twilio")}


def env_name(loc: Loc) -> str:
    """`("server", "public_url")` -> `OUTREACH_SERVER__PUBLIC_URL`."""
    return ENV_PREFIX + "__".join(str(part) for part in loc).upper()


def _unwrap(ann: Any) -> Any:
    """The type inside Annotated[...] and Optional[...]."""
    while True:
        origin, args = get_origin(ann), get_args(ann)
        rest = [a for a in args if a is not type(None)]
        if origin is Annotated:
            ann = args[0]
        elif origin in (Union, UnionType) and len(rest) == 1:
            ann = rest[0]
        else:
            return ann


def _closest(word: str, choices: list[str]) -> str | None:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return close[0] if close else None


def _keys_below(ann: Any) -> list[str] | None:
    """The keys a mapping of type `ann` may have (None: any key, [] : not a mapping)."""
    ann = _unwrap(ann)
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return list(ann.model_fields)
    if get_origin(ann) is dict:
        key = _unwrap(get_args(ann)[0])
        return [str(v) for v in get_args(key)] if get_origin(key) is Literal else None
    return []


def _below(ann: Any, key: str) -> Any:
    ann = _unwrap(ann)
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return ann.model_fields[key].annotation
    return get_args(ann)[1]


def _is_structured(ann: Any) -> bool:
    ann = _unwrap(ann)
    return (isinstance(ann, type) and issubclass(ann, BaseModel)) or get_origin(ann) in (dict, list)


def _resolve_env_name(parts: list[str]) -> tuple[Loc, Any] | tuple[Loc, str]:
    """The key path and type named by the parts of an OUTREACH_A__B name, or the part of the path
    that exists and why the rest does not."""
    ann: Any = Settings
    loc: Loc = ()
    for part in parts:
        keys = _keys_below(ann)
        if keys is not None and part not in keys:
            if not keys:
                return loc, f"{path_text(loc)} has no settings below it"
            close = _closest(part, keys)
            hint = f" (did you mean {env_name((*loc, close))}?)" if close else ""
            return loc, f"{path_text((*loc, part))} is not a setting{hint}"
        ann = _below(ann, part)
        loc = (*loc, part)
    return loc, ann


def _misspelt(name: str) -> str | None:
    """For an OUTREACH_ name that is not a setting: why it looks like a meant one, or None (ignored)."""
    top = list(Settings.model_fields)
    lowered = name.lower()
    for key in top:  # OUTREACH_SERVER_PORT: one underscore where nesting takes two
        if lowered.startswith(key + "_") and not lowered.startswith(key + "__"):
            fixed = key.upper() + "__" + name[len(key) + 1:]
            _, found = _resolve_env_name(fixed.lower().split("__"))
            hint = "" if isinstance(found, str) else f" (did you mean {ENV_PREFIX}{fixed}?)"
            return f"{ENV_PREFIX}{name} is not a setting{hint}; nested keys are joined with two underscores"
    if "__" in name:  # OUTREACH_PROVIDER__EMAIL: meant as a nested key
        first, rest = lowered.split("__", 1)
        close = _closest(first, top)
        hint = f" (did you mean {ENV_PREFIX}{close.upper()}__{rest.upper()}?)" if close else ""
        return f"{ENV_PREFIX}{name} is not a setting{hint}"
    return None


def env_overrides(environ: Mapping[str, str]) -> tuple[dict[Loc, tuple[str, Any]], list[tuple[Loc, str]]]:
    """Settings given as OUTREACH_<KEY> variables (`__` between nested keys, any case): key path ->
    (variable, value); and for variables that look meant as settings but are not, the nearest
    setting and a message.
    A mapping or a list is written as JSON; anything else is taken as text, as a YAML value would be
    converted by validation (`OUTREACH_SERVER__PORT=9000`)."""
    found: dict[Loc, tuple[str, Any]] = {}
    wrong: list[tuple[Loc, str]] = []
    for var in sorted(environ):
        if not var.upper().startswith(ENV_PREFIX):
            continue
        name = var[len(ENV_PREFIX):]
        if name.upper() in NOT_SETTINGS or not name:
            continue
        parts = name.lower().split("__")
        if parts[0] not in Settings.model_fields:
            why = _misspelt(name)
            if why:
                wrong.append(((), why))
            continue
        loc, ann = _resolve_env_name(parts)
        if isinstance(ann, str):
            wrong.append((loc, f"{var}: {ann}"))
            continue
        value: Any = environ[var]
        if _is_structured(ann):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                wrong.append((loc, f"{var}: {path_text(loc)} is a mapping or list, written as JSON here "
                                   f"({exc.msg} at character {exc.pos})"))
                continue
        found[loc] = (var, value)
    return found, wrong


def _nest(loc: Loc, value: Any) -> dict[Any, Any]:
    for part in reversed(loc):
        value = {part: value}
    return cast(dict[Any, Any], value)


class _Sources(Located):
    """config.yaml as loaded, plus which key paths the environment set: a problem with one of those
    points at the setting's place in config.yaml (or its section's) and names the variable."""

    def __init__(self, src: Located, data: Any, env: dict[Loc, str]) -> None:
        super().__init__(src.file, data, src.lines)
        self.env = env

    def problem(self, loc: Loc, message: str, warning: bool = False) -> Problem:
        loc = tuple(loc)
        var = next((v for at, v in self.env.items() if loc[:len(at)] == at), None)
        if var:
            message += f" (from {var} in the environment)"
        return super().problem(loc, message, warning)


def load_settings(project: Path, overrides: dict[str, Any] | None = None,
                  environ: Mapping[str, str] | None = None) -> Settings:
    """Read PROJECT/config.yaml and raise ConfigError with every problem found. Sources, the later
    winning: the file (its `${NAME}`s from the environment), OUTREACH_<KEY> environment variables,
    then `overrides` (arguments, e.g. a rule test's `config:`; taken as given, no `${NAME}`)."""
    environ = os.environ if environ is None else environ
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
    data = _interpolate(src.data or {}, environ)
    from_env, wrong = env_overrides(environ)
    problems += [src.problem(loc, message) for loc, message in wrong]
    for loc, (_, value) in from_env.items():
        data = merge(data, _nest(loc, value))
    if overrides:
        data = merge(data, overrides)
    env = {loc: var for loc, (var, _) in from_env.items() if not _covers(overrides or {}, loc)}
    located = _Sources(src, _plain(data), env)
    unset = _unset_problems(located, data)
    settings, found = validate(located, Settings)
    # an unset variable reads as empty, which may not validate either: one problem is enough
    found = [p for p in found if p.line not in {u.line for u in unset}]
    if settings is not None:
        found += _provider_problems(located, settings, skip={p for p, _ in _unset(data)})
        found += _secret_key_problems(located, settings)
    if settings is None or problems or found or unset:  # duplicate keys come back with the data: still an error
        raise ConfigError(sorted(problems + unset + found, key=lambda p: p.line))
    return _resolve(settings, project)


def _covers(tree: Any, loc: Loc) -> bool:
    """Whether merging `tree` replaces the value at `loc`."""
    for part in loc:
        if not isinstance(tree, dict):
            return True
        if part not in tree:
            return False
        tree = tree[part]
    return True


def _chosen(data: Any, kind: str) -> Any:
    providers = data.get("providers") if isinstance(data, dict) else None
    return providers.get(kind, "outbox") if isinstance(providers, dict) else "outbox"


def _unset_problems(src: Located, data: Any) -> list[Problem]:
    """An unset `${NAME}` is an error, except in the section of a provider that is not chosen (the
    example config names SendGrid's and Twilio's variables for a project that sends with `outbox`)."""
    out = []
    for loc, marker in _unset(data):
        section = _PROVIDER_SECTIONS.get(str(loc[0]))
        if section and _chosen(data, section[0]) != section[1]:
            continue
        names = ", ".join("${" + n + "}" for n in marker.names)
        verb = "is" if len(marker.names) == 1 else "are"
        out.append(src.problem(loc, f"{path_text(loc)}: {names} {verb} not set in the environment"))
    return out


_CREDENTIALS = {("email", "sendgrid"): ("sendgrid", ["api_key"]),
                ("sms", "twilio"): ("twilio", ["account_sid", "auth_token"])}


def _provider_problems(src: Located, settings: Settings, skip: set[Loc]) -> list[Problem]:
    """A provider chosen without its credentials: the problem points at the choice. A credential
    whose `${NAME}` is unset has been reported already (`skip`)."""
    out = []
    for (kind, name), (section, keys) in _CREDENTIALS.items():
        if getattr(settings.providers, kind) != name:
            continue
        values = getattr(settings, section)
        missing = [k for k in keys if not str(getattr(values, k)).strip() and (section, k) not in skip]
        if missing:
            paths = " and ".join(f"{section}.{k}" for k in missing)
            lines = " and ".join(f"`{k}: ${{{section.upper()}_{k.upper()}}}`" for k in missing)
            variables = " and ".join(f"{section.upper()}_{k.upper()}" for k in missing)
            out.append(src.problem(("providers", kind), (
                f"providers.{kind} is {name}, but {paths} {'is' if len(missing) == 1 else 'are'} empty "
                f"(write {lines} under {section}: and set {variables} in the environment)")))
    return out


_PLACEHOLDERS = ("change", "secret", "example", "placeholder", "replace", "password", "default", "xxxx",
                 "todo", "insert", "your", "dummy", "test")


def weak_secret(key: str) -> str | None:
    """Why `key` is too weak to sign sessions and links on a public address, or None."""
    if len(key) < 32:
        return f"is {len(key)} characters long: it needs at least 32"
    lowered = key.lower()
    word = next((w for w in _PLACEHOLDERS if w in lowered), None)
    if word:
        return f"looks like a placeholder (it contains '{word}')"
    counts = {c: key.count(c) for c in set(key)}
    bits = -sum(n / len(key) * math.log2(n / len(key)) for n in counts.values()) * len(key)
    if len(counts) < 12 or bits < 128:
        return f"has too little randomness (about {bits:.0f} bits)"
    return None


def _secret_key_problems(src: Located, settings: Settings) -> list[Problem]:
    """A weak server.secret_key is refused where the app is reachable from elsewhere (public_url not a
    loopback address): anybody who guesses it can forge a session. An empty one is generated."""
    key = settings.server.secret_key
    host = urlsplit(settings.server.public_url).hostname or ""
    if not key or _loopback(host):
        return []
    why = weak_secret(key)
    if why is None:
        return []
    return [src.problem(("server", "secret_key"), f"server.secret_key {why}, and server.public_url "
                        f"({settings.server.public_url}) is not this machine: make one with `python -c "
                        "\"import secrets; print(secrets.token_urlsafe(32))\"` and set it from the environment "
                        "(or leave it out: a random one is generated in .outreach-secret)")]


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def port_warning(settings: Settings, port: int | None) -> str | None:
    """Why `outreach run --port PORT` may not be reachable where providers call (server.public_url),
    or None. A public_url without a port whose host is not this machine is taken to be a proxy in
    front of the engine (https://crm.example.com -> 127.0.0.1:8000): nothing to compare then."""
    if port is None:
        return None
    url = urlsplit(settings.server.public_url)
    try:
        public = url.port
    except ValueError:
        return None
    if public is None:
        if url.hostname not in _LOCAL_HOSTS:
            return None
        public = 443 if url.scheme == "https" else 80
    if public == port:
        return None
    return (f"--port {port} differs from the port of server.public_url ({settings.server.public_url}, port "
            f"{public}): webhooks and links use public_url, so they will not reach this process unless "
            f"something forwards port {public} to {port}")


_LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "0.0.0.0"}


def _resolve(settings: Settings, project: Path) -> Settings:
    """Make a relative SQLite path relative to the project, and make sure a secret key exists."""
    updates: dict[str, Any] = {}
    for key in ("database", "database_replica"):
        db = getattr(settings, key)
        if db.startswith("sqlite:///") and not db.startswith("sqlite:////") and ":memory:" not in db:
            updates[key] = "sqlite:///" + str((project / db.removeprefix("sqlite:///")).resolve())
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
    try:  # created readable by the owner only, never world-readable for a moment
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(key)
    except FileExistsError:  # another process made it first: use theirs
        return path.read_text().strip()
    except OSError:
        pass
    return key

