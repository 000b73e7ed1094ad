"""`experiment.concluded` through the outbox to a receiver that verifies it with the independent
`standardwebhooks` package: once when a verdict is first reached (however often it is checked), and
once when a marketer stops the experiment (`outreach experiments stop`); nothing for a verdict that is
still too early, and nothing queued when the stop is rolled back."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select
from sqlmodel import col

from channels.webhook_out import WebhookSender
from outreach.db import session_scope
from outreach.engine import Engine
from outreach.experiments.conclude import announce_verdicts
from outreach.experiments.stop import stop_experiment
from outreach.models import StageChange, Touch, WebhookEvent
from outreach.project import Project
from tests.integration.test_experiments import LATER, add_contacts, set_rules
from tests.support import ALWAYS, make_project
from tests.support.receiver import SECRET, Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(failures=1)
    yield r
    r.close()


def _engine(tmp_path: Path, database: str, url: str) -> Engine:
    root = make_project(tmp_path / "proj", database, **{
        "policy.holdout": 0.1, "policy.send_windows.email": ALWAYS, "policy.send_windows.sms": ALWAYS,
        "outbound_webhooks": [{"url": url, "secret": SECRET, "events": ["experiment.concluded"]}]})
    set_rules(root, "fixed", 0)
    path = root / "rules" / "nurture.yaml"
    path.write_text(path.read_text().replace("allocation: fixed}", "allocation: fixed, min_sample: 50}"))
    return Engine(Project.open(root))


def _deliver(engine: Engine, now: datetime) -> None:
    sender = WebhookSender(timeout=5)
    for i in range(4):  # the receiver fails once: the retry goes after the 5 s backoff
        engine.deliver_webhooks(sender, now + timedelta(seconds=30 * i))
    sender.close()


def _events(engine: Engine) -> int:
    with session_scope(engine.db) as s:
        return int(s.execute(select(func.count()).select_from(WebhookEvent)).scalar_one())


def test_a_verdict_then_the_stop_are_each_told_once(tmp_path: Path, database: str, receiver: Receiver) -> None:
    engine = _engine(tmp_path, database, receiver.url)
    add_contacts(engine, 0, 400)
    engine.plan(LATER)
    rules, hooks = engine.project.rules, engine.settings.outbound_webhooks
    with session_scope(engine.db) as s:  # too early: no window has ended
        assert announce_verdicts(s, rules, hooks, LATER + timedelta(days=1)) == 0
    with session_scope(engine.db) as s:  # roi moves half its buyers on, the case study nobody
        roi = list(s.execute(select(col(Touch.contact_id)).where(col(Touch.variant) == "aware/roi")).scalars())
        s.execute(insert(StageChange), [{"contact_id": c, "from_stage": "aware", "to_stage": "interested",
                                         "at": LATER + timedelta(days=2)} for c in roi[::2]])
    done = datetime.now(UTC)  # the stop is stamped with the wall clock: deliver both then
    for _ in range(3):  # the check runs every 10 minutes: told once
        with session_scope(engine.db) as s:
            announce_verdicts(s, rules, hooks, done)
    assert _events(engine) == 1

    path = engine.project.path / "rules" / "nurture.yaml"
    with session_scope(engine.db) as s:
        stop_experiment(s, rules, engine.project.path, "case-vs-roi", "aware/roi", False, "ann@example.org", hooks)
    assert _events(engine) == 2
    assert "experiment:" in path.read_text()  # printed, not written
    _deliver(engine, datetime.now(UTC))

    assert receiver.refused == 0 and len(receiver.ids) == len(set(receiver.ids)) == 2
    verdict, stopped = sorted(receiver.accepted, key=lambda p: p["data"]["reason"] == "stopped")
    assert verdict["type"] == stopped["type"] == "experiment.concluded"
    assert verdict["data"]["reason"] == "verdict" and verdict["data"]["verdict"] == "winner:aware/roi"
    exp = verdict["data"]["experiment"]
    assert exp["id"] == "case-vs-roi" and exp["status"] == "running"
    assert {v["content"] for v in exp["variants"]} == {"aware/case-study", "aware/roi"}
    assert stopped["data"]["reason"] == "stopped" and stopped["data"]["promoted"] == "aware/roi"
    assert stopped["data"]["stopped_by"] == "ann@example.org"
    assert stopped["data"]["experiment"]["status"] == "stopped"


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_a_rolled_back_stop_tells_nothing(tmp_path: Path, database: str, receiver: Receiver) -> None:
    engine = _engine(tmp_path, database, receiver.url)
    with pytest.raises(RuntimeError), session_scope(engine.db) as s:
        stop_experiment(s, engine.project.rules, engine.project.path, "case-vs-roi", None, False, "cli",
                        engine.settings.outbound_webhooks)
        raise RuntimeError("the page failed after the stop")
    assert _events(engine) == 0
    with session_scope(engine.db) as s:
        stop_experiment(s, engine.project.rules, engine.project.path, "case-vs-roi", None, False, "cli",
                        engine.settings.outbound_webhooks)
    assert _events(engine) == 1
