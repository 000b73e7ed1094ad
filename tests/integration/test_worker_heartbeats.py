"""Worker heartbeats (issue 19): the touches of a worker whose beat stopped are settled by the live
ones (the provider's recorded answer makes one `sent`, else `uncertain`; never re-sent), a live or a
slow-but-beating worker's touches are left alone, a clean stop settles its own leftovers, and the
lease stays the backstop for touches no registered worker holds. On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlmodel import col

from outreach.db import session_scope
from outreach.dispatcher import recover
from outreach.engine import Engine
from outreach.errors import ConfigError
from outreach.models import Contact, Touch, TouchStatus, Worker
from outreach.project import Project
from outreach.testing import RecordingProvider
from outreach.workers import Heartbeat, register, retire, settle_dead
from tests.support import ALWAYS, at, make_project

NOW = at("2026-03-03 12:00")
TIMEOUT = timedelta(seconds=30)


def _engine(tmp_path: Path, database: str) -> Engine:
    root = make_project(tmp_path / "proj", database, **{
        "policy.send_windows": {"email": ALWAYS, "sms": ALWAYS, "meeting": ALWAYS}})
    return Engine(Project.open(root), providers=RecordingProvider().as_providers())


def _claimed(engine: Engine, claims: list[tuple[str | None, datetime, str | None]]) -> list[int]:
    """One `sending` touch per (claimed_by, claimed_at, provider_message_id)."""
    with session_scope(engine.db) as s:
        contact = Contact(email="ada@analytical.example", stage="aware")
        s.add(contact)
        s.flush()
        touches = [Touch(contact_id=contact.id or 0, dedupe_key=f"t{i}", stage="aware", rule="playbook:aware",
                         step=f"step{i}", interaction="routine", content="aware/welcome", channel="email",
                         status=TouchStatus.SENDING, due_at=at_, claimed_by=by, claimed_at=at_,
                         provider_message_id=answer)
                   for i, (by, at_, answer) in enumerate(claims)]
        s.add_all(touches)
        s.flush()
        return [t.id or 0 for t in touches]


def _status(engine: Engine, ids: list[int]) -> list[str]:
    with session_scope(engine.db) as s:
        found = dict(s.execute(select(col(Touch.id), col(Touch.status)).where(col(Touch.id).in_(ids))).all())
    return [str(found[i]) for i in ids]


def _workers(engine: Engine) -> set[str]:
    with session_scope(engine.db) as s:
        return set(s.execute(select(col(Worker.id))).scalars())


def test_a_dead_workers_touches_are_settled_and_the_live_ones_left(tmp_path: Path, database: str) -> None:
    engine = _engine(tmp_path, database)
    register(engine.db, "dead:1:aa", NOW - timedelta(minutes=5))
    register(engine.db, "dead:1:aa", NOW - timedelta(seconds=31))  # its last beat: just past the timeout
    register(engine.db, "live:2:bb", NOW - timedelta(seconds=2))
    register(engine.db, "slow:3:cc", NOW - timedelta(minutes=10))  # started long ago,
    register(engine.db, "slow:3:cc", NOW - timedelta(seconds=20))  # a missed beat or two: not dead
    ids = _claimed(engine, [
        ("dead:1:aa", NOW - timedelta(seconds=40), "sg-answered"),  # the provider's answer was recorded
        ("dead:1:aa", NOW - timedelta(seconds=40), None),  # no answer recorded: nobody knows
        ("live:2:bb", NOW - timedelta(seconds=40), None),
        ("slow:3:cc", NOW - timedelta(minutes=8), None),  # a long batch, still beating
    ])
    done = settle_dead(engine.db, NOW, TIMEOUT)
    assert done.workers == ["dead:1:aa"] and done.uncertain == 1
    assert _status(engine, ids) == ["sent", "uncertain", "sending", "sending"]
    assert _workers(engine) == {"live:2:bb", "slow:3:cc"}, "the dead worker's row is cleaned up"
    with session_scope(engine.db) as s:
        reason = s.get(Touch, ids[1]).reason  # type: ignore[union-attr]
    assert reason and "stopped beating" in reason and "resend or drop" in reason
    assert settle_dead(engine.db, NOW + timedelta(seconds=5), TIMEOUT).workers == []  # nothing twice


def test_the_heartbeat_keeps_a_worker_alive_and_settles_the_others(tmp_path: Path, database: str) -> None:
    engine = _engine(tmp_path, database)
    clock = [NOW]
    heart = Heartbeat(engine.db, "me:1:aa", TIMEOUT, clock=lambda: clock[0])
    register(engine.db, "me:1:aa", NOW)
    register(engine.db, "other:2:bb", NOW)
    mine, theirs = _claimed(engine, [("me:1:aa", NOW, None), ("other:2:bb", NOW, None)])
    for _ in range(8):  # 40 s of beats every 5 s: the other worker beats no more
        clock[0] += timedelta(seconds=5)
        heart.tick()
    assert _status(engine, [mine, theirs]) == ["sending", "uncertain"]
    assert _workers(engine) == {"me:1:aa"}
    # taken for dead while it was stalled (its row deleted): the next beat registers it again
    with session_scope(engine.db) as s:
        s.execute(Worker.__table__.delete())  # type: ignore[attr-defined]
    heart.tick()
    assert _workers(engine) == {"me:1:aa"}


def test_a_clean_stop_settles_its_own_leftovers(tmp_path: Path, database: str) -> None:
    engine = _engine(tmp_path, database)
    register(engine.db, "me:1:aa", NOW)
    register(engine.db, "other:2:bb", NOW)
    ids = _claimed(engine, [("me:1:aa", NOW, "sg-1"), ("me:1:aa", NOW, None), ("other:2:bb", NOW, None)])
    assert retire(engine.db, "me:1:aa", NOW + timedelta(seconds=1)) == 1
    assert _status(engine, ids) == ["sent", "uncertain", "sending"]
    assert _workers(engine) == {"other:2:bb"}


def test_the_lease_stays_the_backstop(tmp_path: Path, database: str) -> None:
    """Touches claimed by no registered worker (`outreach dispatch`, rows from before heartbeats) wait
    for the lease, as before."""
    engine = _engine(tmp_path, database)
    ids = _claimed(engine, [(None, NOW - timedelta(minutes=11), "sg-1"), ("old:9", NOW - timedelta(minutes=11), None),
                            ("old:9", NOW - timedelta(minutes=9), None)])
    assert settle_dead(engine.db, NOW, TIMEOUT).workers == []
    assert _status(engine, ids) == ["sending", "sending", "sending"]
    assert recover(engine.db, NOW, timedelta(minutes=10)) == 1
    assert _status(engine, ids) == ["sent", "uncertain", "sending"]


@pytest.mark.parametrize(("value", "message"), [("1s", "at least 3s"), ("1h", "at most 10m")])
def test_worker_timeout_is_checked(tmp_path: Path, value: str, message: str) -> None:
    root = make_project(tmp_path / "proj", f"sqlite:///{tmp_path / 'x.db'}", **{"dispatch.worker_timeout": value})
    with pytest.raises(ConfigError) as caught:
        Project.open(root)
    assert message in str(caught.value)
