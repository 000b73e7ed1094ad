"""The set-based plan (one INSERT ... SELECT per step) writes exactly the touches the per-contact path
writes: channel, reasons, status, due and approve-by times, for every mix of addresses and consent,
with suppressed contacts and stated preferences going the per-contact way."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import delete
from sqlmodel import Session, select

from outreach.contact_info import set_preference
from outreach.db import session_scope
from outreach.engine import Engine
from outreach.learning.learner import ChannelLearner
from outreach.models import Contact, Suppression, Touch
from outreach.preferences import Learner
from outreach.ruleset import Ruleset
from tests.integration.test_loop import MONDAY, load


class Loud:
    """The same learner without `quiet`: the planner must choose every channel per contact."""

    def __init__(self, rules: Ruleset) -> None:
        self.inner = ChannelLearner(rules)

    def prepare(self, session: Session, ids: Sequence[int]) -> None:
        self.inner.prepare(session, ids)

    def __call__(self, contact: Any, interaction: str) -> Learner | None:
        return self.inner(contact, interaction)


def planned(engine: Engine) -> list[tuple[Any, ...]]:
    with session_scope(engine.db) as s:
        return [(t.contact_id, t.dedupe_key, t.channel, t.channel_reason, t.channel_fixed, t.status, t.reason,
                 t.due_at, t.approve_by, t.meeting_minutes, t.content, t.attempts)
                for t in s.exec(select(Touch).order_by(Touch.dedupe_key)).all()]


def test_set_based_plan_matches_the_per_contact_path(engine: Engine) -> None:
    load(engine)
    entered = MONDAY - timedelta(days=30, microseconds=999_999)  # a fraction SQLite must keep as it was
    with session_scope(engine.db) as s:
        for email, phone, ce, cs in [
                (None, "+14155550199", None, True), ("", "+14155550198", True, None),
                ("opted@out.example", None, False, None), ("nothing@said.example", "+14155550197", None, None),
                ("sms@only.example", "+14155550196", False, True)]:
            s.add(Contact(email=email, phone=phone, consent_email=ce, consent_sms=cs,
                          stage="aware", stage_entered_at=entered, created_at=entered))
        for c in s.exec(select(Contact)).all():
            c.stage_entered_at = entered
            s.add(c)
        ada = s.exec(select(Contact).where(Contact.email == "ada@analytical.example")).one()
        s.add(Suppression(contact_id=ada.id or 0, channel="email", reason="bounced", at=MONDAY))
        set_preference(s, engine, "alan@bletchley.example", "nurture", "email", "cli")
    planner = engine.planner()
    planner.approval_expires_after = timedelta(days=2)  # some steps ask a rep: their approve-by time too
    with session_scope(engine.db) as s:
        result = planner.plan(s, MONDAY)
    fast = planned(engine)
    assert result.queued == len(fast) > 11
    assert sum(result.by_status.values()) == sum(result.by_channel.values()) == result.queued
    assert any("email suppressed" in (row[3] or "") for row in fast)  # the per-contact path ran too
    assert any(row[2] == "email" and row[3] == "stated by the contact" for row in fast)

    with session_scope(engine.db) as s:
        s.execute(delete(Touch))
    planner.learner_for = Loud(engine.project.rules)
    with session_scope(engine.db) as s:
        slow_result = planner.plan(s, MONDAY)
    assert planned(engine) == fast
    assert slow_result.by_status == result.by_status and slow_result.by_channel == result.by_channel
