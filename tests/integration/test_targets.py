"""Targets on tests/support/report_data.py's history, worked out by hand there, on SQLite and
PostgreSQL: the conversion and expiry metrics per period, met, missed or too few to read, and the
daily email of missed targets sent once a day however many workers run it."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from channels.base import OutgoingMessage, SendResult
from outreach.analytics import targets
from outreach.db import session_scope
from outreach.engine import Engine
from outreach.errors import InvalidInput
from outreach.models import User
from tests.support.report_data import REP1, REP2, seed_report

MARKETER = User(email="m@example.com", role="marketer")


class Outbox:
    def __init__(self) -> None:
        self.sent: list[OutgoingMessage] = []

    def send(self, msg: OutgoingMessage) -> SendResult:
        self.sent.append(msg)
        return SendResult("outbox", f"m{len(self.sent)}")


def test_conversion_and_expiry_met_or_missed(engine: Engine) -> None:
    rules = engine.project.rules
    with session_scope(engine.db) as s:
        seed_report(s)
        conv = targets.add(s, rules, MARKETER, "conversion", ">=", "25%", "aware", within_days=10)
        expiry = targets.add(s, rules, MARKETER, "expired_per_rep_week", "<=", "0")
        # 11-01..11-10: of B, C, E who entered aware, B and E moved on: 2 of 3 (min_cases 1 to read it)
        p = targets.point(s, rules, conv, date(2026, 11, 10), min_cases=1)
        assert (p.value, p.cases, p.met) == (pytest.approx(0.6667), 3, True)
        assert targets.point(s, rules, conv, date(2026, 11, 10), min_cases=20).met is None  # too few
        # rep1 alone: B moved on, C did not: 1 of 2 = 50%
        assert targets.point(s, rules, conv, date(2026, 11, 10), 1, owner=REP1).value == 0.5
        # 11-04..11-10: T5 to E (rep2's) expired unapproved on 11-10: 1 > 0, missed, rep2 the worst
        e = targets.point(s, rules, expiry, date(2026, 11, 10), min_cases=20)
        assert (e.value, e.met, e.who) == (1.0, False, REP2)
        assert targets.point(s, rules, expiry, date(2026, 11, 9), 20).met is True
        weekly = targets.history(s, rules, expiry, date(2026, 11, 10), 20, weeks=2)
        assert [(x.end, x.met) for x in weekly] == [(date(2026, 11, 3), True), (date(2026, 11, 10), False)]
        assert targets.describe(conv, rules) == ("at least 25% of the contacts entering aware move on to "
                                                 "interested within 10 days")


def test_the_missed_targets_email_goes_once_a_day(engine: Engine) -> None:
    rules, settings = engine.project.rules, engine.settings
    with session_scope(engine.db) as s:
        seed_report(s)
        targets.add(s, rules, MARKETER, "expired_per_rep_week", "<=", "0")
        targets.add(s, rules, MARKETER, "expired_per_rep_week", "<=", "5")  # met: not in the email
    box = Outbox()
    now = datetime(2026, 11, 10, 23, 30, tzinfo=UTC)
    for _ in range(2):  # a second worker (or run) the same day sends nothing
        with session_scope(engine.db) as s:
            targets.send_target_digests(s, settings, rules, box, now)  # type: ignore[arg-type]
    assert len(box.sent) == 1
    msg = box.sent[0]
    assert msg.to_email == "m@example.com" and msg.subject == "Targets missed: 1"
    assert "at most 0 touches expired unapproved per rep per week: now 1 (rep2@example.com)" in (msg.text or "")


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
@pytest.mark.parametrize(("args", "says"), [
    (("conversion", ">=", "25%", "customer"), "stage: 'customer' is not a stage"),
    (("conversion", ">=", "125%", "aware"), "between 0% and 100%"),
    (("speed", ">=", "1", None), "metric: 'speed'"),
    (("expired_per_rep_week", "<=", "ten", None), "'ten' is not a number"),
])
def test_bad_targets_say_what_is_wrong(engine: Engine, args: tuple[str, str, str, str | None], says: str) -> None:
    with session_scope(engine.db) as s, pytest.raises(InvalidInput, match=says):
        targets.add(s, engine.project.rules, MARKETER, *args)
    with session_scope(engine.db) as s, pytest.raises(InvalidInput, match="only admins and marketers"):
        targets.add(s, engine.project.rules, User(email=REP1, role="rep"), "expired_per_rep_week", "<=", "1")
