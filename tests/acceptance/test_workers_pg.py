"""Several `outreach worker` processes on PostgreSQL, sending through the real SendGrid SDK to the
sandbox: every touch sent exactly once (both sides counted), none lost; workers killed with SIGKILL
mid-dispatch never cause a second send; a failing provider ends every touch sent or failed."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from outreach import db
from outreach.db import session_scope
from outreach.engine import Engine
from outreach.models import Contact, Touch
from outreach.project import Project
from outreach.sandbox.server import Sandbox
from tests.support import ALWAYS, make_project

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def worker_project(tmp_path: Path, url: str, sandbox_url: str, **extra: object) -> Engine:
    root = make_project(tmp_path / "proj", url, **{
        "providers.email": "sendgrid", "sendgrid.api_key": "SG.test-key", "sendgrid.api_base": sandbox_url,
        "sendgrid.webhook_public_key": "",  # no Event Webhook here
        "policy.send_windows": {"email": ALWAYS, "sms": ALWAYS, "meeting": ALWAYS},
        "policy.caps": {"all": {"day": 100}}, "dispatch.poll_every": "1s", "dispatch.plan_every": "1h",
        "dispatch.batch_size": 100, "dispatch.retry_base": "1s", **extra})
    return Engine(Project.open(root))


def seed(engine: Engine, n: int) -> None:
    """n contacts and their welcome touches, with raw set-based inserts."""
    now = db_now(engine)
    with session_scope(engine.db) as s:
        s.execute(Contact.__table__.insert(), [  # type: ignore[attr-defined]
            {"email": f"buyer{i}@example.org", "attributes": {}, "stage": "aware", "stage_entered_at": now,
             "stage_entry": 1, "created_at": now} for i in range(n)])
    assert engine.plan(now).queued == n


def db_now(engine: Engine):  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    return datetime.now(UTC) - timedelta(minutes=1)


def start_workers(engine: Engine, n: int, tmp_path: Path) -> list[subprocess.Popen[bytes]]:
    procs = []
    for i in range(n):
        log = (tmp_path / f"worker{i}.log").open("ab")
        procs.append(subprocess.Popen([sys.executable, "-m", "outreach.cli", "worker", "--project",
                                       str(engine.project.path)], stdout=log, stderr=log))
    return procs


def statuses(engine: Engine) -> Counter[str]:
    with session_scope(engine.db) as s:
        return Counter(dict(s.execute(select(Touch.status, func.count()).group_by(Touch.status)).all()))


def wait_until(cond, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.5)
    return False


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()


def received_touch_ids(sb: Sandbox) -> Counter[str]:
    return Counter(m["custom_args"]["outreach_touch_id"] for m in sb.messages("email"))


def test_three_workers_send_4000_touches_exactly_once(tmp_path: Path, pg_url: str) -> None:
    with Sandbox(callbacks=False) as sb:
        # batches of 50: 80 claims raced by three workers
        engine = worker_project(tmp_path, pg_url, sb.url, **{"dispatch.batch_size": 50})
        seed(engine, 4000)
        procs = start_workers(engine, 3, tmp_path)
        try:
            assert wait_until(lambda: statuses(engine).get("sent", 0) == 4000, 300), statuses(engine)
        finally:
            stop(procs)
        got = received_touch_ids(sb)
        assert len(got) == 4000 and max(got.values()) == 1  # each touch once, none lost
        with session_scope(engine.db) as s:
            ids = {str(i) for (i,) in s.execute(select(Touch.id).where(Touch.status == "sent"))}
            workers = s.execute(select(func.count(func.distinct(Touch.claimed_by)))).scalar()
        assert ids == set(got)
        assert workers == 3, "every worker took a share"
        assert all(p.returncode == 0 for p in procs), "workers stop cleanly on SIGTERM"


def test_sigkilled_workers_never_send_twice(tmp_path: Path, pg_url: str) -> None:
    rnd = random.Random(3)
    with Sandbox(callbacks=False) as sb:
        engine = worker_project(tmp_path, pg_url, sb.url, **{"dispatch.sending_lease": "2s",
                                                             "dispatch.batch_size": 20})
        seed(engine, 1500)
        for _ in range(5):  # kill at random moments, restart
            procs = start_workers(engine, 2, tmp_path)
            time.sleep(rnd.uniform(1.5, 4.0))
            for p in procs:
                p.send_signal(signal.SIGKILL)
                p.wait()
        procs = start_workers(engine, 2, tmp_path)
        try:  # let the survivors finish and housekeeping settle the orphans
            assert wait_until(lambda: not ({"approved", "sending"} & set(+statuses(engine))), 240), statuses(engine)
        finally:
            stop(procs)
        final = statuses(engine)
        assert set(final) <= {"sent", "failed", "uncertain"}, final
        got = received_touch_ids(sb)
        assert max(got.values()) == 1, "a touch reached the provider twice"
        with session_scope(engine.db) as s:
            sent = {str(i) for (i,) in s.execute(select(Touch.id).where(Touch.status == "sent"))}
            uncertain = {str(i) for (i,) in s.execute(select(Touch.id).where(Touch.status == "uncertain"))}
        assert sent <= set(got), "a touch marked sent never reached the provider"
        assert set(got) <= sent | uncertain, "a touch the provider took is neither sent nor uncertain"


def test_a_failing_provider_ends_every_touch_sent_or_failed(tmp_path: Path, pg_url: str) -> None:
    with Sandbox(callbacks=False) as sb:
        engine = worker_project(tmp_path, pg_url, sb.url, **{"dispatch.max_attempts": 4})
        seed(engine, 300)
        sb.fail_next(500, 150)
        sb.fail_next(429, 150, retry_after=1)
        procs = start_workers(engine, 2, tmp_path)
        try:
            assert wait_until(lambda: set(+statuses(engine)) <= {"sent", "failed"}, 240), statuses(engine)
        finally:
            stop(procs)
        final = statuses(engine)
        assert final["sent"] + final["failed"] == 300 and final["sent"] > 0
        with session_scope(engine.db) as s:
            reasons = [r for (r,) in s.execute(select(Touch.reason).where(Touch.status == "failed"))]
            retried = s.execute(select(func.count()).where(Touch.attempts > 1)).scalar()
        assert all(r and ("500" in r or "429" in r) for r in reasons)
        assert retried and retried >= 150, "failures were retried, not dropped"
        assert max(received_touch_ids(sb).values()) == 1


def test_claims_skip_locked_rows(pg_url: str, tmp_path: Path) -> None:
    """Two dispatchers claiming at once get disjoint batches (FOR UPDATE SKIP LOCKED)."""
    with Sandbox(callbacks=False) as sb:
        engine = worker_project(tmp_path, pg_url, sb.url)
        seed(engine, 400)
        a, b = engine.dispatcher(), engine.dispatcher()
        a.worker_id, b.worker_id = "a", "b"
        from concurrent.futures import ThreadPoolExecutor

        now = db_now(engine) + timedelta(minutes=2)
        with ThreadPoolExecutor(2) as pool:
            first, second = pool.map(lambda d: d.claim(now), [a, b])
        assert first and second and not set(first) & set(second)
        with engine.db.connect() as conn:
            assert conn.execute(text("select count(*) from touch where status = 'sending'")).scalar() == 200
    db.dispose_all()


def _worker_of(engine: Engine, pid: int) -> str | None:
    with engine.db.connect() as conn:
        return conn.execute(text("select id from worker where pid = :p"), {"p": pid}).scalar()


def _held(engine: Engine, worker: str) -> Counter[str]:
    """The statuses of the touches `worker` claimed."""
    with engine.db.connect() as conn:
        return Counter(dict(conn.execute(text("select status, count(*) from touch where claimed_by = :w "
                                              "group by status"), {"w": worker}).all()))


def test_a_killed_workers_touches_are_settled_by_the_survivor_in_seconds(tmp_path: Path, pg_url: str) -> None:
    """Issue 19: SIGKILL a worker mid-batch (its sends taken by the provider, the answers slow); the
    other one's heartbeat thread settles them within worker_timeout and a beat, not after the lease."""
    with Sandbox(callbacks=False) as sb:
        engine = worker_project(tmp_path, pg_url, sb.url, **{
            "dispatch.worker_timeout": "3s", "dispatch.batch_size": 10, "dispatch.concurrency": 2,
            "sendgrid.timeout": 30})
        seed(engine, 40)
        sb.fail_next(None, 1000, delay=4.0)  # each send taken at once, answered 4 s later: a 20 s batch
        (a,) = start_workers(engine, 1, tmp_path)
        procs = [a]
        try:
            assert wait_until(lambda: (w := _worker_of(engine, a.pid)) is not None and _held(engine, w)["sending"],
                              30), "worker A claimed a batch"
            dead = _worker_of(engine, a.pid)
            assert dead is not None
            (b,) = start_workers(engine, 1, tmp_path)
            procs.append(b)
            assert wait_until(lambda: _worker_of(engine, b.pid) is not None, 30), "worker B registered"
            time.sleep(4)  # longer than worker_timeout: A's batch goes on, and it beats, so B leaves it alone
            held = _held(engine, dead)
            assert held["sending"] and not held["uncertain"], held
            a.send_signal(signal.SIGKILL)
            a.wait()
            killed = time.monotonic()
            assert wait_until(lambda: not _held(engine, dead)["sending"], 60), _held(engine, dead)
            took = time.monotonic() - killed
            assert took < 15, f"settled {took:.1f} s after the kill (worker_timeout 3s)"
            held = _held(engine, dead)
            assert held["uncertain"] >= 1 and set(held) <= {"sent", "uncertain"}, held
            assert _worker_of(engine, a.pid) is None, "the dead worker's row is cleaned up"
        finally:
            stop(procs)
        assert b.returncode == 0
        assert _worker_of(engine, b.pid) is None, "a clean stop removes its own row"
        assert max(received_touch_ids(sb).values()) == 1, "nothing was sent twice"
