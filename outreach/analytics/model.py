"""The report's shape (SPEC section 11, `outreach report --json`) and the filters every widget takes."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta

from typing_extensions import TypedDict  # pydantic (the API) needs it on Python 3.11

from outreach.errors import InvalidInput
from outreach.ruleset import Ruleset

MAX_DAYS = 3 * 366  # history is one row per day and stage: a bound keeps a typo from asking for centuries
DEFAULT_DAYS = 30


@dataclass(frozen=True)
class Filters:
    """Which contacts and which days a report covers: `since` and `until` are whole UTC days, both
    included; `owner` narrows to one rep's contacts (None: everybody's)."""

    since: date
    until: date
    owner: str | None = None
    stage: str | None = None  # only the contacts at this stage now
    playbook: str | None = None  # a rule as touches name it ("playbook:aware", "trigger:x"): its touches only
    attrs: tuple[tuple[str, str], ...] = ()  # (attribute, value): contacts whose attribute has that value

    @property
    def narrowed(self) -> bool:
        """Narrower than an owner: the daily snapshots (kept per owner and stage) cannot answer it."""
        return bool(self.stage or self.playbook or self.attrs)

    def query(self) -> dict[str, str]:
        """The filters beyond the period and the owner, as a query string's parameters."""
        out = {"stage": self.stage} if self.stage else {}
        if self.playbook:
            out["playbook"] = self.playbook
        out.update({f"attr.{k}": v for k, v in self.attrs})
        return out

    def described(self) -> str:
        """The filters in words, for a page's or a terminal's heading."""
        parts = [f"now at {self.stage}"] if self.stage else []
        parts += [f"touched by {self.playbook}"] if self.playbook else []
        parts += [f"{k} = {v}" for k, v in self.attrs]
        return ", ".join(parts)

    @property
    def start(self) -> datetime:
        return datetime.combine(self.since, datetime.min.time(), UTC)

    @property
    def end(self) -> datetime:
        """The first instant after the period (exclusive)."""
        return datetime.combine(self.until + timedelta(days=1), datetime.min.time(), UTC)

    def days(self) -> list[date]:
        return [self.since + timedelta(days=i) for i in range((self.until - self.since).days + 1)]


def parse_day(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(f"{option} '{text}' is not a date: use YYYY-MM-DD (a UTC day), like 2026-11-01") from None


def period(since: str | None, until: str | None, today: date) -> tuple[date, date]:
    """The days a report covers from its options: until defaults to today, since to 30 days before it."""
    end = parse_day(until, "--until") if until else today
    start = parse_day(since, "--since") if since else end - timedelta(days=DEFAULT_DAYS - 1)
    if start > end:
        raise InvalidInput(f"--since {start} is after --until {end}: the period would be empty")
    if (end - start).days + 1 > MAX_DAYS:
        raise InvalidInput(f"--since {start} to --until {end} is {(end - start).days + 1} days; "
                           f"a report covers at most {MAX_DAYS}")
    return start, end


ATTR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


def parse_attr(text: str, option: str = "--attr") -> tuple[str, str]:
    """'industry=software' -> ('industry', 'software'): an attribute of the contact, as imported."""
    name, eq, value = text.partition("=")
    name = name.strip()
    if name.startswith("attr."):
        name = name[5:]
    if not eq or not ATTR_NAME.match(name) or not value.strip():
        raise InvalidInput(f"{option} '{text}' is not NAME=VALUE (like industry=software; the name in letters, "
                           "digits and _)")
    return name, value.strip()


def narrowing(f: Filters, rules: Ruleset, stage: str | None, playbook: str | None,
              attrs: list[tuple[str, str]]) -> Filters:
    """The filters narrowed to a stage, a playbook and attributes, checked: a stage or playbook the rules
    do not name is an error."""
    stage = (stage or "").strip() or None
    if stage is not None and stage not in rules.stage_ids:
        raise InvalidInput(f"stage '{stage}': the rules name no such stage (they have {', '.join(rules.stage_ids)})")
    rule = (playbook or "").strip() or None
    if rule is not None:
        if ":" not in rule:
            rule = f"playbook:{rule}"
        kind, _, name = rule.partition(":")
        known = (kind == "playbook" and name in rules.playbooks) or (
            kind == "trigger" and any(t.id == name for t in rules.triggers))
        if not known:
            raise InvalidInput(f"playbook '{playbook}': the rules have no such playbook or trigger "
                               "(a stage's playbook by its stage, a trigger as trigger:NAME)")
    return replace(f, stage=stage, playbook=rule, attrs=tuple(sorted(dict(attrs).items())))


class Period(TypedDict):
    since: str
    until: str


class FunnelRow(TypedDict):
    stage: str
    now: int  # contacts at this stage at the end of the period
    reached: int  # contacts at this stage or a later one then


# "from" is a keyword: this row takes the functional TypedDict form
ConversionRow = TypedDict("ConversionRow", {
    "from": str, "to": str, "entered": int, "advanced": int, "rate": float, "low": float, "high": float})


class VelocityRow(TypedDict):
    stage: str
    n: int
    median_days: float | None
    p80_days: float | None


class StepRow(TypedDict):
    rule: str
    step: str
    sent: int
    responses: int
    advanced: int
    opt_outs: int
    expired: int


class ChannelRow(TypedDict):
    interaction: str
    channel: str
    sent: int
    responses: int
    rate: float
    low: float
    high: float


class HistoryRow(TypedDict):
    date: str
    stage: str
    count: int


class QueueRow(TypedDict):
    owner: str | None
    waiting: int
    expired: int


class DeliverabilityRow(TypedDict):
    """Not part of `report --json` (SPEC section 11 fixes that shape): the dashboard's and the page's."""

    week: str  # the Monday (UTC) the week starts on
    channel: str
    delivered: int
    bounced: int
    complained: int
    unsubscribed: int
    opted_out: int


class Report(TypedDict):
    period: Period
    funnel: list[FunnelRow]
    conversion: list[ConversionRow]
    velocity: list[VelocityRow]
    steps: list[StepRow]
    channels: list[ChannelRow]
    history: list[HistoryRow]
    queue: list[QueueRow]
