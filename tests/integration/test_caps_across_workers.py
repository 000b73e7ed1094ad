"""Caps hold across workers: a touch another worker has claimed and not yet settled counts against the
contact's caps (issue 12, finding 1), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import select
from sqlmodel import col

from outreach.db import session_scope
from outreach.engine import Engine
from outreach.models import Contact, Touch, TouchStatus
from outreach.project import Project
from outreach.testing import FixedClock, RecordingProvider
from tests.support import ALWAYS, make_project


def _two_due_touches(engine: Engine, clock: FixedClock) -> tuple[int, int]:
    with session_scope(engine.db) as s:
        contact = Contact(email="ada@analytical.example", stage="aware", timezone="Europe/London")
        s.add(contact)
        s.flush()
        touches = [Touch(contact_id=contact.id or 0, dedupe_key=f"t{i}", stage="aware", rule="playbook:aware",
                         step=f"step{i}", interaction="routine", content="aware/welcome", channel="email",
                         status=TouchStatus.APPROVED, due_at=clock()) for i in (1, 2)]
        s.add_all(touches)
        s.flush()
        return touches[0].id or 0, touches[1].id or 0


def test_two_workers_together_keep_a_day_cap(tmp_path: Path, database: str) -> None:
    root = make_project(tmp_path / "proj", database, **{
        "policy.send_windows": {"email": ALWAYS, "sms": ALWAYS, "meeting": ALWAYS},
        "policy.caps": {"all": {"day": 1}}, "dispatch.batch_size": 1})
    provider, clock = RecordingProvider(), FixedClock("2026-03-03 12:00")
    engine = Engine(Project.open(root), providers=provider.as_providers())
    first, second = _two_due_touches(engine, clock)
    a, b = engine.dispatcher(), engine.dispatcher()
    a.worker_id, b.worker_id = "worker-a", "worker-b"
    a.throttle = b.throttle = False  # the fixed clock drives time, as run_once(now) would set
    # both claim before either sends: each batch is one touch to the same contact
    claimed_a, claimed_b = a.claim(clock()), b.claim(clock())
    assert (claimed_a, claimed_b) == ([first], [second])
    a._process(claimed_a, clock())
    b._process(claimed_b, clock())
    assert len(provider.sent) == 1
    with session_scope(engine.db) as s:
        rows = {t.id: t for t in s.execute(select(Touch).where(col(Touch.id).in_([first, second]))).scalars()}
    assert sorted(t.status for t in rows.values()) == [TouchStatus.APPROVED, TouchStatus.SENT]
    waiting = next(t for t in rows.values() if t.status == TouchStatus.APPROVED)
    assert waiting.due_at > clock() and "another worker" in (waiting.reason or "")
    # once the other send has settled, the cap itself is what the touch waits for: tomorrow
    clock.advance(timedelta(minutes=2))
    assert engine.dispatch(clock()).sent == 0
    assert len(provider.sent) == 1
    with session_scope(engine.db) as s:
        later = s.get_one(Touch, waiting.id)
    assert later.status == TouchStatus.APPROVED and later.due_at.date() > clock().date()
