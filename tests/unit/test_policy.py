"""Send windows, holidays and caps: pure functions, table-tested."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from outreach.config import Cap, Holiday, Policy, Window, parse_days, parse_hours
from outreach.policy import Reach, cap_wait, decide, next_open, unreachable
from tests.support import at

WEEKDAYS = Window(days="mon-fri", hours="08:00-18:00")


@pytest.mark.parametrize(("now", "zone", "expected"), [
    ("2026-03-02 10:00", "UTC", "2026-03-02 10:00"),              # Monday, inside
    ("2026-03-02 07:59", "UTC", "2026-03-02 08:00"),              # before opening
    ("2026-03-02 18:00", "UTC", "2026-03-03 08:00"),              # closing time is outside
    ("2026-03-06 19:00", "UTC", "2026-03-09 08:00"),              # Friday evening -> Monday
    ("2026-03-07 12:00", "UTC", "2026-03-09 08:00"),              # Saturday
    ("2026-03-02 10:00", "America/Los_Angeles", "2026-03-02 16:00"),  # 02:00 in LA -> 08:00 PST
    ("2026-03-02 10:00", "Asia/Tokyo", "2026-03-02 10:00"),       # 19:00 Tokyo: closed... see below
])
def test_next_open(now: str, zone: str, expected: str) -> None:
    tz = ZoneInfo(zone)
    if zone == "Asia/Tokyo":  # 19:00 Monday in Tokyo: the window reopens Tuesday 08:00 JST = 23:00 UTC Monday
        expected = "2026-03-02 23:00"
    assert next_open(at(now), tz, WEEKDAYS) == at(expected)


def test_next_open_skips_holidays_and_dst() -> None:
    tz = ZoneInfo("Europe/Berlin")
    holidays = [Holiday(date="2026-03-30"), Holiday(date="2026-03-31", countries=["DE"])]
    # Sunday 29 March is the DST switch; Monday is a holiday everywhere, Tuesday in Germany only
    assert next_open(at("2026-03-28 12:00"), tz, WEEKDAYS, holidays, "DE") == at("2026-04-01 06:00")
    assert next_open(at("2026-03-28 12:00"), tz, WEEKDAYS, holidays, "FR") == at("2026-03-31 06:00")


@pytest.mark.parametrize(("sent", "now", "waits_until"), [
    ([], "2026-03-02 10:00", None),
    ([("email", "2026-03-02 09:00")], "2026-03-02 10:00", "2026-03-03 00:00"),   # day cap of 1
    ([("email", "2026-03-01 09:00")], "2026-03-02 10:00", None),                 # yesterday
    ([("email", "2026-02-26 09:00"), ("sms", "2026-02-27 09:00"), ("email", "2026-03-01 09:00")],
     "2026-03-02 10:00", "2026-03-05 09:00"),                                     # week cap of 3
    ([("sms", "2026-02-27 09:00"), ("sms", "2026-02-28 09:00")], "2026-03-02 10:00", "2026-03-06 09:00"),
])
def test_caps(sent: list[tuple[str, str]], now: str, waits_until: str | None) -> None:
    caps = {"all": Cap(day=1, week=3), "sms": Cap(week=2)}
    channel = "sms" if any(c == "sms" for c, _ in sent) else "email"
    result = cap_wait(at(now), ZoneInfo("UTC"), channel, [(c, at(t)) for c, t in sent], caps)
    assert (result[0] if result else None) == (at(waits_until) if waits_until else None)


def test_day_cap_counts_the_contacts_own_day() -> None:
    tz = ZoneInfo("America/New_York")  # 23:00 UTC Monday is 18:00 Monday in New York
    wait = cap_wait(at("2026-03-03 01:00"), tz, "email", [("email", at("2026-03-02 23:00"))],
                    {"all": Cap(day=1)})
    assert wait is not None and wait[0] == at("2026-03-03 05:00")  # midnight in New York


def test_decide_settles_window_and_cap_together() -> None:
    policy = Policy()
    verdict = decide(at("2026-03-06 10:00"), ZoneInfo("UTC"), "email", [("email", at("2026-03-06 09:00"))], policy)
    assert not verdict.send and verdict.until == at("2026-03-09 08:00")
    assert verdict.reason == "waiting: all cap of 1 a day reached"
    assert decide(at("2026-03-02 10:00"), ZoneInfo("UTC"), "email", [], policy).send


@pytest.mark.parametrize(("reach", "channel", "mode", "why"), [
    (Reach("a@x.io", None, None, None), "email", "opt_out", None),
    (Reach("a@x.io", None, None, None), "email", "opt_in", "no email opt-in"),
    (Reach("a@x.io", None, False, None), "email", "opt_out", "opted out of email"),
    (Reach(None, "+14155550101", None, True), "email", "opt_out", "no email address"),
    (Reach("a@x.io", "+14155550101", None, None), "sms", "opt_out", "no sms opt-in"),
    (Reach("a@x.io", "+14155550101", None, True), "sms", "opt_out", None),
    (Reach("a@x.io", "+14155550101", None, True, frozenset({"sms"})), "sms", "opt_out", "sms suppressed"),
    (Reach("a@x.io", None, True, None, frozenset({"email"})), "meeting", "opt_out", "email suppressed"),
    # declining invites stops invites only; opting in is enough in opt-in mode
    (Reach("a@x.io", None, True, None, frozenset({"meeting"})), "meeting", "opt_out", "meeting invites suppressed"),
    (Reach("a@x.io", None, True, None, frozenset({"meeting"})), "email", "opt_out", None),
    (Reach("a@x.io", None, True, None), "email", "opt_in", None),
    (Reach("a@x.io", None, True, None), "meeting", "opt_in", None),
    (Reach("a@x.io", None, None, True), "sms", "opt_out", "no phone number"),
    # a rep's call needs a number, not SMS consent; a STOP by text does not stop calls
    (Reach(None, "+14155550101", None, None), "call", "opt_in", None),
    (Reach(None, "+14155550101", None, False, frozenset({"sms"})), "call", "opt_out", None),
    (Reach("a@x.io", None, True, True), "call", "opt_out", "no phone number"),
    (Reach(None, "+14155550101", None, None, frozenset({"call"})), "call", "opt_out", "calls suppressed"),
    # a social message needs neither address nor consent: the rep finds the buyer by name
    (Reach(None, None, False, False, frozenset({"email", "sms"})), "social", "opt_in", None),
    (Reach(None, None, None, None, frozenset({"social"})), "social", "opt_out", "social messages suppressed"),
    (Reach("a@x.io", "+14155550101", True, True), "fax", "opt_out", "unknown channel fax"),
])
def test_unreachable(reach: Reach, channel: str, mode: str, why: str | None) -> None:
    assert unreachable(reach, channel, mode) == why


def test_window_parsing() -> None:
    assert parse_days("mon-fri") == frozenset(range(5))
    assert parse_days("fri-mon") == frozenset({4, 5, 6, 0})
    assert parse_hours("08:30-17:00") == (510, 1020)
    with pytest.raises(ValueError, match="start before it ends"):
        parse_hours("18:00-08:00")
    with pytest.raises(ValueError, match="not a list of days"):
        parse_days("weekdays")
