"""Outbound webhooks end to end: evidence recorded -> outbox (same transaction) -> signed POSTs to a
local receiver that verifies each with the `standardwebhooks` package (an independent implementation
of the specification), fails for a while, then recovers. Every event arrives exactly once, each
contact's in order, and the failures never touched the evidence."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from channels.webhook_out import WebhookSender
from outreach.contacts import import_csv
from outreach.db import session_scope
from outreach.engine import Engine
from outreach.evidence import EvidenceIn
from outreach.models import Evidence, WebhookDelivery
from outreach.outbound import deliveries
from outreach.project import Project
from outreach.scheduler import start_scheduler
from tests.support import at, make_project
from tests.support.receiver import SECRET, Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(failures=3)
    yield r
    r.close()


def test_every_event_arrives_once_in_order_per_contact_after_the_receiver_recovers(
        database: str, tmp_path: Path, receiver: Receiver) -> None:
    root = make_project(tmp_path / "proj", database, outbound_webhooks=[
        {"url": receiver.url, "secret": SECRET},
        {"url": receiver.url + "/stages-only", "secret": SECRET, "events": ["stage.changed"]}])
    engine = Engine(Project.open(root))
    people = tmp_path / "people.csv"
    people.write_text("email,external_id\na@example.org,A\nb@example.org,B\n")
    with session_scope(engine.db) as s:
        import_csv(s, people, region="US", first_stage="aware", now=at("2026-03-02 09:00"))
    t0 = at("2026-03-02 10:00")
    engine.record([EvidenceIn("email.replied", t0, "inbound", email="a@example.org", dedupe_key="r1"),
                   EvidenceIn("email.replied", t0, "inbound", email="b@example.org", dedupe_key="r2")], now=t0)
    engine.record([EvidenceIn("meeting.accepted", t0 + timedelta(minutes=5), "inbound", email="a@example.org",
                              dedupe_key="m1"),
                   EvidenceIn("email.unsubscribed", t0 + timedelta(minutes=6), "sendgrid", email="b@example.org",
                              dedupe_key="u1")], now=t0 + timedelta(minutes=6))
    with session_scope(engine.db) as s:
        assert s.execute(select(func.count()).select_from(Evidence)).scalar_one() == 4  # recorded regardless
        queued = s.execute(select(func.count()).select_from(WebhookDelivery)).scalar_one()
    # a: replied, stage.changed, meeting.accepted, stage.changed; b: replied, stage.changed, opted_out:
    # 7 to the first receiver, 3 stage changes to the second
    assert queued == 10
    sender = WebhookSender(timeout=5)
    now = t0 + timedelta(minutes=6)
    for _ in range(8):  # each run 30 s after the last: past every backoff the failures caused
        engine.deliver_webhooks(sender, now)
        now += timedelta(seconds=30)
    sender.close()

    assert receiver.refused == 0
    assert len(receiver.ids) == len(set(receiver.ids)) == 10  # each delivery exactly once
    main = [p for p in receiver.accepted if p["path"] == "/hooks"]
    assert set(main[0]) == {"type", "timestamp", "data", "path"}

    def told(email: str, payloads: list[dict[str, Any]]) -> list[str]:
        return [p["type"] + (f":{p['data']['to']}" if p["type"] == "stage.changed" else "")
                for p in payloads if p["data"]["contact"]["email"] == email]

    assert told("a@example.org", main) == ["email.replied", "stage.changed:interested", "meeting.accepted",
                                           "stage.changed:evaluating"]
    assert told("b@example.org", main) == ["email.replied", "stage.changed:interested", "contact.opted_out"]
    stages = [p for p in receiver.accepted if p["path"] == "/hooks/stages-only"]
    assert sorted(told("a@example.org", stages) + told("b@example.org", stages)) == [
        "stage.changed:evaluating", "stage.changed:interested", "stage.changed:interested"]
    with session_scope(engine.db) as s:
        log = deliveries(s)
    assert {d["status"] for d in log} == {"delivered"} and sum(d["attempts"] for d in log) == 13
    assert any(d["last_error"] is None and d["attempts"] > 1 for d in log)


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_the_scheduler_delivers_by_itself(database: str, tmp_path: Path) -> None:
    receiver = Receiver(failures=1)
    root = make_project(tmp_path / "proj", database, outbound_webhooks=[{"url": receiver.url, "secret": SECRET,
                                                                         "events": ["email.replied"]}],
                        **{"dispatch.poll_every": "1s"})
    engine = Engine(Project.open(root))
    people = tmp_path / "people.csv"
    people.write_text("email\na@example.org\n")
    with session_scope(engine.db) as s:
        import_csv(s, people, region="US", first_stage="aware", now=at("2026-03-02 09:00"))
    scheduler, jobs = start_scheduler(engine)
    try:
        engine.record([EvidenceIn("email.replied", at("2026-03-02 10:00"), "inbound", email="a@example.org")])
        deadline = time.monotonic() + 20
        while not receiver.accepted and time.monotonic() < deadline:
            time.sleep(0.2)  # the first attempt fails; the retry 5 s later gets through
    finally:
        jobs.dispatcher.stop.set()
        scheduler.shutdown(wait=True)
        receiver.close()
    assert [p["type"] for p in receiver.accepted] == ["email.replied"]
