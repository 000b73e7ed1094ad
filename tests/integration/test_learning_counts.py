"""Channel learning in the engine: the counts kept incrementally (on SQLite and PostgreSQL) equal a
recount from the database, and what the planner picks from them.
The pure choice is tests/unit/test_channel_choice.py."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from channels.base import OutgoingMessage, SendResult
from outreach.contact_info import channel_picks
from outreach.contacts import import_csv
from outreach.db import session_scope
from outreach.engine import Engine
from outreach.evidence import EvidenceIn
from outreach.learning import counts as learning_counts
from outreach.learning.learner import Counts
from outreach.models import Contact, Touch
from outreach.project import Project
from outreach.queue import approve_all
from outreach.testing import RecordingProvider
from tests.support import ROOT, at

ROUTINE = ["email", "sms"]
MONDAY = at("2026-03-02 17:00")  # inside every sample contact's send window but Helsinki's


def load(engine: Engine) -> dict[str, int]:
    with session_scope(engine.db) as s:
        import_csv(s, ROOT / "contacts.csv", region="US", first_stage="aware", now=MONDAY)
        return {c.email: c.id for c in s.exec(select(Contact)).all()}  # type: ignore[misc]


def sent(engine: Engine, **where: object) -> list[Touch]:
    with session_scope(engine.db) as s:
        q = select(Touch).where(Touch.status == "sent")
        for k, v in where.items():
            q = q.where(getattr(Touch, k) == v)
        return list(s.exec(q.order_by(Touch.id)).all())


def test_incremental_counts_equal_a_recount(engine: Engine) -> None:
    ids = load(engine)
    ada, alan, linus = ids["ada@analytical.example"], ids["alan@bletchley.example"], ids["linus@kernel.example"]
    engine.plan(MONDAY)
    engine.dispatch(MONDAY)
    welcome = {t.contact_id: t for t in sent(engine, step="welcome")}
    assert alan in welcome and linus not in welcome  # Helsinki's evening: not sent yet
    grace, margaret = ids["grace@cobol.example"], ids["margaret@apollo.example"]
    later = MONDAY + timedelta(hours=1)
    engine.record([
        EvidenceIn("email.opened", later, "test", touch_id=welcome[grace].id),  # an open teaches nothing
        EvidenceIn("email.clicked", later, "test", touch_id=welcome[alan].id),
        EvidenceIn("email.replied", later, "test", touch_id=welcome[alan].id),  # the same touch: one answer
        EvidenceIn("email.unsubscribed", later, "test", touch_id=welcome[margaret].id),
        EvidenceIn("meeting.accepted", later, "test", contact_id=alan),  # no touch: no channel to credit
    ], now=later)
    tuesday = at("2026-03-03 15:00")
    with session_scope(engine.db) as s:
        approve_all(s, tuesday)
    engine.dispatch(tuesday)
    meetings = sent(engine, channel="meeting")
    assert [t.contact_id for t in meetings] == [alan]
    engine.record([EvidenceIn("meeting.declined", tuesday, "test", touch_id=meetings[0].id),
                   EvidenceIn("email.clicked", tuesday, "test", contact_id=ada)], now=tuesday)
    with session_scope(engine.db) as s:
        mine, pop = learning_counts.stored(s)
        assert (mine, pop) == learning_counts.recount(s, engine.project.rules)
    assert mine[(alan, "nurture", "email")] == Counts(1, 1, 0)
    assert mine[(grace, "nurture", "email")] == Counts(1, 0, 0)
    assert mine[(margaret, "nurture", "email")] == Counts(1, 0, 1)
    assert mine[(alan, "strategic", "meeting")] == Counts(1, 0, 1)
    assert pop[("attr:industry", "finance", "nurture", "email")].responses == 1
    assert pop[("stage", "evaluating", "strategic", "meeting")] == Counts(1, 0, 1)
    with session_scope(engine.db) as s:  # rebuilding from scratch changes nothing
        learning_counts.rebuild(s, engine.project.rules)
    with session_scope(engine.db) as s:
        assert learning_counts.stored(s) == (mine, pop)


class Killed(BaseException):
    """The process dying mid-batch (SIGKILL, OOM): nothing after it in the batch runs its cleanup."""


class DiesOnThirdSend(RecordingProvider):
    def __init__(self) -> None:
        super().__init__()
        self.taken = 0
        self.gate = threading.Lock()  # the dispatcher sends from several threads

    def send(self, message: OutgoingMessage) -> SendResult:
        with self.gate:
            self.taken += 1
            if self.taken > 2:
                raise Killed
        return super().send(message)


def test_a_batch_killed_mid_way_leaves_counts_equal_to_a_recount(project_path: Path) -> None:
    """Each send is counted in the transaction that records it (issue 12, finding 2): the two sends
    recorded before the process died are counted, the rest are not, and nothing is counted twice."""
    engine = Engine(Project.open(project_path), providers=DiesOnThirdSend().as_providers())
    load(engine)
    engine.plan(MONDAY)
    with pytest.raises(Killed):
        engine.dispatch(MONDAY)
    with session_scope(engine.db) as s:
        mine, pop = learning_counts.stored(s)
        assert (mine, pop) == learning_counts.recount(s, engine.project.rules)
    assert sum(c.sent for c in mine.values()) == len(sent(engine)) == 2


def test_contacts_show_and_the_planner_use_the_learned_channel(sqlite_engine: Engine) -> None:
    engine = sqlite_engine
    ids = load(engine)
    ada = ids["ada@analytical.example"]
    with session_scope(engine.db) as s:  # two answers by sms to routine touches, as the hooks count them
        learning_counts.add_counts(s, {(ada, "routine", "sms"): [2, 2, 0]}, {})
    with session_scope(engine.db) as s:
        contact = s.get(Contact, ada)
        picks = channel_picks(s, engine, contact)
    assert picks["routine"] == {"channel": "sms", "reason": "learned: 2/2 responses on sms for routine"}
    assert picks["reminder"]["channel"] == "sms" and picks["strategic"]["reason"].startswith("default order")
    engine.record([EvidenceIn("email.clicked", MONDAY, "test", contact_id=ada)], now=MONDAY)
    engine.plan(MONDAY + timedelta(days=1))
    with session_scope(engine.db) as s:
        check_in = s.exec(select(Touch).where(Touch.contact_id == ada, Touch.step == "check-in")).one()
    assert (check_in.channel, check_in.channel_reason) == ("sms", "learned: 2/2 responses on sms for routine")


def test_a_failure_in_counting_never_costs_the_send(project_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Counting runs in a savepoint of the send's transaction: when it fails, the send is still recorded."""
    def broken(*_: object) -> None:
        raise ValueError("math domain error")

    monkeypatch.setattr("outreach.engine.count_sends", broken)
    provider = RecordingProvider()
    engine = Engine(Project.open(project_path), providers=provider.as_providers())
    load(engine)
    engine.plan(MONDAY)
    result = engine.dispatch(MONDAY)
    assert result.sent == len(provider.sent) == len(sent(engine)) > 0
    with session_scope(engine.db) as s:
        assert learning_counts.stored(s) == ({}, {})
