"""The edges of every decision, as tables: a window counted to the second, a cap at exactly its
limit, a rolling week to the second, holidays scoped by zone and country, send windows on the
days the clocks change. The middle of each range is tested elsewhere; these are where mistakes hide."""

from __future__ import annotations

from datetime import date, timedelta
from zoneinfo import ZoneInfo

import pytest

from outreach.config import Cap, Holiday, Window
from outreach.policy import cap_wait, is_holiday, next_open
from outreach.ruleset import Condition, load_ruleset
from outreach.stages import condition_met, next_stage
from tests.support import ROOT, at

T0 = at("2026-03-02 10:00")
UTC_TZ = ZoneInfo("UTC")
S = timedelta(seconds=1)
D = timedelta(days=1)


@pytest.mark.parametrize(("count", "within", "gaps", "met_at"), [
    (2, "14d", [14 * D], 14 * D),                  # exactly the window: met
    (2, "14d", [14 * D + S], None),                # a second over: not met
    (2, "14d", [14 * D + S, 14 * D], 28 * D + S),  # the second and third pair fit
    (3, "14d", [7 * D, 7 * D], 14 * D),            # three within 14 days, measured first to last
    (3, "14d", [7 * D, 7 * D + S], None),
    (3, "14d", [10 * D, 5 * D, 5 * D], 20 * D),    # the window slides: events 2..4 fit, 1..3 do not
    (3, None, [30 * D, 30 * D], 60 * D),           # no window: the third event ever
    (3, None, [30 * D], None),                     # two of three
])
def test_within_is_counted_from_first_to_last_needed_event(
        count: int, within: str | None, gaps: list[timedelta], met_at: timedelta | None) -> None:
    times = [T0]
    for gap in gaps:
        times.append(times[-1] + gap)
    cond = Condition(event="pricing.viewed", count=count, within=within)  # type: ignore[arg-type]
    events = [("pricing.viewed", t) for t in reversed(times)] + [("email.clicked", T0 + S)]
    assert condition_met(cond, events) == (T0 + met_at if met_at is not None else None)


def test_two_proofs_at_the_same_moment_name_the_first_listed() -> None:
    rules = load_ruleset(ROOT / "rules")
    interested = next(s for s in rules.stages if s.id == "interested")
    first, second = interested.reached_by[0].event, interested.reached_by[1].event
    advance = next_stage(rules, "aware", [(second, T0), (first, T0)])
    assert advance is not None and (advance.stage, advance.condition.event, advance.at) == ("interested", first, T0)


TOKYO_ONLY = Holiday(date="2026-03-20", timezones=["Asia/Tokyo"])
GERMANY_ONLY = Holiday(date="2026-03-20", countries=["de"])
EVERYWHERE = Holiday(date="2026-03-20")


@pytest.mark.parametrize(("holiday", "zone", "country", "closed"), [
    (TOKYO_ONLY, "Asia/Tokyo", None, True),
    (TOKYO_ONLY, "Europe/London", None, False),
    (TOKYO_ONLY, "Asia/Seoul", "JP", False),       # same offset, other zone: open
    (GERMANY_ONLY, "Europe/Berlin", "DE", True),
    (GERMANY_ONLY, "Europe/Berlin", "de", True),   # country codes in any case
    (GERMANY_ONLY, "Europe/Berlin", None, False),  # no country known: not a German holiday
    (GERMANY_ONLY, "Europe/Berlin", "AT", False),
    (EVERYWHERE, "Pacific/Auckland", None, True),
])
def test_holidays_are_scoped_by_zone_and_country(holiday: Holiday, zone: str, country: str | None,
                                                 closed: bool) -> None:
    assert is_holiday(date(2026, 3, 20), zone, country, [holiday]) is closed
    assert is_holiday(date(2026, 3, 19), zone, country, [holiday]) is False


