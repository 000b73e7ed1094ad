"""The kept stage paths and their daily counts (outreach.analytics.paths), kept incrementally: on
tests/support/report_data.py's history, then after a stage change corrected after the fact and a new
contact, every figure is worked out by hand and is the one recomputed from the stage changes, on
SQLite and PostgreSQL. Stages: aware 0, interested 1, evaluating 2, deciding 3, customer 4."""

from __future__ import annotations

from dataclasses import astuple, replace
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select, update
from sqlmodel import Session, col

from outreach.analytics import activity, funnel, paths, sends
from outreach.analytics.model import ConversionRow, Filters, VelocityRow
from outreach.db import session_scope
from outreach.engine import Engine
from outreach.models import Contact, Evidence, StageChange, StagePath, Touch, TouchMark, TouchStatus
from tests.support import at
from tests.support.report_data import REP2, seed_report

STAGES = ["aware", "interested", "evaluating", "deciding", "customer"]
PERIODS = [Filters(date(2026, 11, 1), date(2026, 11, 10)), Filters(date(2026, 11, 4), date(2026, 11, 4)),
           Filters(date(2026, 11, 9), date(2026, 11, 10)), Filters(date(2026, 10, 1), date(2026, 11, 30))]


def recomputed(s: Session, f: Filters) -> tuple[list[ConversionRow], list[VelocityRow]]:
    return funnel.moves(s, STAGES, f, funnel.timeline(STAGES, f.owner, active_since=f.start))


def history(s: Session, f: Filters, kept: bool) -> list[list[int]]:
    got = paths.daily_counts(s, len(STAGES), None, [], f.days()) if kept else \
        funnel.daily_counts(s, len(STAGES), funnel.timeline(STAGES, None), f.days())
    return [got[(d.isoformat(), "")] for d in f.days()]


def same_as_recomputed(s: Session) -> None:
    """Every figure the kept paths give equals the one rebuilt from the stage changes."""
    kept = sorted(s.execute(select(col(StagePath.contact_id), col(StagePath.idx), col(StagePath.prev),
                                   col(StagePath.t), col(StagePath.t_next))).all())
    tl = funnel.timeline(STAGES, None)
    assert kept == sorted(s.execute(select(tl.c.cid, tl.c.idx, tl.c.prev, tl.c.t, tl.c.t_next)).all())
    for f in PERIODS:
        assert paths.moves(s, STAGES, f) == recomputed(s, f), f  # from the daily counts
        assert paths.moves(s, STAGES, f, [col(Contact.owner).is_not(None)]) == recomputed(s, f), f  # from the paths
        mine = Filters(f.since, f.until, REP2)
        assert paths.moves(s, STAGES, mine) == recomputed(s, mine), f
        assert history(s, f, kept=True) == history(s, f, kept=False), f


def conversion(rows: list[ConversionRow]) -> list[tuple[int, int]]:
    return [(c["entered"], c["advanced"]) for c in rows]


