"""What `decide` tells the rep about a held touch (the queue shows "waiting: <reason>" as it is): a
window, a holiday, a cap, which of two caps, and a window that never opens."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

import pytest

from outreach.config import Cap, Holiday, Policy, Window
from outreach.policy import Verdict, cap_wait, decide, is_holiday, next_open
from tests.support import at

UTC_TZ = ZoneInfo("UTC")
WEEKDAYS = Window(days="mon-fri", hours="08:00-18:00")


def policy(**kw: object) -> Policy:
    return Policy(send_windows={"email": WEEKDAYS, "sms": WEEKDAYS}, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(("now", "sent", "kw", "verdict"), [
    ("2026-03-02 10:00", [], {}, Verdict(True)),
    ("2026-03-07 10:00", [], {}, Verdict(False, at("2026-03-09 08:00"), "waiting: outside the send window")),
    ("2026-03-02 10:00", [], {"holidays": [Holiday(date=date(2026, 3, 2))]},
     Verdict(False, at("2026-03-03 08:00"), "waiting: holiday")),
    ("2026-03-02 10:00", [("email", "2026-03-02 09:00")], {"caps": {"all": Cap(day=1)}},
     Verdict(False, at("2026-03-03 08:00"), "waiting: all cap of 1 a day reached")),
    # both caps end at midnight: the first one named (all) is the reason
    ("2026-03-02 10:00", [("email", "2026-03-02 09:00")], {"caps": {"all": Cap(day=1), "email": Cap(day=1)}},
     Verdict(False, at("2026-03-03 08:00"), "waiting: all cap of 1 a day reached")),
    # the channel's cap ends later than the all-channel one: the later wait and its reason
    ("2026-03-02 10:00", [("email", "2026-02-26 10:00"), ("email", "2026-03-02 09:00")],
     {"caps": {"all": Cap(day=1), "email": Cap(week=2)}},
     Verdict(False, at("2026-03-05 10:00"), "waiting: email cap of 2 a week reached")),
    # the week frees a slot at 10:30 but the day cap holds until midnight: the later wait and its reason
    ("2026-03-02 10:00", [("email", "2026-02-23 10:30"), ("email", "2026-03-02 09:00")],
     {"caps": {"all": Cap(day=1, week=2)}},
     Verdict(False, at("2026-03-03 08:00"), "waiting: all cap of 1 a day reached")),
    # held first by the window, then by a cap: the reason is what held it first
    ("2026-03-07 10:00", [("email", "2026-03-06 09:00"), ("email", "2026-03-05 09:00")],
     {"caps": {"email": Cap(week=2)}},
     Verdict(False, at("2026-03-12 09:00"), "waiting: outside the send window")),
    # another channel's sends do not count against this channel's cap
    ("2026-03-02 10:00", [("sms", "2026-03-02 09:00")], {"caps": {"email": Cap(day=1)}}, Verdict(True)),
])
def test_what_holds_a_touch_and_until_when(now: str, sent: list[tuple[str, str]], kw: dict[str, object],
                                           verdict: Verdict) -> None:
    assert decide(at(now), UTC_TZ, "email", [(c, at(t)) for c, t in sent], policy(**kw)) == verdict


def test_a_channel_without_a_window_is_held_only_by_caps() -> None:
    p = Policy(send_windows={"sms": WEEKDAYS}, caps={"all": Cap(day=1)})  # type: ignore[arg-type]
    assert decide(at("2026-03-07 10:00"), UTC_TZ, "email", [], p) == Verdict(True)  # a Saturday
    assert decide(at("2026-03-07 10:00"), UTC_TZ, "email", [("sms", at("2026-03-07 09:00"))], p) == \
        Verdict(False, at("2026-03-08 00:00"), "waiting: all cap of 1 a day reached")


def test_a_holiday_in_the_contacts_zone_only() -> None:
    tokyo = ZoneInfo("Asia/Tokyo")
    p = policy(holidays=[Holiday(date=date(2026, 3, 3), timezones=["Asia/Tokyo"])])
    tuesday_morning_tokyo = at("2026-03-03 01:00")  # 10:00 in Tokyo
    assert decide(tuesday_morning_tokyo, tokyo, "email", [], p) == \
        Verdict(False, at("2026-03-03 23:00"), "waiting: holiday")  # Wednesday 08:00 in Tokyo
    assert decide(at("2026-03-03 10:00"), UTC_TZ, "email", [], p) == Verdict(True)
    # 08:45 on Tuesday in Tokyo is still Monday in UTC: the holiday is looked up on Tokyo's date
    assert decide(at("2026-03-02 23:45"), tokyo, "email", [], p) == \
        Verdict(False, at("2026-03-03 23:00"), "waiting: holiday")


@pytest.mark.parametrize(("country", "verdict"), [
    ("DE", Verdict(False, at("2026-03-03 07:00"), "waiting: holiday")),  # Tuesday 08:00 in Berlin
    ("de", Verdict(False, at("2026-03-03 07:00"), "waiting: holiday")),
    ("FR", Verdict(True)),
    (None, Verdict(True)),
])
def test_a_holiday_in_the_contacts_country_only(country: str | None, verdict: Verdict) -> None:
    p = policy(holidays=[Holiday(date=date(2026, 3, 2), countries=["DE"])])
    assert decide(at("2026-03-02 10:00"), ZoneInfo("Europe/Berlin"), "email", [], p, country) == verdict


@pytest.mark.parametrize(("holiday_countries", "country", "off"), [
    (["DE"], "DE", True), (["DE"], "de", True), (["de"], "DE", True), (["DE"], "FR", False),
    (["DE"], None, False), ([], None, True), ([], "FR", True),
])
def test_country_holidays_match_whatever_the_case(holiday_countries: list[str], country: str | None,
                                                   off: bool) -> None:
    h = Holiday(date=date(2026, 3, 2), countries=holiday_countries)
    assert is_holiday(date(2026, 3, 2), "Europe/Berlin", country, [h]) is off
    assert is_holiday(date(2026, 3, 3), "Europe/Berlin", country, [h]) is False


def test_a_zone_holiday_and_a_country_holiday_on_one_day() -> None:
    hs = [Holiday(date=date(2026, 3, 2), timezones=["Asia/Tokyo"]), Holiday(date=date(2026, 3, 2), countries=["DE"])]
    assert is_holiday(date(2026, 3, 2), "Europe/Berlin", "DE", hs)
    assert is_holiday(date(2026, 3, 2), "Asia/Tokyo", None, hs)
    assert not is_holiday(date(2026, 3, 2), "Europe/Paris", "FR", hs)


def test_a_window_that_never_opens_says_so() -> None:
    every_day_off = [Holiday(date=date(2026, 3, 2 + i)) for i in range(5)]
    only_monday = Window(days="mon", hours="08:00-18:00")
    with pytest.raises(ValueError, match=r"^the send window never opens \(no weekday in it, or a year of holidays\)$"):
        next_open(at("2026-03-02 10:00"), UTC_TZ, only_monday,
                  [Holiday(date=date.fromordinal(date(2026, 3, 2).toordinal() + 7 * w)) for w in range(60)])
    assert next_open(at("2026-03-02 10:00"), UTC_TZ, WEEKDAYS, every_day_off) == at("2026-03-09 08:00")


def test_a_year_of_mondays_off_is_the_edge() -> None:
    only_monday = Window(days="mon", hours="08:00-18:00")
    # 56 Mondays off: the 57th is 392 days later, inside the 400 days looked at
    mondays = [Holiday(date=date.fromordinal(date(2026, 3, 2).toordinal() + 7 * w)) for w in range(56)]
    assert next_open(at("2026-03-02 10:00"), UTC_TZ, only_monday, mondays) == at("2027-03-29 08:00")


def test_the_day_cap_counts_only_sends_up_to_now() -> None:
    later_today = [("email", at("2026-03-02 15:00"))]  # recorded ahead (a clock skew): not yet a send
    assert cap_wait(at("2026-03-02 10:00"), UTC_TZ, "email", later_today, {"all": Cap(day=1)}) is None
