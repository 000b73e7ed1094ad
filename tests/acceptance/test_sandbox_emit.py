"""The sandbox rehearses the way back: with the engine served on a local port and its providers
pointed at the sandbox, what the sandbox emits (signed SendGrid events, Inbound Parse replies and
RSVPs, Twilio inbound SMS and status callbacks), on command or as a scripted buyer, arrives at the
engine and is recorded as evidence tied to the touch it answers."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import select
from sqlmodel import col

from outreach import db, tokens
from outreach.contact_info import set_preference
from outreach.contacts import import_csv
from outreach.db import session_scope
from outreach.engine import Engine
from outreach.evidence import EvidenceIn
from outreach.models import Contact, Evidence, Suppression, Touch
from outreach.project import Project
from outreach.queue import transition
from outreach.sandbox.buyer import load_script
from outreach.sandbox.server import Sandbox
from outreach.web.app import create_app
from tests.support import make_project

SID, TOKEN, SECRET = "AC" + "1" * 32, "twilio-rehearsal-token", "rehearsal-secret"
ALWAYS = {"days": "mon-sun", "hours": "00:00-24:00"}
ADA, GRACE, ALAN, KATHERINE = ("ada@analytical.example", "grace@cobol.example", "alan@bletchley.example",
                               "katherine@orbit.example")
ALAN_PHONE = "+442079460103"


@dataclass
class Rehearsal:
    engine: Engine
    sb: Sandbox
    base: str  # the engine's URL

    def emit(self, what: str, **body: Any) -> dict[str, Any]:
        answer = httpx.post(f"{self.sb.url}/sandbox/emit/{what}", json=body, timeout=30)
        assert answer.status_code == 200, answer.text
        data: dict[str, Any] = answer.json()
        assert data["status"] == 200, data
        return data

    def evidence(self, email: str) -> list[Evidence]:
        with session_scope(self.engine.db) as s:
            return list(s.execute(select(Evidence).join(Contact, col(Contact.id) == col(Evidence.contact_id))
                                  .where(col(Contact.email) == email).order_by(col(Evidence.id))).scalars())

    def one(self, email: str, kind: str) -> Evidence:
        found = [e for e in self.evidence(email) if e.type == kind]
        assert len(found) == 1, (kind, [(e.type, e.touch_id) for e in self.evidence(email)])
        return found[0]

    def touch(self, email: str, step: str) -> Touch:
        with session_scope(self.engine.db) as s:
            found = s.execute(select(Touch).join(Contact, col(Contact.id) == col(Touch.contact_id)).where(
                col(Contact.email) == email, col(Touch.step) == step).order_by(col(Touch.id).desc())).scalars().first()
            assert found is not None, (email, step)
            return found

    def contact(self, email: str) -> Contact:
        with session_scope(self.engine.db) as s:
            return s.execute(select(Contact).where(col(Contact.email) == email)).scalar_one()

    def suppressed(self, email: str) -> list[str]:
        with session_scope(self.engine.db) as s:
            return list(s.execute(select(col(Suppression.channel)).join(
                Contact, col(Contact.id) == col(Suppression.contact_id)).where(col(Contact.email) == email)).scalars())


@pytest.fixture
def rehearsal(tmp_path: Path) -> Iterator[Rehearsal]:
    engine_sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    engine_sock.bind(("127.0.0.1", 0))
    base = f"http://127.0.0.1:{engine_sock.getsockname()[1]}"
    inbound = f"{base}/webhooks/sendgrid/inbound?token={tokens.short_mac(SECRET, 'inbound-parse', 24)}"
    with Sandbox(engine_url=base, inbound_url=inbound) as sb:
        root = make_project(tmp_path / "proj", f"sqlite:///{tmp_path / 'rehearsal.db'}", **{
            "providers.email": "sendgrid", "providers.sms": "twilio", "sendgrid.api_key": "SG.rehearsal",
            "sendgrid.api_base": sb.url, "sendgrid.webhook_public_key": sb.public_key, "twilio.api_base": sb.url,
            "twilio.account_sid": SID, "twilio.auth_token": TOKEN, "server.public_url": base,
            "server.secret_key": SECRET, "policy.caps": {"all": {"day": 20}},
            "policy.send_windows": {"email": ALWAYS, "sms": ALWAYS, "meeting": ALWAYS}})
        engine = Engine(Project.open(root))
        server = uvicorn.Server(uvicorn.Config(create_app(engine), log_level="warning", access_log=False, ws="none",
                                               lifespan="off", http="h11"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [engine_sock]}, daemon=True,
                                  name="engine-under-test")
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.01)
        assert server.started
        with session_scope(engine.db) as s:
            import_csv(s, root / "contacts.csv", region="US", first_stage="aware", now=datetime.now(UTC))
        try:
            yield Rehearsal(engine, sb, base)
        finally:
            server.should_exit = True
            thread.join(timeout=10)
            db.dispose_all()


def send_due(r: Rehearsal, now: datetime) -> None:
    r.engine.plan(now)
    r.engine.dispatch(now)


def test_emitted_webhooks_arrive_as_evidence_tied_to_their_touch(rehearsal: Rehearsal) -> None:
    r, now = rehearsal, datetime.now(UTC)
    send_due(r, now)
    welcome = {e: r.touch(e, "welcome") for e in (ADA, GRACE, ALAN, KATHERINE)}
    assert all(t.status == "sent" for t in welcome.values())

    # SendGrid events, found by address or by X-Message-Id, carry the touch's custom args
    r.emit("sendgrid-event", to=ADA, event="delivered")
    click = r.emit("sendgrid-event", message_id=welcome[ADA].provider_message_id, event="click",
                   url="https://example.com/pricing")["posted"][0]
    assert click["outreach_touch_id"] == str(welcome[ADA].id) and click["url"] == "https://example.com/pricing"
    assert click["sg_message_id"].split(".")[0] == welcome[ADA].provider_message_id
    assert r.one(ADA, "email.clicked").touch_id == r.one(ADA, "email.delivered").touch_id == welcome[ADA].id
    assert r.contact(ADA).stage == "interested"
    r.emit("sendgrid-event", to=GRACE, event="open")
    assert r.one(GRACE, "email.opened").touch_id == welcome[GRACE].id
    r.emit("sendgrid-event", to=KATHERINE, event="bounce")
    assert r.one(KATHERINE, "email.bounced").touch_id == welcome[KATHERINE].id
    assert r.suppressed(KATHERINE) == ["email"]

    # a reply through Inbound Parse, to the Reply-To, quoting the original: only the new words count
    reply = r.emit("reply", to=ADA, text="Month-end close, every time.")["posted"]
    assert reply["to"].startswith("reply+") and "In-Reply-To: <t" in reply["headers"]
    replied = r.one(ADA, "email.replied")
    assert replied.touch_id == welcome[ADA].id and replied.data["text"] == "Month-end close, every time."
    r.emit("reply", to_message_id=welcome[GRACE].provider_message_id, text="Out until Monday.", auto_reply=True)
    assert r.one(GRACE, "email.auto_replied").touch_id == welcome[GRACE].id

    # pricing viewed: the follow-up meeting goes out as an invite, and Ada accepts it from Google Calendar
    with session_scope(r.engine.db) as s:
        set_preference(s, r.engine, ADA, "strategic", "meeting", source="cli")
    r.engine.record([EvidenceIn("pricing.viewed", now, "cli", email=ADA)])
    meeting = r.touch(ADA, "pricing-follow-up")
    with session_scope(r.engine.db) as s:
        transition(s, "approve", [meeting.id or 0], now)
    r.engine.dispatch(now)
    assert r.touch(ADA, "pricing-follow-up").status == "sent"
    rsvp = r.emit("rsvp", to=ADA, partstat="ACCEPTED", comment="See you then")["posted"]
    assert "METHOD:REPLY" in rsvp["attachment1"] and "PARTSTAT=ACCEPTED" in rsvp["attachment1"]
    accepted = r.one(ADA, "meeting.accepted")
    assert accepted.touch_id == meeting.id and accepted.data["comment"] == "See you then"
    assert r.contact(ADA).stage == "evaluating"

    # Alan clicks; three days on his webinar reminder goes by SMS; he answers, the SMS fails, he texts STOP
    r.emit("sendgrid-event", to=ALAN, event="click")
    later = now + timedelta(days=3, hours=1)
    send_due(r, later)
    sms_touch = r.touch(ALAN, "webinar-reminder")
    assert (sms_touch.channel, sms_touch.status) == ("sms", "sent")
    r.sb.wait_for_callbacks()
    assert r.one(ALAN, "sms.delivered").touch_id == sms_touch.id
    r.emit("sms", **{"from": ALAN_PHONE, "body": "Which webinar is this?"})
    assert r.one(ALAN, "sms.replied").touch_id == sms_touch.id
    failed = r.emit("sms-status", to=ALAN_PHONE, status="undelivered", error_code=30005)
    assert failed["url"] == f"{r.base}/webhooks/twilio/status" and failed["posted"]["ErrorCode"] == "30005"
    assert r.one(ALAN, "sms.failed").touch_id == sms_touch.id
    stop = r.emit("sms", **{"from": ALAN_PHONE, "body": " Stop "})
    assert stop["posted"]["OptOutType"] == "STOP" and stop["posted"]["To"] == "+15005550006"
    assert r.one(ALAN, "sms.opted_out").touch_id == sms_touch.id
    assert "sms" in r.suppressed(ALAN) and r.contact(ALAN).consent_sms is False
    assert ALAN_PHONE in r.sb.state.opted_out()  # Twilio would now refuse to text him (21610)
    help_answer = r.emit("sms", **{"from": ALAN_PHONE, "body": "help"})["answer"]
    assert "<Message>" in help_answer

    log = httpx.get(f"{r.sb.url}/sandbox/emitted").json()
    assert len(log) == 12 and {e["status"] for e in log} == {200} and {e["by"] for e in log} == {"command"}


def test_a_scripted_buyer_clicks_and_the_stage_moves(rehearsal: Rehearsal) -> None:
    r = rehearsal
    script = """