def test_kept_incrementally_through_a_correction(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(paths, "OVERLAP", 0)  # only what changed is read again, so the deltas are what is tested
    period = Filters(date(2026, 11, 1), date(2026, 11, 10))
    with session_scope(engine.db) as s:
        ids = seed_report(s)
        assert paths.refresh(s, STAGES) == 6  # the first run: every contact's path
    with session_scope(engine.db) as s:
        assert paths.refresh(s, STAGES) == 0  # nothing new: nothing read
        # the hand-worked figures of tests/integration/test_report.py
        assert conversion(paths.moves(s, STAGES, period)[0]) == [(3, 2), (2, 1), (2, 0), (0, 0)]
        assert history(s, period, kept=True)[8:] == [[2, 0, 2, 0, 1], [1, 1, 2, 0, 1]]  # 11-09, 11-10
        same_as_recomputed(s)
    with session_scope(engine.db) as s:
        # E (interested 11-10 23:00) is proven evaluating as of 11-09 22:30 by evidence that arrives late;
        # G comes in on 11-10 and stays aware
        s.add(StageChange(contact_id=ids["E"], from_stage="interested", to_stage="evaluating",
                          at=at("2026-11-09 22:30")))
        s.add(Contact(email="g@buyer.example", owner=REP2, stage="aware", created_at=at("2026-11-10 05:00"),
                      stage_entered_at=at("2026-11-10 05:00")))
        s.flush()
        assert paths.refresh(s, STAGES) == 2  # E and G
    with session_scope(engine.db) as s:
        # aware: B, C, E, G entered; B and E moved on. Interested: A; E reached it in the instant it reached
        # evaluating, so never stood there. Evaluating: A, B, E.
        conv, vel = paths.moves(s, STAGES, period)
        assert conversion(conv) == [(4, 2), (1, 1), (3, 0), (0, 0)]
        # E left aware after 22 h (0.9167 days), no longer 47 h: aware stays of
        # 0.9167, 3, 10 and 13 days
        assert vel[0] == {"stage": "aware", "n": 4, "median_days": 6.5, "p80_days": 11.2}
        assert vel[1] == {"stage": "interested", "n": 1, "median_days": 3.5, "p80_days": 3.5}
        assert history(s, period, kept=True)[8:] == [[1, 0, 3, 0, 1], [2, 0, 3, 0, 1]]
        same_as_recomputed(s)


def test_another_order_of_stages_rebuilds_every_path(engine: Engine) -> None:
    with session_scope(engine.db) as s:
        seed_report(s)
        paths.refresh(s, STAGES)
    with session_scope(engine.db) as s:
        assert paths.refresh(s, STAGES[:4]) == 6  # customer dropped from the rules: everything again
        f = Filters(date(2026, 11, 1), date(2026, 11, 10))
        assert paths.moves(s, STAGES[:4], f) == funnel.moves(s, STAGES[:4], f, funnel.timeline(
            STAGES[:4], None, active_since=f.start))


def sent(s: Session, f: Filters, kept: bool) -> list[tuple[object, ...]]:
    within = timedelta(days=14)
    return sorted(astuple(x) for x in (sends.sent_touches(s, f, within) if kept else
                                       activity.sent_touches(s, f, within)))


def test_sent_touches_kept_through_an_answer_a_send_and_a_correction(engine: Engine,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(paths, "OVERLAP", 0)
    period = Filters(date(2026, 11, 1), date(2026, 11, 10))
    with session_scope(engine.db) as s:
        ids = seed_report(s)
        paths.refresh(s, STAGES)
    with session_scope(engine.db) as s:
        # (rule, step, interaction, channel, sent, answered, advanced, opted out): test_report's figures
        assert sent(s, period, kept=True) == [
            ("playbook:aware", "welcome", "nurture", "email", 2, 1, 1, 1),
            ("playbook:interested", "check-in", "routine", "sms", 1, 1, 0, 0),
            ("trigger:pricing-follow-up", "pricing-follow-up", "routine", "email", 1, 0, 1, 0)]
        for f in PERIODS:
            for narrowed in (f, replace(f, owner=REP2), replace(f, playbook="playbook:aware"),
                             replace(f, stage="evaluating")):
                assert sent(s, narrowed, kept=True) == sent(s, narrowed, kept=False), narrowed
    with session_scope(engine.db) as s:
        t7, t6 = (s.execute(select(Touch).where(col(Touch.contact_id) == ids[c], col(Touch.step) == step)).scalar_one()
                  for c, step in (("A", "pricing-follow-up"), ("C", "check-in")))
        # T7 is answered; T6 (C's check-in, waiting for approval) goes out on 11-09, as the dispatcher sends:
        # an UPDATE the triggers see; C is proven interested on 11-08, 5 days after T2 (its welcome)
        s.execute(update(Touch).where(col(Touch.id) == t6.id).values(status=TouchStatus.SENT,
                                                                        sent_at=at("2026-11-09 12:00")))
        paths.refresh(s, STAGES)  # the send alone: only the triggers' mark says T6 changed
        assert ("playbook:interested", "check-in", "routine", "email", 1, 0, 0, 0) in sent(s, period, kept=True)
        s.add(Evidence(contact_id=ids["A"], type="email.replied", occurred_at=at("2026-11-04 09:00"), touch_id=t7.id))
        s.add(StageChange(contact_id=ids["C"], from_stage="aware", to_stage="interested", at=at("2026-11-08 10:00")))
        s.flush()
        paths.refresh(s, STAGES)
    with session_scope(engine.db) as s:
        assert sent(s, period, kept=True) == [
            ("playbook:aware", "welcome", "nurture", "email", 2, 1, 2, 1),
            ("playbook:interested", "check-in", "routine", "email", 1, 0, 0, 0),
            ("playbook:interested", "check-in", "routine", "sms", 1, 1, 0, 0),
            ("trigger:pricing-follow-up", "pricing-follow-up", "routine", "email", 1, 1, 1, 0)]
        for f in PERIODS:
            for narrowed in (f, replace(f, owner=REP2), replace(f, playbook="playbook:aware"),
                             replace(f, stage="evaluating")):
                assert sent(s, narrowed, kept=True) == sent(s, narrowed, kept=False), narrowed
        assert s.execute(select(func.count()).select_from(TouchMark)).scalar_one() == 1  # read and cleared but the last
    with session_scope(engine.db) as s:
        # A's sent pricing follow-up moved to D (rep2's, industry retail): a correction the triggers mark, so
        # the kept row's contact follows it, and the narrowed figures read the kept rows by contact
        s.execute(update(Contact).where(col(Contact.id) == ids["D"]).values(attributes={"industry": "retail"}))
        s.execute(update(Touch).where(col(Touch.contact_id) == ids["A"], col(Touch.step) == "pricing-follow-up")
                  .values(contact_id=ids["D"]))
        paths.refresh(s, STAGES)
    with session_scope(engine.db) as s:
        retail = replace(period, attrs=(("industry", "retail"),))
        # D's own check-in, and the follow-up (sent 11-03 08:00, answered) now followed by D's next stage
        # change, customer on 11-04 12:00 (28 hours: advanced; A's was evaluating on 11-05 22:00)
        assert sent(s, retail, kept=True) == [("playbook:interested", "check-in", "routine", "sms", 1, 1, 0, 0),
                                              ("trigger:pricing-follow-up", "pricing-follow-up", "routine", "email",
                                               1, 1, 1, 0)]
        for f in PERIODS:
            for narrowed in (replace(f, owner=REP2), replace(f, owner=REP2, playbook="trigger:pricing-follow-up"),
                             replace(f, attrs=(("industry", "retail"),)), replace(f, stage="customer")):
                assert sent(s, narrowed, kept=True) == sent(s, narrowed, kept=False), narrowed


def test_delivery_events_kept_per_day(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(paths, "OVERLAP", 0)
    period = Filters(date(2026, 11, 1), date(2026, 11, 10))
    zero = {"delivered": 0, "bounced": 0, "complained": 0, "unsubscribed": 0, "opted_out": 0}
    with session_scope(engine.db) as s:
        ids = seed_report(s)
        paths.refresh(s, STAGES)
    with session_scope(engine.db) as s:
        # test_report's hand-worked weeks (2026-11-01 is a Sunday: its week began on Monday 10-26)
        assert sends.deliverability(s, period) == [
            {"week": "2026-10-26", "channel": "email", **zero, "delivered": 1},
            {"week": "2026-11-02", "channel": "email", **zero, "bounced": 1, "unsubscribed": 1},
            {"week": "2026-11-02", "channel": "sms", **zero, "delivered": 1}]
        # a complaint on 11-09 (the week of 11-09) and a delivery on 11-01, arriving late
        s.add(Evidence(contact_id=ids["A"], type="email.complained", occurred_at=at("2026-11-09 08:00")))
        s.add(Evidence(contact_id=ids["C"], type="email.delivered", occurred_at=at("2026-11-01 23:59:59")))
        s.flush()
        paths.refresh(s, STAGES)
    with session_scope(engine.db) as s:
        assert sends.deliverability(s, period) == [
            {"week": "2026-10-26", "channel": "email", **zero, "delivered": 2},
            {"week": "2026-11-02", "channel": "email", **zero, "bounced": 1, "unsubscribed": 1},
            {"week": "2026-11-02", "channel": "sms", **zero, "delivered": 1},
            {"week": "2026-11-09", "channel": "email", **zero, "complained": 1}]
        for f in PERIODS:
            assert sends.deliverability(s, f) == activity.deliverability(s, f), f