def test_a_zone_scoped_holiday_moves_only_that_zones_sends() -> None:
    friday_10_local = {"Asia/Tokyo": at("2026-03-20 01:00"), "Europe/London": at("2026-03-20 10:00")}
    window = Window(days="mon-fri", hours="08:00-18:00")
    tokyo = next_open(friday_10_local["Asia/Tokyo"], ZoneInfo("Asia/Tokyo"), window, [TOKYO_ONLY])
    london = next_open(friday_10_local["Europe/London"], ZoneInfo("Europe/London"), window, [TOKYO_ONLY])
    assert tokyo == at("2026-03-22 23:00")  # Monday 08:00 in Tokyo
    assert london == friday_10_local["Europe/London"]


@pytest.mark.parametrize(("now", "zone", "expected"), [
    # Europe/Berlin springs forward on Sunday 29 March 2026: 08:00 is 07:00 UTC before, 06:00 after
    ("2026-03-27 06:59", "Europe/Berlin", "2026-03-27 07:00"),
    ("2026-03-27 07:00", "Europe/Berlin", "2026-03-27 07:00"),  # the opening minute is inside
    ("2026-03-27 16:59", "Europe/Berlin", "2026-03-27 16:59"),  # the last minute is inside
    ("2026-03-27 17:00", "Europe/Berlin", "2026-03-30 06:00"),  # closing time: Monday, now on summer time
    # America/New_York falls back on Sunday 1 November 2026: 08:00 is 12:00 UTC before, 13:00 after
    ("2026-10-30 22:00", "America/New_York", "2026-11-02 13:00"),
    ("2026-11-02 12:59", "America/New_York", "2026-11-02 13:00"),
])
def test_send_windows_on_the_days_the_clocks_change(now: str, zone: str, expected: str) -> None:
    assert next_open(at(now), ZoneInfo(zone), Window(days="mon-fri", hours="08:00-18:00")) == at(expected)


@pytest.mark.parametrize(("now", "zone", "expected"), [
    # a window that opens and closes on the half hour
    ("2026-03-02 08:29:59", "UTC", "2026-03-02 08:30"),
    ("2026-03-02 08:30", "UTC", "2026-03-02 08:30"),
    ("2026-03-02 16:59:59", "UTC", "2026-03-02 16:59:59"),
    ("2026-03-02 17:00", "UTC", "2026-03-03 08:30"),
    # the contact's day is not UTC's: Tuesday 08:45 in Tokyo is Monday in UTC, Monday 16:30 in
    # Los Angeles is Tuesday in UTC; both are inside the contact's window
    ("2026-03-02 23:45", "Asia/Tokyo", "2026-03-02 23:45"),
    ("2026-03-03 00:30", "America/Los_Angeles", "2026-03-03 00:30"),
    ("2026-03-03 01:00", "America/Los_Angeles", "2026-03-03 16:30"),  # 17:00 there: Tuesday 08:30
])
def test_window_edges_to_the_second_in_the_contacts_zone(now: str, zone: str, expected: str) -> None:
    assert next_open(at(now), ZoneInfo(zone), Window(days="mon-fri", hours="08:30-17:00")) == at(expected)


def test_the_answer_is_in_the_zone_of_the_time_asked_about() -> None:
    """Aware in, aware out, in the same tzinfo: callers store and compare what they get back."""
    berlin, tokyo = ZoneInfo("Europe/Berlin"), ZoneInfo("Asia/Tokyo")
    window = Window(days="mon-fri", hours="08:00-18:00")
    hour = timedelta(hours=1)
    for asked in (at("2026-03-02 10:00"), at("2026-03-02 10:00").astimezone(berlin)):
        for moment in (asked, asked + 10 * hour):  # 19:00 in Tokyo: closed; 05:00 Tuesday: closed
            opened = next_open(moment, tokyo, window)
            assert opened == at("2026-03-02 23:00") and opened.tzinfo is asked.tzinfo
        inside = next_open(asked - 8 * hour, tokyo, window)  # 11:00 in Tokyo: open, itself
        assert inside == asked - 8 * hour and inside.tzinfo is asked.tzinfo
        day_cap = cap_wait(asked, tokyo, "email", [("email", asked - S)], {"all": Cap(day=1)})
        assert day_cap is not None and day_cap[0] == at("2026-03-02 15:00") and day_cap[0].tzinfo is asked.tzinfo


