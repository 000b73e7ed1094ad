"""SMS pacing does not hold email up, and `sent_at` is when the provider took each message
(issue 12, finding 5). Real time, about two seconds: the limiter paces only real time."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlmodel import col

from outreach.db import session_scope
from outreach.engine import Engine
from outreach.models import Touch
from outreach.project import Project
from outreach.testing import RecordingProvider
from tests.support import ALWAYS, make_project
from tests.support.touches import approved_touches


def test_email_does_not_wait_behind_paced_sms(tmp_path: Path) -> None:
    root = make_project(tmp_path / "proj", f"sqlite:///{tmp_path / 'pace.db'}", **{
        "policy.send_windows": {"email": ALWAYS, "sms": ALWAYS, "meeting": ALWAYS},
        "sender.sms_rate": 2.0, "dispatch.concurrency": 2})
    provider = RecordingProvider()
    engine = Engine(Project.open(root), providers=provider.as_providers())
    due = datetime.now(UTC) - timedelta(hours=1)
    with session_scope(engine.db) as s:
        # the SMS are due first, so they come first in the batch
        approved_touches(s, 6, lambda i: due + timedelta(minutes=i), sms=lambda i: i < 4)
    started = datetime.now(UTC)
    result = engine.dispatcher().run_once()  # real time: the SMS limiter paces
    assert result.sent == 6, result.reasons
    with session_scope(engine.db) as s:
        rows = list(s.execute(select(Touch).order_by(col(Touch.id))).scalars())
    sms_at = sorted((t.sent_at or started).replace(tzinfo=UTC) for t in rows if t.channel == "sms")
    email_at = [(t.sent_at or started).replace(tzinfo=UTC) for t in rows if t.channel == "email"]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(sms_at)]
    # 2 a second: 4 SMS span at least 1.5 s, unpaced they would take milliseconds. The span, not each gap:
    # on a loaded machine one stamp may come late, shortening the next gap (0.38 s seen under mutmut)
    assert len(sms_at) == 4 and sum(gaps) >= 1.2 and min(gaps) >= 0.2, gaps
    # not behind them: every email went out while SMS were still being paced (an order, not a stopwatch)
    assert max(email_at) < sms_at[-1], (email_at, sms_at)
