"""Send windows, holidays, caps, consent and suppression: pure functions of the contact, its
history and the clock. The dispatcher asks them right before every send."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from outreach.config import Cap, Holiday, Policy, Window
from outreach.kinds import Channel


@dataclass(frozen=True)
class Reach:
    """How a contact can be reached: addresses, consent, suppressed channels."""

    email: str | None
    phone: str | None
    consent_email: bool | None
    consent_sms: bool | None
    suppressed: frozenset[str] = field(default_factory=frozenset)


def unreachable(reach: Reach, channel: str, email_consent: str = "opt_out") -> str | None:
    """Why `channel` cannot reach the contact now, or None if it can."""
    if channel in (Channel.EMAIL, Channel.MEETING):
        if not reach.email:
            return "no email address"
        if Channel.EMAIL in reach.suppressed:
            return "email suppressed"
        if channel == Channel.MEETING and Channel.MEETING in reach.suppressed:
            return "meeting invites suppressed"
        if reach.consent_email is False:
            return "opted out of email"
        if email_consent == "opt_in" and reach.consent_email is not True:
            return "no email opt-in"
        return None
    if channel == Channel.SMS:
        if not reach.phone:
            return "no phone number"
        if Channel.SMS in reach.suppressed:
            return "sms suppressed"
        if reach.consent_sms is not True:
            return "no sms opt-in"
        return None
    if channel == Channel.CALL:  # a rep's call: a number to dial; SMS consent is about texts, not calls
        if not reach.phone:
            return "no phone number"
        return "calls suppressed" if Channel.CALL in reach.suppressed else None
    if channel == Channel.SOCIAL:  # the rep finds the buyer on a network by name
        return "social messages suppressed" if Channel.SOCIAL in reach.suppressed else None
    return f"unknown channel {channel}"


def is_holiday(day: date, tz_name: str, country: str | None, holidays: Iterable[Holiday]) -> bool:
    for h in holidays:
        if h.date != day:
            continue
        if not h.timezones and not h.countries:
            return True
        if tz_name in h.timezones or (country and country.upper() in {c.upper() for c in h.countries}):
            return True
    return False


def next_open(at: datetime, tz: ZoneInfo, window: Window, holidays: Iterable[Holiday] = (),
              country: str | None = None) -> datetime:
    """The earliest moment at or after `at` inside the window, in the contact's zone, not on a
    holiday. Returns `at` itself when it is already inside. Aware UTC in, aware UTC out."""
    holidays = list(holidays)
    start_min, end_min = window.minutes
    local = at.astimezone(tz)
    tz_name = getattr(tz, "key", str(tz))
    for offset in range(0, 400):
        day = (local + timedelta(days=offset)).date() if offset else local.date()
        if day.weekday() not in window.weekdays or is_holiday(day, tz_name, country, holidays):
            continue
        opens = _local(day, start_min, tz)
        closes = _local(day, end_min, tz)
        candidate = max(at, opens) if offset == 0 else opens
        if candidate < closes:
            return candidate.astimezone(at.tzinfo)
    raise ValueError("the send window never opens (no weekday in it, or a year of holidays)")


def _local(day: date, minutes: int, tz: ZoneInfo) -> datetime:
    if minutes >= 24 * 60:
        return datetime.combine(day + timedelta(days=1), time(0), tz)
    return datetime.combine(day, time(minutes // 60, minutes % 60), tz)


def cap_wait(at: datetime, tz: ZoneInfo, channel: str, sent: Iterable[tuple[str, datetime]],
             caps: dict[str, Cap]) -> tuple[datetime, str] | None:
    """When a touch on `channel` may go given the contact's earlier sends (channel, sent_at), or
    None if it may go now. Day caps count the contact's local calendar day; week caps a rolling 7 days."""
    sent = list(sent)
    local_midnight = datetime.combine(at.astimezone(tz).date(), time(0), tz)
    wait: tuple[datetime, str] | None = None
    for scope in ("all", channel):
        cap = caps.get(scope)
        if cap is None:
            continue
        times = sorted(t for ch, t in sent if scope == "all" or ch == scope)
        if cap.day is not None:
            today = [t for t in times if t >= local_midnight and t <= at]
            if len(today) >= cap.day:
                until = datetime.combine(local_midnight.date() + timedelta(days=1), time(0), tz)
                wait = _later(wait, (until.astimezone(at.tzinfo), f"{scope} cap of {cap.day} a day reached"))
        if cap.week is not None:
            week = [t for t in times if at - timedelta(days=7) < t <= at]
            if len(week) >= cap.week:
                until = week[len(week) - cap.week] + timedelta(days=7)
                wait = _later(wait, (until, f"{scope} cap of {cap.week} a week reached"))
    return wait


def _later(a: tuple[datetime, str] | None, b: tuple[datetime, str]) -> tuple[datetime, str]:
    return b if a is None or b[0] > a[0] else a


@dataclass(frozen=True)
class Verdict:
    """What the policy says of one touch now: send it, wait until `until`, or drop it."""

    send: bool
    until: datetime | None = None
    reason: str | None = None


def decide(at: datetime, tz: ZoneInfo, channel: str, sent: list[tuple[str, datetime]], policy: Policy,
           country: str | None = None) -> Verdict:
    """Window, holiday and cap for one touch at `at` (consent is checked by `unreachable`)."""
    window = policy.send_windows.get(channel)  # type: ignore[call-overload]  # keyed by the config's channel names
    moment, first_reason = at, None
    for _ in range(50):  # a cap wait may land outside the window and the reverse: settle both
        before = moment
        if window is not None:
            opens = next_open(moment, tz, window, policy.holidays, country)
            if opens > moment:
                holiday = is_holiday(moment.astimezone(tz).date(), getattr(tz, "key", ""), country,
                                     policy.holidays)
                first_reason = first_reason or ("holiday" if holiday else "outside the send window")
                moment = opens
        capped = cap_wait(moment, tz, channel, sent, policy.caps)  # type: ignore[arg-type]  # caps keyed by Literal names
        if capped is not None:
            first_reason = first_reason or capped[1]
            moment = capped[0]
        if moment == before:
            break
    if moment <= at:
        return Verdict(True)
    return Verdict(False, moment, f"waiting: {first_reason}")
