"""`retention:`: the prune job empties old message bodies and provider payloads, deletes old raw
events, and leaves recent ones, staff-written evidence and every counted row alone."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlmodel import col

from outreach.config import Retention
from outreach.contacts import import_csv
from outreach.db import session_scope
from outreach.engine import Engine
from outreach.models import Evidence, Message, Touch, TouchStatus, UnattributedEvent
from outreach.personal import prune
from tests.support import at

NOW = at("2026-06-01 12:00")


def test_prune_applies_retention(engine: Engine, tmp_path: Path) -> None:
    people = tmp_path / "p.csv"
    people.write_text("email\nada@example.org\n")
    with session_scope(engine.db) as s:
        import_csv(s, people, region="US", first_stage="aware", now=NOW - timedelta(days=400))
        for age, n in ((200, 1), (10, 2)):
            when = NOW - timedelta(days=age)
            touch = Touch(contact_id=1, dedupe_key=f"t{n}", stage="aware", rule="playbook:aware", step="s",
                          interaction="nurture", content="c", status=TouchStatus.SENT, due_at=when)
            s.add(touch)
            s.flush()
            s.add(Message(touch_id=touch.id or 0, channel="email", provider="outbox", to="ada@example.org",
                          subject="Hi", text=f"body {n}", html="<p>b</p>", created_at=when))
            s.add(Evidence(contact_id=1, type="email.replied", occurred_at=when, recorded_at=when, source="inbound",
                           data={"text": f"reply {n}"}))
            s.add(Evidence(contact_id=1, type="call.logged", occurred_at=when, recorded_at=when, source="cli",
                           data={"note": f"note {n}"}))
            s.add(UnattributedEvent(source="inbound", type="email.replied", occurred_at=when, received_at=when,
                                    reason="r", data={"x": n}))
    retention = Retention.model_validate({"message_bodies": "180d", "provider_payloads": "90d"})
    with session_scope(engine.db) as s:
        done = prune(s, retention, NOW)
    assert (done.messages, done.evidence, done.unattributed) == (1, 1, 1)
    with session_scope(engine.db) as s:
        bodies = sorted((m.text, m.html) for m in s.execute(select(Message)).scalars())
        assert bodies == [("", None), ("body 2", "<p>b</p>")]
        data = sorted((e.source, str(e.data)) for e in s.execute(select(Evidence)).scalars())
        assert data == [("cli", "{'note': 'note 1'}"), ("cli", "{'note': 'note 2'}"),
                        ("inbound", "{'text': 'reply 2'}"), ("inbound", "{}")]
        assert s.execute(select(func.count()).select_from(UnattributedEvent)).scalar_one() == 1
        assert s.execute(select(func.count()).select_from(Touch).where(
            col(Touch.status) == TouchStatus.SENT)).scalar_one() == 2
    with session_scope(engine.db) as s:
        again = prune(s, retention, NOW)  # nothing left to do: each row is touched once
    assert (again.messages, again.evidence, again.unattributed) == (0, 0, 0)