def test_the_window_is_looked_for_over_400_days() -> None:
    every_day = Window(days="mon-sun", hours="08:00-18:00")
    first = date(2026, 3, 2)
    off = [Holiday(date=first + k * D) for k in range(400)]
    # the 400th day is the last one looked at; a window that opens only on the 401st never opens
    assert next_open(at("2026-03-02 10:00"), UTC_TZ, every_day, off[:399]) == at("2027-04-05 08:00")
    with pytest.raises(ValueError, match="the send window never opens"):
        next_open(at("2026-03-02 10:00"), UTC_TZ, every_day, off)


@pytest.mark.parametrize(("sent", "waits_until"), [
    ("2026-03-03 05:00", "2026-03-04 05:00"),     # midnight in New York: the new day's first send
    ("2026-03-03 04:59:59", None),                # a second before: yesterday's
])
def test_the_day_cap_starts_at_the_contacts_midnight(sent: str, waits_until: str | None) -> None:
    wait = cap_wait(at("2026-03-03 15:00"), ZoneInfo("America/New_York"), "email", [("email", at(sent))],
                    {"all": Cap(day=1)})
    assert (wait[0] if wait else None) == (at(waits_until) if waits_until else None)


def test_of_two_caps_the_later_wait_holds() -> None:
    now = at("2026-03-02 10:00")
    sent = [("email", at("2026-02-23 10:30")), ("email", at("2026-03-02 09:00"))]
    # the rolling week frees a slot at 10:30 today; the day cap holds until midnight
    assert cap_wait(now, UTC_TZ, "email", sent, {"all": Cap(day=1, week=2)}) == \
        (at("2026-03-03 00:00"), "all cap of 1 a day reached")
    assert cap_wait(now, UTC_TZ, "email", sent, {"all": Cap(day=1), "email": Cap(week=2)}) == \
        (at("2026-03-03 00:00"), "all cap of 1 a day reached")
    assert cap_wait(now, UTC_TZ, "email", sent, {"all": Cap(week=2), "email": Cap(day=1)}) == \
        (at("2026-03-03 00:00"), "email cap of 1 a day reached")


@pytest.mark.parametrize(("cap", "sent_hours_ago", "waits"), [
    (Cap(day=2), [1], False),             # one under the limit
    (Cap(day=2), [1, 2], True),           # exactly at the limit
    (Cap(day=2), [1, 11], False),         # the second was yesterday (before local midnight)
    (Cap(week=2), [1, 24 * 7 - 1], True),
    (Cap(week=2), [1, 24 * 7], False),    # exactly seven days ago has left the rolling week
])
def test_caps_at_exactly_the_limit(cap: Cap, sent_hours_ago: list[int], waits: bool) -> None:
    now = at("2026-03-04 10:30")
    sent = [("email", now - timedelta(hours=h)) for h in sent_hours_ago]
    assert (cap_wait(now, ZoneInfo("UTC"), "email", sent, {"all": cap}) is not None) is waits


def test_a_week_cap_waits_until_the_oldest_counted_send_leaves_the_week() -> None:
    now = at("2026-03-04 10:00")
    sent = [("sms", now - timedelta(days=6)), ("sms", now - timedelta(days=2))]
    wait = cap_wait(now, ZoneInfo("UTC"), "sms", sent, {"sms": Cap(week=2)})
    assert wait is not None and wait[0] == now + D and "sms cap of 2 a week" in wait[1]
    assert cap_wait(now, ZoneInfo("UTC"), "email", sent, {"sms": Cap(week=2)}) is None  # other channels free
