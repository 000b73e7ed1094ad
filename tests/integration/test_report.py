"""Every figure of the report on tests/support/report_data.py's history, worked out by hand, on SQLite
and PostgreSQL. Stages: aware, interested, evaluating, deciding, customer."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from outreach.analytics.activity import deliverability
from outreach.analytics.build import build_report, check_owner
from outreach.analytics.model import Filters, Report
from outreach.db import session_scope
from outreach.engine import Engine
from outreach.errors import InvalidInput
from tests.support.report_data import REP1, REP2, seed_report

STAGES = ["aware", "interested", "evaluating", "deciding", "customer"]


def run(engine: Engine, owner: str | None = None, since: str = "2026-11-01", until: str = "2026-11-10") -> Report:
    with session_scope(engine.db) as s:
        seed_report(s)
    with session_scope(engine.db) as s:
        return build_report(s, engine.project.rules, Filters(date.fromisoformat(since), date.fromisoformat(until),
                                                             owner), timedelta(days=14))


def day(r: Report, d: str) -> list[int]:
    return [h["count"] for h in r["history"] if h["date"] == d]


def test_every_figure_for_everybody(engine: Engine) -> None:
    r = run(engine)
    assert r["period"] == {"since": "2026-11-01", "until": "2026-11-10"}
    # history, end of each UTC day. Before 11-01: A and D aware.
    assert [h["stage"] for h in r["history"][:5]] == STAGES
    assert len(r["history"]) == 10 * 5
    assert day(r, "2026-11-01") == [3, 0, 0, 0, 0]  # B comes in
    assert day(r, "2026-11-02") == [3, 1, 0, 0, 0]  # A interested, C comes in
    assert day(r, "2026-11-03") == [2, 1, 1, 0, 0]  # B straight to evaluating at 23:59:59: still 11-03
    # D: customer proven as of 11-04 by evidence recorded after its 11-06 move to interested
    assert day(r, "2026-11-04") == [1, 1, 1, 0, 1]
    assert day(r, "2026-11-05") == [1, 0, 2, 0, 1]  # A evaluating
    assert day(r, "2026-11-06") == [1, 0, 2, 0, 1]  # D's move to interested changes nothing: it is past it
    assert day(r, "2026-11-08") == [1, 0, 2, 0, 1]  # E came in at 00:30 UTC on 11-09 (11-08 in New York)
    assert day(r, "2026-11-09") == [2, 0, 2, 0, 1]
    assert day(r, "2026-11-10") == [1, 1, 2, 0, 1]  # F (11-12) is in no figure
    assert r["funnel"] == [{"stage": "aware", "now": 1, "reached": 5},
                           {"stage": "interested", "now": 1, "reached": 4},
                           {"stage": "evaluating", "now": 2, "reached": 3},
                           {"stage": "deciding", "now": 0, "reached": 1},
                           {"stage": "customer", "now": 1, "reached": 1}]
    # entered aware in the period: B, C, E; B and E moved on. Interested: A (moved on), E (not yet); D went
    # through interested to customer in the same instant, so it never stood there. Evaluating: A, B.
    conv = [(c["from"], c["to"], c["entered"], c["advanced"]) for c in r["conversion"]]
    assert conv == [("aware", "interested", 3, 2), ("interested", "evaluating", 2, 1),
                    ("evaluating", "deciding", 2, 0), ("deciding", "customer", 0, 0)]
    first = r["conversion"][0]
    assert first["rate"] == pytest.approx(0.6667) and first["low"] == pytest.approx(0.2077, abs=1e-4)
    assert first["high"] == pytest.approx(0.9385, abs=1e-4)
    # days in aware of those who left it in the period: E 47 h = 1.9583, B 72 h (71:59:59, to the hour) = 3,
    # D 10, A 13. Median (3 + 10) / 2; 80th percentile at rank 2.4: 10 + 0.4 * 3. Interested: A 3.5 days.
    assert r["velocity"] == [{"stage": "aware", "n": 4, "median_days": 6.5, "p80_days": 11.2},
                             {"stage": "interested", "n": 1, "median_days": 3.5, "p80_days": 3.5},
                             {"stage": "evaluating", "n": 0, "median_days": None, "p80_days": None},
                             {"stage": "deciding", "n": 0, "median_days": None, "p80_days": None}]
    # T3 was sent before the period. T1: a click and a reply (one response), A moved on the next day.
    # T2: an unsubscribe. T4: a reply, but D's stage changes are dated before it. T5 expired. T7: A moved
    # on two days later.
    assert r["steps"] == [
        {"rule": "playbook:aware", "step": "welcome", "sent": 2, "responses": 1, "advanced": 1, "opt_outs": 1,
         "expired": 0},
        {"rule": "playbook:interested", "step": "check-in", "sent": 1, "responses": 1, "advanced": 0,
         "opt_outs": 0, "expired": 1},
        {"rule": "trigger:pricing-follow-up", "step": "pricing-follow-up", "sent": 1, "responses": 0, "advanced": 1,
         "opt_outs": 0, "expired": 0}]
    # in the rules' order: routine (email, sms), then nurture
    assert [(c["interaction"], c["channel"], c["sent"], c["responses"], c["rate"]) for c in r["channels"]] == [
        ("routine", "email", 1, 0, 0.0), ("routine", "sms", 1, 1, 1.0), ("nurture", "email", 2, 1, 0.5)]
    assert r["channels"][0]["low"] == 0.0 and r["channels"][0]["high"] == pytest.approx(0.7935, abs=1e-4)
    assert r["queue"] == [{"owner": REP1, "waiting": 1, "expired": 0}, {"owner": REP2, "waiting": 0, "expired": 1}]


def test_one_owner_sees_their_contacts_only(engine: Engine) -> None:
    r = run(engine, owner=REP1)  # A, B, C (F comes later)
    assert day(r, "2026-11-10") == [1, 0, 2, 0, 0]
    assert [f["reached"] for f in r["funnel"]] == [3, 2, 2, 0, 0]
    assert [(c["entered"], c["advanced"]) for c in r["conversion"]] == [(2, 1), (1, 1), (2, 0), (0, 0)]
    assert [s["sent"] for s in r["steps"]] == [2, 1]
    assert r["queue"] == [{"owner": REP1, "waiting": 1, "expired": 0}]


def test_a_period_in_the_past_starts_from_what_came_before(engine: Engine) -> None:
    r = run(engine, since="2026-11-04", until="2026-11-04")
    assert r["history"] == [{"date": "2026-11-04", "stage": s, "count": n}
                            for s, n in zip(STAGES, [1, 1, 1, 0, 1], strict=True)]
    assert [(c["entered"], c["advanced"]) for c in r["conversion"]] == [(0, 0), (0, 0), (0, 0), (0, 0)]
    # D left aware on 11-04 (10 days); nobody else left a stage that day
    assert r["velocity"][0] == {"stage": "aware", "n": 1, "median_days": 10.0, "p80_days": 10.0}


def test_deliverability_per_week_and_channel(engine: Engine) -> None:
    run(engine)
    with session_scope(engine.db) as s:
        rows = deliverability(s, Filters(date(2026, 11, 1), date(2026, 11, 10)))
        mine = deliverability(s, Filters(date(2026, 11, 1), date(2026, 11, 10), REP2))
    zero = {"delivered": 0, "bounced": 0, "complained": 0, "unsubscribed": 0, "opted_out": 0}
    # 2026-11-01 is a Sunday: its week began on Monday 10-26
    assert rows == [{"week": "2026-10-26", "channel": "email", **zero, "delivered": 1},
                    {"week": "2026-11-02", "channel": "email", **zero, "bounced": 1, "unsubscribed": 1},
                    {"week": "2026-11-02", "channel": "sms", **zero, "delivered": 1}]
    assert mine == [{"week": "2026-11-02", "channel": "sms", **zero, "delivered": 1}]  # D's


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_an_unknown_owner_is_an_error(engine: Engine) -> None:
    with session_scope(engine.db) as s:
        seed_report(s)
        check_owner(s, REP2)
        with pytest.raises(InvalidInput, match=r"nobody@example\.com"):
            check_owner(s, "nobody@example.com")
