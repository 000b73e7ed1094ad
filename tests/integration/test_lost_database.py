"""A database lost mid-batch strands nothing (issue 12, finding 4): the touch whose outcome could not
be recorded is the only one left for recovery; the touches not yet attempted go back to the queue."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlmodel import col

from channels.base import OutgoingMessage
from outreach.db import session_scope
from outreach.dispatcher import Dispatcher, DispatchResult
from outreach.engine import Engine
from outreach.models import Contact, Touch, TouchStatus
from outreach.project import Project
from outreach.testing import FixedClock, RecordingProvider
from tests.support import ALWAYS, make_project


def test_untried_touches_go_back_to_the_queue(tmp_path: Path, database: str, monkeypatch: object) -> None:
    root = make_project(tmp_path / "proj", database, **{
        "policy.send_windows": {"email": ALWAYS, "sms": ALWAYS, "meeting": ALWAYS},
        "dispatch.batch_size": 5, "dispatch.concurrency": 1})
    provider, clock = RecordingProvider(), FixedClock("2026-03-03 12:00")
    engine = Engine(Project.open(root), providers=provider.as_providers())
    with session_scope(engine.db) as s:
        for i in range(5):
            contact = Contact(email=f"buyer{i}@example.org", stage="aware")
            s.add(contact)
            s.flush()
            s.add(Touch(contact_id=contact.id or 0, dedupe_key=f"t{i}", stage="aware", rule="playbook:aware",
                        step="welcome", interaction="routine", content="aware/welcome", channel="email",
                        status=TouchStatus.APPROVED, due_at=clock()))
    real = Dispatcher._attempt
    calls: list[int] = []

    def flaky(self: Dispatcher, touch: Touch, contact: Contact, message: OutgoingMessage,
              now: object) -> DispatchResult:
        calls.append(touch.id or 0)
        if len(calls) == 2:  # the provider takes it, then the database is gone before it is recorded
            provider.send(message)
            raise OperationalError("UPDATE touch", {}, Exception("server closed the connection"))
        return real(self, touch, contact, message, now)  # type: ignore[arg-type]

    setattr(Dispatcher, "_attempt", flaky)  # noqa: B010
    try:
        dispatcher = engine.dispatcher()
        dispatcher.throttle = False  # the fixed clock drives time, as run_once(now) would set
        result = dispatcher._process(dispatcher.claim(clock()), clock())  # one batch
    finally:
        setattr(Dispatcher, "_attempt", real)  # noqa: B010
    assert result.sent == 1 and len(provider.sent) == 2
    with session_scope(engine.db) as s:
        rows = list(s.execute(select(Touch).order_by(col(Touch.id))).scalars())
    by_status = {st: [t.id for t in rows if t.status == st] for st in {t.status for t in rows}}
    assert by_status[TouchStatus.SENT] == [calls[0]]
    assert by_status[TouchStatus.SENDING] == [calls[1]]  # its outcome is unknown: recovery settles it
    assert len(by_status[TouchStatus.APPROVED]) == 3  # never attempted: back in the queue at once
    assert all(t.attempts == 0 for t in rows if t.status == TouchStatus.APPROVED)
    # the next round sends them; the unknown one is never sent again by itself
    assert engine.dispatch(clock()).sent == 3 and len(provider.sent) == 5
