"""The report narrowed by stage, playbook and contact attribute, on tests/support/report_data.py's
history (worked out by hand there), on SQLite and PostgreSQL. Attributes added here: A, B, D, E are in
software, C in retail."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import update
from sqlmodel import col

from outreach.analytics.activity import deliverability
from outreach.analytics.build import build_report
from outreach.analytics.model import Filters, Report, narrowing, parse_attr
from outreach.db import session_scope
from outreach.engine import Engine
from outreach.errors import InvalidInput
from outreach.models import Contact
from tests.support.report_data import REP1, REP2, seed_report


def seed(engine: Engine) -> None:
    with session_scope(engine.db) as s:
        ids = seed_report(s)
        for name, industry in {"A": "software", "B": "software", "C": "retail", "D": "software",
                               "E": "software"}.items():
            s.execute(update(Contact).where(col(Contact.id) == ids[name]).values(
                attributes={"industry": industry, "region": "emea"}))


def run(engine: Engine, owner: str | None = None, stage: str | None = None, playbook: str | None = None,
        attrs: tuple[str, ...] = (), seeded: bool = False) -> Report:
    if not seeded:
        seed(engine)
    with session_scope(engine.db) as s:
        f = narrowing(Filters(date(2026, 11, 1), date(2026, 11, 10), owner), engine.project.rules, stage, playbook,
                      [parse_attr(a) for a in attrs])
        return build_report(s, engine.project.rules, f, timedelta(days=14))


def now(r: Report) -> list[int]:
    return [f["now"] for f in r["funnel"]]


def test_a_playbook_keeps_its_touches_and_the_contacts_it_sent_to(engine: Engine) -> None:
    r = run(engine, playbook="interested")  # a bare name is the stage's playbook
    # its touches: T4 to D (sent, answered), T5 to E (expired unapproved), T6 to C (waiting)
    assert r["steps"] == [{"rule": "playbook:interested", "step": "check-in", "sent": 1, "responses": 1,
                           "advanced": 0, "opt_outs": 0, "expired": 1}]
    assert [(c["interaction"], c["channel"], c["sent"]) for c in r["channels"]] == [("routine", "sms", 1)]
    assert r["queue"] == [{"owner": REP1, "waiting": 1, "expired": 0}, {"owner": REP2, "waiting": 0, "expired": 1}]
    # the funnel of the contacts it sent a touch to: D (customer) alone; T5 to E expired and T6 to C waits,
    # so neither is the playbook's (docs/DASHBOARDS.md: "the contacts it sent at least one touch to")
    assert now(r) == [0, 0, 0, 0, 1]
    # D came in before the period, and went through interested in the instant it reached customer
    assert [(c["entered"], c["advanced"]) for c in r["conversion"]] == [(0, 0), (0, 0), (0, 0), (0, 0)]


def test_a_stage_keeps_the_contacts_there_now(engine: Engine) -> None:
    r = run(engine, stage="evaluating")  # A and B
    assert now(r) == [0, 0, 2, 0, 0]
    assert [h["count"] for h in r["history"] if h["date"] == "2026-11-02"] == [1, 1, 0, 0, 0]
    # T1 and T7 to A; T3 to B was before the period; T2, T4 to others
    assert [(s["rule"], s["sent"], s["advanced"]) for s in r["steps"]] == [
        ("playbook:aware", 1, 1), ("trigger:pricing-follow-up", 1, 1)]
    assert r["queue"] == []


def test_an_attribute_keeps_the_contacts_that_have_it(engine: Engine) -> None:
    r = run(engine, attrs=("industry=retail",))  # C only
    assert now(r) == [1, 0, 0, 0, 0]
    assert r["steps"] == [{"rule": "playbook:aware", "step": "welcome", "sent": 1, "responses": 0, "advanced": 0,
                           "opt_outs": 1, "expired": 0}]
    assert r["queue"] == [{"owner": REP1, "waiting": 1, "expired": 0}]
    both = run(engine, owner=REP2, attrs=("attr.industry=software", "region=emea"), seeded=True)  # D and E
    assert now(both) == [0, 1, 0, 0, 1]
    assert run(engine, attrs=("industry=mining",), seeded=True)["funnel"][0]["reached"] == 0


def test_deliverability_follows_the_filters(engine: Engine) -> None:
    seed(engine)
    with session_scope(engine.db) as s:
        f = narrowing(Filters(date(2026, 11, 1), date(2026, 11, 10)), engine.project.rules, None, None,
                      [("industry", "software")])
        rows = deliverability(s, f)
    # T1 delivered (A), T4 delivered (D, sms), T7 bounced (A): all software
    assert sum(r["delivered"] for r in rows) == 2 and sum(r["bounced"] for r in rows) == 1


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
@pytest.mark.parametrize(("stage", "playbook", "attr", "says"), [
    ("nowhere", None, [], "stage 'nowhere'"),
    (None, "trigger:nope", [], "playbook 'trigger:nope'"),
    (None, None, ["industry"], "NAME=VALUE"),
    (None, None, ["bad name=x"], "NAME=VALUE"),
])
def test_a_filter_the_rules_do_not_know_is_an_error(engine: Engine, stage: str | None, playbook: str | None,
                                                   attr: list[str], says: str) -> None:
    with pytest.raises(InvalidInput, match=says):
        narrowing(Filters(date(2026, 11, 1), date(2026, 11, 10)), engine.project.rules, stage, playbook,
                  [parse_attr(a) for a in attr])
