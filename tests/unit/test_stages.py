"""Stage transitions on the example rules, as a table: which evidence proves which stage, counted
within its window, and a stage once reached is never left for an earlier one."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from outreach.ruleset import Condition, load_ruleset
from outreach.stages import condition_met, next_stage
from tests.support import ROOT, at

RULES = load_ruleset(ROOT / "rules")
T0 = at("2026-03-02 10:00")


def days(n: float) -> datetime:
    return T0 + timedelta(days=n)


@pytest.mark.parametrize(("current", "events", "to", "by"), [
    ("aware", [], None, None),
    ("aware", [("email.opened", 0)], None, None),  # an open proves nothing
    ("aware", [("email.clicked", 0)], "interested", "email.clicked"),
    ("aware", [("sms.replied", 1)], "interested", "sms.replied"),
    ("aware", [("pricing.viewed", 0)], None, None),  # once is not enough
    ("aware", [("pricing.viewed", 0), ("pricing.viewed", 13)], "evaluating", "pricing.viewed"),
    ("aware", [("pricing.viewed", 0), ("pricing.viewed", 15)], None, None),  # not within 14 days
    ("aware", [("pricing.viewed", 0), ("pricing.viewed", 15), ("pricing.viewed", 20)], "evaluating", "pricing.viewed"),
    ("aware", [("email.clicked", 0), ("meeting.accepted", 1)], "evaluating", "meeting.accepted"),  # the furthest
    ("interested", [("email.clicked", 0)], None, None),  # already there
    ("evaluating", [("email.clicked", 0)], None, None),  # never back
    ("interested", [("proposal.requested", 2)], "deciding", "proposal.requested"),  # stages may be skipped
    ("deciding", [("contract.signed", 3)], "customer", "contract.signed"),
    ("customer", [("contract.signed", 3), ("email.clicked", 4)], None, None),
])
def test_next_stage(current: str, events: list[tuple[str, float]], to: str | None, by: str | None) -> None:
    advance = next_stage(RULES, current, [(kind, days(n)) for kind, n in events])
    assert (advance.stage if advance else None) == to
    if advance:
        assert advance.condition.event == by


def test_a_stage_is_reached_when_its_last_needed_event_happened() -> None:
    twice = Condition(event="pricing.viewed", count=2, within="14d")  # type: ignore[arg-type]
    seen = [("pricing.viewed", days(0)), ("email.clicked", days(1)), ("pricing.viewed", days(5))]
    assert condition_met(twice, seen) == days(5)
    assert condition_met(Condition(event="email.clicked"), seen) == days(1)
    assert condition_met(Condition(event="demo.requested"), seen) is None
    advance = next_stage(RULES, "aware", [("email.clicked", days(3)), ("email.replied", days(1))])
    assert advance is not None and advance.at == days(1)  # the earliest proof
