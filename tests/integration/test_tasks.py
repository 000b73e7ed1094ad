"""A rep's tasks planned on SQLite and PostgreSQL: a call step becomes a pending task due inside its
window in the buyer's zone and under the caps, a buyer without a number gets none, the dispatcher never
sends one, and the rep's outcome is evidence that moves the stage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlmodel import col

from outreach.contacts import import_csv
from outreach.db import session_scope
from outreach.engine import Engine
from outreach.errors import InvalidInput, InvalidTransition
from outreach.evidence import EvidenceIn
from outreach.models import Contact, Evidence, Touch, TouchStatus
from outreach.project import Project
from outreach.queue import transition
from tests.support import at
from tests.support.tasks import add_task_steps

SATURDAY = at("2026-03-07 12:00")


def _utc(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt


@pytest.fixture
def tasks_engine(project_path: Path) -> Engine:
    return Engine(Project.open(add_task_steps(project_path)))


def _seed(engine: Engine) -> dict[str, int]:
    with session_scope(engine.db) as s:
        import_csv(s, engine.project.path / "contacts.csv", region="US", first_stage=engine.project.rules.first_stage,
                   now=SATURDAY - timedelta(days=3))
        ids = {c.first_name or "": c.id or 0 for c in s.execute(select(Contact)).scalars()}
        # Linus had three touches this week: the weekly cap (3) holds his call until the first is a week old
        for n, hours in enumerate((50, 30, 1)):
            when = SATURDAY - timedelta(hours=hours)
            s.add(Touch(contact_id=ids["Linus"], dedupe_key=f"earlier:{n}", stage="aware", rule="playbook:aware",
                        step=f"earlier-{n}", interaction="nurture", content="aware/welcome", channel="email",
                        status=TouchStatus.SENT, due_at=when, sent_at=when, created_at=when, updated_at=when))
    clicked = SATURDAY - timedelta(days=2)
    engine.record([EvidenceIn("email.clicked", clicked, "cli", contact_id=i) for i in ids.values()], now=clicked)
    return ids


def _tasks(engine: Engine) -> dict[int, Touch]:
    with session_scope(engine.db) as s:
        return {t.contact_id: t for t in s.execute(select(Touch).where(col(Touch.step) == "intro-call")).scalars()}


def test_a_call_step_is_a_task_due_in_the_buyers_window_under_the_caps(tasks_engine: Engine) -> None:
    ids = _seed(tasks_engine)
    result = tasks_engine.plan(SATURDAY)
    assert result.by_channel["call"] == 5 and result.by_channel["social"] == 6
    tasks = _tasks(tasks_engine)
    ada = tasks[ids["Ada"]]
    assert ada.status == TouchStatus.PENDING and ada.channel == "call"  # a rule's `approval: auto` or not
    local = _utc(ada.due_at).astimezone(ZoneInfo("America/Los_Angeles"))
    assert (local.strftime("%a"), local.hour, local.minute) == ("Mon", 9, 0), local  # Saturday -> Monday 9:00
    alan = _utc(tasks[ids["Alan"]].due_at).astimezone(ZoneInfo("Europe/London"))
    assert (alan.strftime("%a"), alan.hour) == ("Mon", 9)
    # Linus: the weekly cap of 3 lets the next touch go when the first of them is a week old (Thursday)
    assert _utc(tasks[ids["Linus"]].due_at) == SATURDAY - timedelta(hours=50) + timedelta(days=7)
    katherine = tasks[ids["Katherine"]]
    assert katherine.status == TouchStatus.SUPPRESSED and "no phone number" in (katherine.channel_reason or "")

    # nobody approves a task into the dispatcher, alone or in bulk, and the dispatcher sends none
    with session_scope(tasks_engine.db) as s, pytest.raises(InvalidTransition, match="record its outcome"):
        transition(s, "approve", [ada.id or 0], SATURDAY)
    tasks_engine.dispatch(SATURDAY + timedelta(days=9))
    with session_scope(tasks_engine.db) as s:
        assert s.get_one(Touch, ada.id).status == TouchStatus.PENDING

    # the rep calls: the outcome is evidence with the note, the task is done and the buyer moves on
    called = SATURDAY + timedelta(days=2, hours=5)
    with pytest.raises(InvalidInput, match="connected, voicemail, no_answer"):
        tasks_engine.record_task(ada.id or 0, "sent", "", "rep@example.com", now=called)
    result = tasks_engine.record_task(ada.id or 0, "connected", "Wants numbers by Friday", "rep@example.com",
                                      owner="rep@example.com", now=called)
    assert [(c.from_stage, c.to_stage) for c in result.stage_changes] == [("interested", "evaluating")]
    with session_scope(tasks_engine.db) as s:
        done = s.get_one(Touch, ada.id)
        assert done.status == TouchStatus.SENT and _utc(done.sent_at or SATURDAY) == called
        ev = s.execute(select(Evidence).where(col(Evidence.touch_id) == ada.id)).scalar_one()
        assert (ev.type, ev.channel, ev.data["note"], ev.data["by"]) == (
            "call.connected", "call", "Wants numbers by Friday", "rep@example.com")
    with pytest.raises(InvalidTransition, match="only a task still to do"):
        tasks_engine.record_task(ada.id or 0, "voicemail", "", "rep@example.com", now=called)
