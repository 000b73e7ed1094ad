"""The kept stage paths and their daily counts (outreach.analytics.paths), kept incrementally: on
tests/support/report_data.py's history, then after a stage change corrected after the fact and a new
contact, every figure is worked out by hand and is the one recomputed from the stage changes, on
SQLite and PostgreSQL. Stages: aware 0, interested 1, evaluating 2, deciding 3, customer 4."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select
from sqlmodel import Session, col

from outreach.analytics import funnel, paths
from outreach.analytics.model import ConversionRow, Filters, VelocityRow
from outreach.db import session_scope
from outreach.engine import Engine
from outreach.models import Contact, StageChange, StagePath
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
