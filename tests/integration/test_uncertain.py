"""A provider that takes a message but never answers: the touch becomes `uncertain`, is never
re-sent by itself, and a person resends or drops it."""

from __future__ import annotations

from pathlib import Path

from sqlmodel import select

from outreach.contacts import import_csv
from outreach.db import session_scope
from outreach.engine import Engine
from outreach.models import Touch
from outreach.project import Project
from outreach.queue import transition
from outreach.sandbox.server import Sandbox
from tests.support import ALWAYS, ROOT, at, make_project


def test_a_send_with_no_answer_is_uncertain_never_resent(tmp_path: Path) -> None:
    with Sandbox(callbacks=False) as sb:
        root = make_project(tmp_path / "p", f"sqlite:///{tmp_path / 'u.db'}", **{
            "providers.email": "sendgrid", "sendgrid.api_key": "SG.k", "sendgrid.api_base": sb.url,
            "sendgrid.webhook_public_key": sb.public_key,
            "sendgrid.timeout": 0.5, "policy.send_windows": {"email": ALWAYS, "sms": ALWAYS, "meeting": ALWAYS}})
        engine = Engine(Project.open(root))
        now = at("2026-03-02 10:00")
        with session_scope(engine.db) as s:
            import_csv(s, ROOT / "contacts.csv", region="US", first_stage="aware", now=now)
        engine.plan(now)
        sb.fail_next(None, 1, delay=2.0)  # the first send is taken, then answered too late
        result = engine.dispatch(now)
        assert result.sent == 5
        with session_scope(engine.db) as s:
            (late,) = s.exec(select(Touch).where(Touch.status == "uncertain")).all()
        assert "may or may not have accepted" in (late.reason or "")
        assert engine.dispatch(at("2026-03-02 11:00")).claimed == 0  # never re-sent by itself
        received = [m["custom_args"]["outreach_touch_id"] for m in sb.messages("email")]
        assert sorted(received) == sorted(str(i) for i in range(1, 7))  # the late one did arrive
        with session_scope(engine.db) as s:
            transition(s, "drop", [late.id or 0], at("2026-03-02 11:00"))
        with session_scope(engine.db) as s:
            assert s.get(Touch, late.id).status == "cancelled"  # type: ignore[union-attr]
