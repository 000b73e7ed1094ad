"""The counts kept per single filter value (outreach.analytics.parts), kept incrementally: on
tests/support/report_data.py's history, after an owner change, an attribute change, a stage change corrected
after the fact, a new contact, a send by a playbook that had sent the contact nothing, an answer and delivery
events that arrive late, every figure a part's kept rows give equals the one counted from the contacts' rows
(the fallback every combination of filters still uses), for every owner, stage, indexed attribute value and
playbook there is, on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import astuple, replace
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select, update
from sqlmodel import Session, col

from outreach.analytics import activity, funnel, parts, paths, sends, snapshots
from outreach.analytics.model import Filters
from outreach.analytics.scope import INDEXED, attribute, contact_where
from outreach.db import session_scope
from outreach.engine import Engine
from outreach.models import Contact, ContactMark, ContactPart, Evidence, StageChange, Touch, TouchStatus
from tests.support import at
from tests.support.report_data import REP1, REP2, _touch, seed_report

STAGES = ["aware", "interested", "evaluating", "deciding", "customer"]
PERIODS = [Filters(date(2026, 11, 1), date(2026, 11, 10)), Filters(date(2026, 11, 4), date(2026, 11, 4)),
           Filters(date(2026, 10, 1), date(2026, 11, 30))]
WITHIN = timedelta(days=14)
FIGURES = ("history", "conversion and velocity", "steps and channels", "deliverability", "now")


def single_filters(s: Session, f: Filters) -> list[Filters]:
    """Each filter value there is, alone (and one that nobody has), as the dashboard can ask for it."""
    out = [f, replace(f, owner="nobody@example.com"), replace(f, stage="deciding"),
           replace(f, attrs=(("industry", "mining"),)), replace(f, playbook="trigger:never")]
    out += [replace(f, owner=o) for o in s.execute(select(col(Contact.owner)).distinct()).scalars() if o]
    out += [replace(f, stage=st) for st in s.execute(select(col(Contact.stage)).distinct()).scalars()]
    for name in INDEXED:
        values = s.execute(select(attribute(name)).select_from(Contact).distinct()).scalars()
        out += [replace(f, attrs=((name, v),)) for v in values if v is not None and len(v) <= parts.MAX_VALUE]
    out += [replace(f, playbook=r) for r in s.execute(select(col(Touch.rule)).distinct()).scalars()]
    return out


def from_rows(s: Session, f: Filters) -> tuple[object, ...]:
    """Every figure counted from the contacts' rows (the fallback)."""
    where = contact_where(f, owner=False)
    hist = funnel.daily_counts(s, len(STAGES), funnel.timeline(STAGES, f.owner, where=where), f.days())
    moves = funnel.moves(s, STAGES, f, funnel.timeline(STAGES, f.owner, active_since=f.start, where=where))
    sent = sorted(astuple(x) for x in activity.sent_touches(s, f, WITHIN))
    return (hist, moves, sent, activity.deliverability(s, f),
            snapshots.live_counts(s, STAGES, f.owner, where))


def from_part(s: Session, f: Filters) -> tuple[object, ...]:
    """Every figure read from the part's kept rows."""
    part = parts.part_of(f)
    assert part is not None, f
    hist = paths.daily_counts(s, len(STAGES), f.owner, contact_where(f, owner=False), f.days(), part=part)
    sent = sorted(astuple(x) for x in sends.sent_touches(s, f, WITHIN))
    return (hist, paths.moves(s, STAGES, f), sent, sends.deliverability(s, f, part),
            snapshots.live_counts(s, STAGES, f.owner, [], part))


def same_as_counted(s: Session) -> int:
    """Every single filter's kept figures equal the counted ones; returns how many filters were compared."""
    compared = 0
    for period in PERIODS:
        for f in single_filters(s, period):
            for what, kept, counted in zip(FIGURES, from_part(s, f), from_rows(s, f), strict=True):
                assert kept == counted, (what, f)
            compared += 1
    kept = sorted(s.execute(select(col(ContactPart.contact_id), col(ContactPart.part))).all())
    assert kept == sorted(s.execute(parts.current(None)).all())  # ContactPart is what the contacts are now
    return compared


def test_part_of_names_the_one_filter_kept() -> None:
    f = Filters(date(2026, 11, 1), date(2026, 11, 10))
    assert parts.part_of(f) == ""
    assert parts.part_of(replace(f, owner=REP1)) == f"owner:{REP1}"
    assert parts.part_of(replace(f, stage="evaluating")) == "stage:evaluating"
    assert parts.part_of(replace(f, playbook="playbook:aware")) == "rule:playbook:aware"
    assert parts.part_of(replace(f, attrs=(("region", "emea"),))) == "attr:region=emea"
    # combinations, and attributes without an index of their own, are counted from the rows
    assert parts.part_of(replace(f, owner=REP1, stage="evaluating")) is None
    assert parts.part_of(replace(f, attrs=(("region", "emea"), ("industry", "retail")))) is None
    assert parts.part_of(replace(f, attrs=(("size", "large"),))) is None
    assert parts.part_of(replace(f, attrs=(("industry", "x" * 201),))) is None  # too long for an index entry