rules:
  - match: {to: grace@cobol.example}
    after: 200ms
    do: click
    url: https://example.com/case-study
  - match: {to: "*@bletchley.example", subject: ""}
    on: email
    after: 0.1
    do: reply
    text: Interested, but busy until June.
    once: true
  - match: {to: nobody@example.com}
    do: bounce
"""
    loaded = httpx.post(f"{r.sb.url}/sandbox/script", content=script)
    assert loaded.status_code == 200 and loaded.json() == {"rules": 3}
    assert len(httpx.get(f"{r.sb.url}/sandbox/script").json()["rules"]) == 3
    send_due(r, datetime.now(UTC))
    assert r.sb.wait_for_buyer(15)
    grace_welcome = r.touch(GRACE, "welcome")
    clicked = r.one(GRACE, "email.clicked")
    assert clicked.touch_id == grace_welcome.id and clicked.data["url"] == "https://example.com/case-study"
    assert r.contact(GRACE).stage == "interested"
    assert r.one(ALAN, "email.replied").data["text"] == "Interested, but busy until June."
    assert r.contact(ALAN).stage == "interested"
    assert [e.type for e in r.evidence(ADA)] == []  # no rule for Ada: she did nothing
    log = httpx.get(f"{r.sb.url}/sandbox/emitted").json()
    assert sorted(e["kind"] for e in log) == ["reply", "sendgrid-event"] and {e["by"] for e in log} == {"script"}
    assert httpx.delete(f"{r.sb.url}/sandbox/script").status_code == 204
    assert httpx.get(f"{r.sb.url}/sandbox/script").json() == {"rules": [], "pending": 0}


def test_emit_errors_say_what_is_missing() -> None:
    with Sandbox() as sb:
        def emit(what: str, **body: Any) -> httpx.Response:
            return httpx.post(f"{sb.url}/sandbox/emit/{what}", json=body)

        assert emit("sendgrid-event", to="nobody@example.com").status_code == 404
        assert emit("sendgrid-event").status_code == 400
        assert emit("rsvp", to="nobody@example.com").status_code == 404
        assert emit("sms-status", sid="SMnope").status_code == 404
        no_engine = emit("sms", **{"from": "+14155550101", "body": "hi"})
        assert no_engine.status_code == 400 and "--engine-url" in no_engine.json()["error"]
        no_token = emit("sms", **{"from": "+14155550101", "body": "hi", "engine_url": "http://127.0.0.1:9"})
        assert no_token.status_code == 400 and "--twilio-token" in no_token.json()["error"]
        bad = httpx.post(f"{sb.url}/sandbox/script", content="- {do: stop, on: email}")
        assert bad.status_code == 400 and "rule 1" in bad.json()["error"]


def test_an_unreachable_engine_is_502() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))  # held, never listening, for the test's length: connections are refused
        with Sandbox(engine_url=f"http://127.0.0.1:{s.getsockname()[1]}", twilio_token="t") as sb:
            answer = httpx.post(f"{sb.url}/sandbox/emit/sms", json={"from": "+14155550101", "body": "hi"})
            assert answer.status_code == 502
            assert httpx.get(f"{sb.url}/sandbox/emitted").json()[0]["error"]


@pytest.mark.parametrize(("script", "problem"), [
    ("- {do: fly}", "'fly' is not something a buyer does on email"),
    ("- {do: stop, on: email}", "'stop' is not something a buyer does on email"),
    ("- {do: click, after: soon}", "after 'soon' is not a delay"),
    ("- {do: click, match: {from: x}}", "match takes to, subject and text"),
    ("- {do: click, wait: 2s}", "unknown key(s) wait"),
    ("{do: click}", "a list of rules"),
    ("- [", "not YAML"),
])
def test_bad_scripts_are_refused_with_the_reason(script: str, problem: str) -> None:
    with pytest.raises(ValueError) as exc:
        load_script(script)
    assert problem in str(exc.value)


def test_script_defaults() -> None:
    accept, stop, click, slow = load_script("""
- {do: accept}
- {do: STOP}
- {do: click, after: 1500ms}
- {do: open, after: 2m}
""")
    assert (accept.on, stop.on, click.on) == ("invite", "sms", "email")
    assert (accept.after, click.after, slow.after) == (1.0, 1.5, 120.0)
    assert load_script("") == [] and len(load_script("rules: [{do: reply}]")) == 1
    assert not accept.matches({"kind": "email", "to": "a@b.example"})  # an RSVP answers invites only
    assert accept.matches({"kind": "email", "to": "a@b.example", "calendar": "BEGIN:VCALENDAR"})
    assert not click.matches({"kind": "sms", "to": "+1"})


def test_the_cli_refuses_a_bad_script(tmp_path: Path) -> None:
    bad = tmp_path / "buyer.yaml"
    bad.write_text("- {do: fly}\n")
    p = subprocess.run([sys.executable, "-m", "outreach.cli", "sandbox", "--script", str(bad), "--port", "1"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "rule 1: 'fly'" in p.stderr and "Traceback" not in p.stderr
