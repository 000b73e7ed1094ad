"""The buyer loop inside the engine, on SQLite and PostgreSQL: plan, approve, dispatch, evidence."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from outreach.contact_info import contact_detail, set_preference
from outreach.contacts import import_csv
from outreach.db import session_scope
from outreach.engine import Engine
from outreach.evidence import EvidenceIn
from outreach.models import Contact, Message, Suppression, Touch
from outreach.queue import transition
from outreach.testing import FailureKind, FixedClock, RecordingProvider
from tests.support import ROOT, at

MONDAY = at("2026-03-02 15:00")  # 07:00 in Los Angeles, 17:00 in Helsinki


def load(engine: Engine) -> None:
    with session_scope(engine.db) as s:
        import_csv(s, ROOT / "contacts.csv", region="US", first_stage="aware", now=MONDAY)


def touches(engine: Engine, **where: object) -> list[Touch]:
    with session_scope(engine.db) as s:
        q = select(Touch)
        for k, v in where.items():
            q = q.where(getattr(Touch, k) == v)
        return list(s.exec(q.order_by(Touch.id)).all())


def contact(engine: Engine, email: str) -> Contact:
    with session_scope(engine.db) as s:
        return s.exec(select(Contact).where(Contact.email == email)).one()


def test_plan_queues_each_due_step_once(engine: Engine) -> None:
    load(engine)
    assert engine.plan(MONDAY).queued == 6
    assert engine.plan(MONDAY).queued == 0  # planning twice queues nothing twice
    assert engine.plan(MONDAY + timedelta(days=3)).queued == 0  # case-study is due after 4d
    assert engine.plan(MONDAY + timedelta(days=4)).queued == 6
    steps = sorted({(t.step, t.status, t.channel) for t in touches(engine)})
    assert steps == [("case-study", "approved", "email"), ("welcome", "approved", "email")]


def test_dispatch_sends_once_within_window_and_records_the_message(engine: Engine) -> None:
    load(engine)
    engine.plan(MONDAY)
    first = engine.dispatch(MONDAY)
    # every sample contact's window is open but Los Angeles' (07:00)
    sent = touches(engine, status="sent")
    waiting = touches(engine, status="approved")
    assert first.sent == len(sent) and first.waiting == len(waiting) and len(sent) + len(waiting) == 6
    assert {contact(engine, "ada@analytical.example").id} == {t.contact_id for t in waiting}
    assert waiting[0].reason == "waiting: outside the send window"
    assert waiting[0].due_at == at("2026-03-02 16:00")  # 08:00 in Los Angeles
    assert engine.dispatch(MONDAY).claimed == 0  # nothing sent twice, nothing due
    engine.dispatch(at("2026-03-02 16:00"))
    assert len(touches(engine, status="sent")) == 6
    with session_scope(engine.db) as s:
        messages = s.exec(select(Message)).all()
    assert len(messages) == 6 and all(m.subject and m.subject.startswith("Welcome, ") for m in messages)
    assert all("/unsubscribe/" in m.text for m in messages)


def test_missing_variable_fails_the_touch_never_sends_a_blank(engine: Engine) -> None:
    load(engine)
    (engine.project.content_dir / "aware" / "welcome.email.j2").write_text(
        "{% block subject %}Hi {{ contact.first_name }}{% endblock %}"
        "{% block text %}About {{ contact.industry }} at {{ contact.company }}{% endblock %}")
    with session_scope(engine.db) as s:  # an empty field counts as missing
        s.exec(select(Contact).where(Contact.email == "ada@analytical.example")).one().company = ""
    engine.plan(MONDAY)
    engine.dispatch(at("2026-03-02 17:00"))
    failed = touches(engine, status="failed")
    assert [t.contact_id for t in failed] == [contact(engine, "ada@analytical.example").id]
    assert "contact.company is missing" in (failed[0].reason or "")
    # no moment is inside both Los Angeles' and Helsinki's 08:00-18:00: one of the others waits
    assert len(touches(engine, status="sent")) == 4 and len(touches(engine, status="approved")) == 1


def test_channel_choice_stated_then_default_skipping_unreachable(engine: Engine) -> None:
    load(engine)
    with session_scope(engine.db) as s:
        set_preference(s, engine, "grace@cobol.example", "reminder", "sms", "cli")  # no sms consent
        set_preference(s, engine, "alan@bletchley.example", "routine", "sms", "cli")
        grace = contact_detail(s, engine, "grace@cobol.example")["channels"]
        alan = contact_detail(s, engine, "alan@bletchley.example")["channels"]
    assert grace["reminder"]["channel"] == "email" and "stated sms cannot be used" in grace["reminder"]["reason"]
    assert "sms: no sms opt-in" in grace["reminder"]["reason"]
    assert alan["routine"] == {"channel": "sms", "reason": "stated by the contact"}
    assert alan["strategic"]["channel"] == "meeting"


def test_rep_approval_and_reject(engine: Engine) -> None:
    load(engine)
    engine.plan(MONDAY)
    engine.record([EvidenceIn("email.clicked", MONDAY, "test", email="ada@analytical.example")], now=MONDAY)
    engine.plan(MONDAY + timedelta(days=1))
    pending = touches(engine, status="pending_approval")
    assert [(t.step, t.channel) for t in pending] == [("check-in", "email")]
    assert engine.dispatch(MONDAY + timedelta(days=1, hours=2)).sent == 0 or not touches(engine, step="check-in",
                                                                                        status="sent")
    with session_scope(engine.db) as s:
        with pytest.raises(Exception, match="owned by"):
            transition(s, "approve", [pending[0].id or 0], MONDAY, owner="someone@else.io")
        transition(s, "approve", [pending[0].id or 0], MONDAY, owner="rep@example.com")
    engine.dispatch(at("2026-03-03 17:00"))
    assert touches(engine, step="check-in")[0].status == "sent"


def test_evidence_moves_stage_cancels_old_touches_and_fires_trigger_once(engine: Engine) -> None:
    load(engine)
    engine.plan(MONDAY)
    ada = contact(engine, "ada@analytical.example")
    assert touches(engine, contact_id=ada.id)[0].status == "approved"  # waiting for LA's morning
    result = engine.record([EvidenceIn("email.clicked", MONDAY, "test", contact_id=ada.id, dedupe_key="k1")],
                           now=MONDAY)
    assert [(c.from_stage, c.to_stage) for c in result.stage_changes] == [("aware", "interested")]
    old = touches(engine, contact_id=ada.id, step="welcome")[0]
    assert (old.status, old.reason) == ("cancelled", "stage_changed")
    again = engine.record([EvidenceIn("email.clicked", MONDAY, "test", contact_id=ada.id, dedupe_key="k1")],
                          now=MONDAY)
    assert again.duplicates == 1 and not again.recorded
    # pricing viewed twice within 14 days: evaluating; the trigger fires once per piece of evidence
    for i, day in enumerate(("2026-03-03 10:00", "2026-03-05 10:00")):
        engine.record([EvidenceIn("pricing.viewed", at(day), "api", contact_id=ada.id, dedupe_key=f"p{i}")],
                      now=at(day))
    engine.record([EvidenceIn("pricing.viewed", at("2026-03-05 10:00"), "api", contact_id=ada.id, dedupe_key="p1")],
                  now=at("2026-03-05 10:00"))
    assert contact(engine, "ada@analytical.example").stage == "evaluating"
    fired = touches(engine, contact_id=ada.id, rule="trigger:pricing-follow-up")
    assert len(fired) == 2 and {t.status for t in fired} == {"pending_approval"}
    strategy = touches(engine, contact_id=ada.id, step="strategy-session")
    assert [(t.status, t.channel) for t in strategy] == [("pending_approval", "meeting")]


def test_suppression_is_checked_at_send_time(engine: Engine) -> None:
    load(engine)
    engine.plan(MONDAY)
    engine.record([EvidenceIn("email.unsubscribed", MONDAY, "test", email="grace@cobol.example")], now=MONDAY)
    engine.dispatch(MONDAY)
    grace = contact(engine, "grace@cobol.example")
    (t,) = touches(engine, contact_id=grace.id)
    assert t.status == "suppressed" and "email suppressed" in (t.reason or "")
    with session_scope(engine.db) as s:
        assert s.exec(select(Suppression.channel).where(Suppression.contact_id == grace.id)).all() == ["email"]


@pytest.mark.parametrize(("kind", "status", "suppressed"), [
    ("retryable", "approved", []),  # tried again later
    ("rate_limited", "approved", []),
    ("permanent", "failed", []),
    ("opted_out", "failed", ["email"]),  # and the address is never written to again
    ("uncertain", "uncertain", []),  # a person checks with the provider: never re-sent by itself
])
def test_a_provider_failure_settles_the_touch_by_its_kind(engine: Engine, kind: FailureKind, status: str,
                                                          suppressed: list[str]) -> None:
    provider = RecordingProvider()
    engine = Engine(engine.project, providers=provider.as_providers())
    clock = FixedClock(MONDAY)
    load(engine)
    engine.plan(clock())
    provider.fail_next(1, kind)
    first = engine.dispatch(clock())
    assert (first.sent, first.waiting) == (4, 1)  # Los Angeles is still asleep
    ((message, _),) = provider.failures
    (touch,) = touches(engine, id=message.touch_id)
    assert touch.status == status and "recorded failure" in (touch.reason or "")
    with session_scope(engine.db) as s:
        assert s.exec(select(Suppression.channel).where(Suppression.contact_id == touch.contact_id)).all() == suppressed
    clock.advance(timedelta(hours=1))  # past any retry's back-off, and 08:00 in Los Angeles
    engine.dispatch(clock())
    again = provider.for_touch(message.touch_id)
    assert len(again) == (2 if status == "approved" else 1)
    assert len(touches(engine, status="sent")) == (6 if status == "approved" else 5)
    ids = sorted(int(r.provider_message_id.split("-")[1]) for r in provider.results)
    assert ids == list(range(1, len(provider.sent) + 1))  # every accepted send got its own id