def test_every_part_kept_through_the_changes_a_contact_goes_through(engine: Engine,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(paths, "OVERLAP", 0)  # only what changed is read again, so the deltas are what is tested
    with session_scope(engine.db) as s:
        ids = seed_report(s)
        # B's region is too long to be a part (PostgreSQL's index entries): counted from the rows only
        for name, attrs in {"A": {"industry": "software", "region": "emea"},
                            "B": {"industry": "software", "region": "r" * 3000},
                            "C": {"industry": "retail", "lead_source": "webinar"}, "D": {"industry": "retail"},
                            "E": {"region": "amer", "lead_source": 7}}.items():
            s.execute(update(Contact).where(col(Contact.id) == ids[name]).values(attributes=attrs))
        paths.refresh(s, STAGES)
    with session_scope(engine.db) as s:
        assert paths.refresh(s, STAGES) == 0  # nothing new: nothing read
        assert same_as_counted(s) == 3 * 20  # per period: 5 made up, 2 owners, 4 stages, 6 values, 3 rules
        # the hand-worked figures of test_report_filters: industry retail is C and D now
        retail = Filters(date(2026, 11, 1), date(2026, 11, 10), attrs=(("industry", "retail"),))
        assert snapshots.live_counts(s, STAGES, None, [], "attr:industry=retail") == [1, 0, 0, 0, 1]
        assert from_part(s, retail)[3] == activity.deliverability(s, retail)
    with session_scope(engine.db) as s:
        # D is handed over to rep1, C's industry changes, E's lead source goes: only the triggers say so
        s.execute(update(Contact).where(col(Contact.id) == ids["D"]).values(owner=REP1))
        s.execute(update(Contact).where(col(Contact.id) == ids["C"]).values(
            attributes={"industry": "software", "lead_source": "webinar"}))
        s.execute(update(Contact).where(col(Contact.id) == ids["E"]).values(attributes={"region": "amer"}))
        assert paths.refresh(s, STAGES) == 3
        same_as_counted(s)
    with session_scope(engine.db) as s:
        # E (interested 11-10 23:00) is proven evaluating as of 11-09 22:30 by evidence that arrives late
        s.add(StageChange(contact_id=ids["E"], from_stage="interested", to_stage="evaluating",
                          at=at("2026-11-09 22:30")))
        s.execute(update(Contact).where(col(Contact.id) == ids["E"]).values(stage="evaluating"))
        # G comes in on 11-10, rep2's, in finance
        g = Contact(email="g@buyer.example", owner=REP2, stage="aware", created_at=at("2026-11-10 05:00"),
                    stage_entered_at=at("2026-11-10 05:00"), attributes={"industry": "finance"})
        s.add(g)
        s.flush()
        assert paths.refresh(s, STAGES) == 2  # E and G
        same_as_counted(s)
    with session_scope(engine.db) as s:
        assert g.id is not None
        # a trigger that had sent G nothing sends it a touch (inserted sent); T6 (the interested playbook's
        # check-in to C, waiting) goes out; A answers T7; delivery events arrive late for G and for C
        s.add(_touch(g.id, "trigger:demo-follow-up", "demo-follow-up", "routine", "email", TouchStatus.SENT,
                     at("2026-11-10 06:00")))
        s.execute(update(Touch).where(col(Touch.contact_id) == ids["C"], col(Touch.step) == "check-in").values(
            status=TouchStatus.SENT, sent_at=at("2026-11-09 12:00")))
        t7 = s.execute(select(col(Touch.id)).where(col(Touch.contact_id) == ids["A"],
                                                   col(Touch.step) == "pricing-follow-up")).scalar_one()
        s.add(Evidence(contact_id=ids["A"], type="email.replied", occurred_at=at("2026-11-04 09:00"), touch_id=t7))
        s.add(Evidence(contact_id=g.id, type="email.delivered", occurred_at=at("2026-11-10 06:01")))
        s.add(Evidence(contact_id=ids["C"], type="email.bounced", occurred_at=at("2026-11-02 23:00")))
        s.flush()
        assert paths.refresh(s, STAGES) == 2  # G and C: a rule part each (A's answer moves no part)
        same_as_counted(s)
        assert "rule:trigger:demo-follow-up" in s.execute(select(col(ContactPart.part)).where(
            col(ContactPart.contact_id) == g.id)).scalars().all()
    with session_scope(engine.db) as s:
        # the interested playbook's only sent touch to D is unsent (a correction): D leaves its part
        s.execute(update(Touch).where(col(Touch.contact_id) == ids["D"]).values(status=TouchStatus.FAILED))
        assert paths.refresh(s, STAGES) == 1
        same_as_counted(s)
        assert "rule:playbook:interested" not in s.execute(select(col(ContactPart.part)).where(
            col(ContactPart.contact_id) == ids["D"])).scalars().all()
        assert s.execute(select(func.count()).select_from(ContactMark)).scalar_one() == 1  # cleared but the last


def test_a_new_order_of_stages_builds_every_part(engine: Engine) -> None:
    with session_scope(engine.db) as s:
        ids = seed_report(s)
        paths.refresh(s, STAGES)
        s.execute(update(Contact).where(col(Contact.id) == ids["B"]).values(owner=REP2))
    with session_scope(engine.db) as s:
        paths.refresh(s, STAGES)
        before = sorted(s.execute(select(col(ContactPart.contact_id), col(ContactPart.part))).all())
        s.execute(update(Contact).where(col(Contact.id) == ids["B"]).values(owner=REP1))
        assert paths.refresh(s, STAGES[:4]) == 6  # everything again: B's parts as it is now
        after = sorted(s.execute(select(col(ContactPart.contact_id), col(ContactPart.part))).all())
        assert (ids["B"], f"owner:{REP2}") in before and (ids["B"], f"owner:{REP1}") in after
        assert after == sorted(s.execute(parts.current(None)).all())
