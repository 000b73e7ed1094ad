"""`sender.sms_rate` holds across processes for one sending number (issue 12, finding 5): every
dispatcher takes its turn from one token bucket in the database. Two dispatchers on separate
connections send together on PostgreSQL; about three seconds of real time."""

from __future__ import annotations

import threading
import time
from bisect import bisect_right
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from channels.base import OutgoingMessage, SendResult
from outreach.db import session_scope
from outreach.dispatcher import DispatchResult
from outreach.engine import Engine
from outreach.models import Touch, TouchStatus
from outreach.project import Project
from outreach.testing import RecordingProvider
from tests.support import ALWAYS, make_project
from tests.support.touches import approved_touches

RATE = 4.0  # messages a second from the one number


class TimedProvider(RecordingProvider):
    """Notes when each message was handed over: what the number's rate paces."""

    def __init__(self) -> None:
        super().__init__()
        self.called: list[float] = []

    def send(self, message: OutgoingMessage) -> SendResult:
        self.called.append(time.time())
        return super().send(message)


def test_two_dispatchers_share_one_numbers_rate(tmp_path: Path, pg_url: str) -> None:
    root = make_project(tmp_path / "proj", pg_url, **{
        "policy.send_windows": {"email": ALWAYS, "sms": ALWAYS, "meeting": ALWAYS},
        "sender.sms_rate": RATE, "dispatch.batch_size": 2})
    provider = TimedProvider()
    engine = Engine(Project.open(root), providers=provider.as_providers())
    due = datetime.now(UTC) - timedelta(hours=1)
    with session_scope(engine.db) as s:
        approved_touches(s, 10, lambda i: due)
    workers = [engine.dispatcher(), engine.dispatcher()]  # each its own limiters, as two processes have
    workers[0].worker_id, workers[1].worker_id = "worker-a", "worker-b"
    results: list[DispatchResult] = []
    threads = [threading.Thread(target=lambda d=d: results.append(d.run_once())) for d in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sum(r.sent for r in results) == 10 and all(r.sent for r in results), results  # both sent
    stamps = sorted(provider.called)
    # one turn per 1/RATE s from the one number, whichever process sends: at most RATE in any second
    # (+1 for thread jitter on a loaded machine; two buckets of their own would allow 2 x RATE)
    busiest = max(bisect_right(stamps, at + 1.0) - i for i, at in enumerate(stamps))
    assert len(stamps) == 10 and busiest <= RATE + 1, stamps
    assert stamps[-1] - stamps[0] >= 9 * 0.8 / RATE, stamps


class LostAfterOne:
    """A number's bucket whose database goes away after the first turn."""

    def __init__(self) -> None:
        self.turns = 0

    def wait(self) -> None:
        self.turns += 1
        if self.turns > 1:
            raise OperationalError("UPDATE sendrate", {}, Exception("server closed the connection"))

    def slow_down(self, seconds: float) -> None:
        pass


def test_sms_waiting_for_a_turn_go_back_when_the_database_is_lost(tmp_path: Path) -> None:
    root = make_project(tmp_path / "proj", f"sqlite:///{tmp_path / 'lost.db'}", **{
        "policy.send_windows": {"email": ALWAYS, "sms": ALWAYS, "meeting": ALWAYS}})
    provider = RecordingProvider()
    engine = Engine(Project.open(root), providers=provider.as_providers())
    due = datetime.now(UTC) - timedelta(hours=1)
    with session_scope(engine.db) as s:
        approved_touches(s, 3, lambda i: due)
    dispatcher = engine.dispatcher()
    dispatcher.limiters[engine.settings.sender.sms_from] = LostAfterOne()
    dispatcher.throttle = True
    ids = dispatcher.claim(datetime.now(UTC))
    dispatcher._process(ids, datetime.now(UTC))
    with session_scope(engine.db) as s:
        statuses = sorted(t.status for t in s.execute(select(Touch)).scalars())
    assert len(provider.sent) == 1
    assert statuses == [TouchStatus.APPROVED, TouchStatus.APPROVED, TouchStatus.SENT]  # none left `sending`
