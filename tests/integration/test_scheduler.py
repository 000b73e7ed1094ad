"""The APScheduler wiring: the periodic jobs plan and dispatch on their own, a second process's
planner waits for the leader (PostgreSQL advisory lock), and shutdown claims nothing more."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from outreach.contacts import import_csv
from outreach.db import session_scope
from outreach.engine import Engine
from outreach.models import SnapshotDay, Touch
from outreach.project import Project
from outreach.scheduler import leader, start_scheduler
from tests.support import ALWAYS, ROOT, make_project


def always_open(path: Path, database: str) -> Engine:
    root = make_project(path, database, **{
        "policy.send_windows": {"email": ALWAYS, "sms": ALWAYS, "meeting": ALWAYS},
        "dispatch.poll_every": "1s", "dispatch.plan_every": "1s"})
    return Engine(Project.open(root))


def test_the_scheduler_plans_and_dispatches_by_itself(tmp_path: Path) -> None:
    engine = always_open(tmp_path / "p", f"sqlite:///{tmp_path / 's.db'}")
    with session_scope(engine.db) as s:
        import_csv(s, ROOT / "contacts.csv", region="US", first_stage="aware", now=datetime.now(UTC))
    scheduler, jobs = start_scheduler(engine)
    try:
        yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # the jobs run side by side: wait for the sends and the snapshot
            with session_scope(engine.db) as s:
                sent = s.exec(select(Touch).where(Touch.status == "sent")).all()
                days = s.exec(select(SnapshotDay.day)).all()
            if len(sent) == 6 and days:
                break
            time.sleep(0.3)
        assert len(sent) == 6
        assert {j.id for j in scheduler.get_jobs()} == {"plan", "dispatch", "housekeeping", "snapshots"}
        assert days == [yesterday]  # yesterday's stage counts kept for the dashboards, by the job at start
    finally:
        jobs.dispatcher.stop.set()
        scheduler.shutdown(wait=True)
    # stopped: an approved touch that falls due now is left for the next process, not claimed
    with session_scope(engine.db) as s:
        touch = s.exec(select(Touch).where(Touch.status == "sent")).first()
        assert touch is not None
        touch.status, touch.sent_at, touch.due_at = "approved", None, datetime.now(UTC)
        touch.dedupe_key += "-again"
        s.add(touch)
    assert jobs.dispatcher.run_once().claimed == 0
    with session_scope(engine.db) as s:
        assert s.get(Touch, touch.id).status == "approved"  # type: ignore[union-attr]


@pytest.mark.postgres
def test_one_planning_leader_on_postgres(pg_engine: Engine) -> None:
    engine = pg_engine
    with leader(engine) as first:
        with leader(Engine(engine.project)) as second:
            assert first and not second
    with leader(engine) as again:
        assert again
