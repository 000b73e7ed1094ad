"""Daily stage snapshots on SQLite and PostgreSQL: a past day shows what the engine knew then even
after a stage is corrected after the fact; days before snapshots began are reconstructed and say so."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select
from sqlmodel import col

from outreach.analytics.build import build_report
from outreach.analytics.model import Filters, Report
from outreach.analytics.snapshots import take_snapshots
from outreach.db import session_scope
from outreach.engine import Engine
from outreach.models import Contact, SnapshotDay, StageChange
from tests.support import at


def report(engine: Engine, owner: str | None = None, today: date | None = None) -> Report:
    with session_scope(engine.db) as s:
        return build_report(s, engine.project.rules, Filters(date(2026, 11, 1), date(2026, 11, 3), owner),
                            timedelta(days=14), today=today)


def counts(r: Report, day: str) -> list[int]:
    return [h["count"] for h in r["history"] if h["date"] == day]


def test_a_kept_day_shows_what_was_known_then(engine: Engine) -> None:
    stages = engine.project.rules.stage_ids
    with session_scope(engine.db) as s:
        for name, owner in [("x", "rep1@example.com"), ("y", None)]:
            s.add(Contact(email=f"{name}@buyer.example", owner=owner, stage="aware",
                          created_at=at("2026-11-01 09:00"), stage_entered_at=at("2026-11-01 09:00")))
    with session_scope(engine.db) as s:
        # ten minutes after 11-02 ended: 11-02 taken live, 11-01 (before snapshots began) reconstructed
        assert take_snapshots(s, stages, at("2026-11-03 00:10")) == (1, 1)
    with session_scope(engine.db) as s:
        assert take_snapshots(s, stages, at("2026-11-03 00:20")) == (0, 0)  # kept already
        assert dict(s.execute(select(col(SnapshotDay.day), col(SnapshotDay.reconstructed))).all()) == {
            "2026-11-01": True, "2026-11-02": False}
        # on 11-03 evidence arrives proving x interested since 11-02 12:00
        x = s.execute(select(Contact).where(col(Contact.email) == "x@buyer.example")).scalar_one()
        assert x.id is not None
        s.add(StageChange(contact_id=x.id, from_stage="aware", to_stage="interested", at=at("2026-11-02 12:00")))
        x.stage = "interested"
        s.add(x)
    r = report(engine)
    assert counts(r, "2026-11-01") == [2, 0, 0, 0, 0]
    assert counts(r, "2026-11-02") == [2, 0, 0, 0, 0]  # as it was known at the end of 11-02
    assert counts(r, "2026-11-03") == [1, 1, 0, 0, 0]  # not kept yet: from the stage changes
    assert [f["now"] for f in r["funnel"]] == [1, 1, 0, 0, 0]
    assert counts(report(engine, "rep1@example.com"), "2026-11-02") == [1, 0, 0, 0, 0]
    # today is counted from the contacts' stages as they are now (a group-by), and agrees
    assert counts(report(engine, today=date(2026, 11, 3)), "2026-11-03") == [1, 1, 0, 0, 0]
    assert counts(report(engine, "rep1@example.com", date(2026, 11, 3)), "2026-11-03") == [0, 1, 0, 0, 0]
    with session_scope(engine.db) as s:
        # the engine was down for days: 11-03 to 11-05 are filled in, reconstructed (with the correction)
        assert take_snapshots(s, stages, at("2026-11-06 10:00")) == (0, 3)
    with session_scope(engine.db) as s:
        rebuilt = dict(s.execute(select(col(SnapshotDay.day), col(SnapshotDay.reconstructed))).all())
        assert rebuilt["2026-11-05"] is True and len(rebuilt) == 5
    assert counts(report(engine), "2026-11-03") == [1, 1, 0, 0, 0]
    assert counts(report(engine, "rep1@example.com"), "2026-11-03") == [0, 1, 0, 0, 0]
