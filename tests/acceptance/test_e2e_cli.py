"""The whole loop through the CLI in subprocesses and `outreach run`, with the real SendGrid and
Twilio SDKs talking to the sandbox: import, plan, approve, dispatch, a signed click, the stage
moving and old touches cancelled, a reply, an RSVP to a meeting invite, an SMS STOP and HELP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from twilio.request_validator import RequestValidator

from outreach import db
from outreach.sandbox.server import Sandbox
from tests.support import ALWAYS, make_project
from tests.support.serving import ANY_PORT, start_run

pytestmark = pytest.mark.slow
SID, TOKEN = "AC" + "1" * 32, "twilio-test-token"


class Cli:
    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.root, self.env = root, env

    def __call__(self, *args: str, code: int = 0) -> str:
        p = subprocess.run([sys.executable, "-m", "outreach.cli", *args, "--project", str(self.root)],
                           capture_output=True, text=True, env=self.env, timeout=120)
        assert p.returncode == code, f"outreach {' '.join(args)} -> {p.returncode}\n{p.stdout}\n{p.stderr}"
        assert "Traceback" not in p.stderr
        return p.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "--json"))

    def touches(self) -> list[dict[str, Any]]:
        return self.json("queue", "list")  # type: ignore[no-any-return]


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[Cli, Sandbox, str]]:
    with Sandbox() as sb:
        root = make_project(tmp_path / "proj", f"sqlite:///{tmp_path / 'e2e.db'}", **ANY_PORT, **{
            "providers.email": "sendgrid", "providers.sms": "twilio",
            "sendgrid.api_base": sb.url, "twilio.api_base": sb.url, "twilio.account_sid": SID,
            "policy.send_windows": {"email": ALWAYS, "sms": ALWAYS, "meeting": ALWAYS},
            "policy.caps": {"all": {"day": 20}},
            # the CLI drives the clock here; the server's own scheduler ticks once at start
            "dispatch.poll_every": "1d", "dispatch.plan_every": "1d"})
        env = {**os.environ, "SENDGRID_API_KEY": "SG.e2e", "SENDGRID_WEBHOOK_PUBLIC_KEY": sb.public_key,
               "TWILIO_AUTH_TOKEN": TOKEN}
        server, base = start_run(root, tmp_path / "run.log", env)
        # the server took the port it reported; the CLI's sends name it in their links and callbacks
        cli = Cli(root, {**env, "OUTREACH_SERVER__PUBLIC_URL": base})
        try:
            yield cli, sb, base
        finally:
            server.terminate()
            server.wait(timeout=30)
            db.dispose_all()


def touch_of(cli: Cli, email: str, step: str) -> dict[str, Any]:
    return next(t for t in cli.touches() if t["contact"]["email"] == email and t["step"] == step)


def twilio_post(base: str, path: str, params: dict[str, str], token: str = TOKEN) -> httpx.Response:
    url = base + path
    signature = RequestValidator(token).compute_signature(url, params)
    return httpx.post(url, data=params, headers={"X-Twilio-Signature": signature})


def test_the_buyer_loop_end_to_end(setup: tuple[Cli, Sandbox, str]) -> None:
    cli, sb, base = setup
    ada, alan = "ada@analytical.example", "alan@bletchley.example"
    assert "imported 6 new" in cli("contacts", "import", str(cli.root / "contacts.csv"))
    cli("plan")
    cli("plan")  # a second plan queues nothing twice
    assert [t["step"] for t in cli.touches()] == ["welcome"] * 6
    assert json.loads(cli("dispatch", "--json"))["sent"] == 6
    mails = {m["to"]: m for m in sb.messages("email")}
    assert len(mails) == 6 and len(sb.messages("email")) == 6
    welcome = touch_of(cli, ada, "welcome")
    assert mails[ada]["custom_args"]["outreach_touch_id"] == str(welcome["id"])
    assert mails[ada]["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert welcome["provider_message_id"] and welcome["status"] == "sent"

    # the case study for Ada comes due; before it goes, she clicks: a signed SendGrid event
    cli("plan", "--now", "2099-01-01T00:00:00Z")
    assert touch_of(cli, ada, "case-study")["status"] == "approved"
    click = [{"email": ada, "timestamp": int(time.time()), "event": "click", "url": "https://example.com/tour",
              "sg_event_id": "evt-click-1", "sg_message_id": welcome["provider_message_id"] + ".filter0001",
              "outreach_touch_id": str(welcome["id"])}]
    bad = httpx.post(f"{base}/webhooks/sendgrid/events", content=json.dumps(click),
                     headers={**sb.sign_events(b"[]"), "Content-Type": "application/json"})
    assert bad.status_code == 403 and cli.json("contacts", "show", ada)["stage"] == "aware"
    assert sb.emit_events(f"{base}/webhooks/sendgrid/events", click) == 200
    assert sb.emit_events(f"{base}/webhooks/sendgrid/events", click) == 200  # a repeat changes nothing
    shown = cli.json("contacts", "show", ada)
    assert shown["stage"] == "interested"
    assert [e["type"] for e in shown["evidence"]] == ["email.clicked"]
    case_study = touch_of(cli, ada, "case-study")
    assert (case_study["status"], case_study["reason"]) == ("cancelled", "stage_changed")

    # Alan clicks too, and says he wants routine follow-ups by text
    alan_welcome = touch_of(cli, alan, "welcome")
    assert sb.emit_events(f"{base}/webhooks/sendgrid/events", [{
        "email": alan, "timestamp": int(time.time()), "event": "click", "sg_event_id": "evt-click-2",
        "outreach_touch_id": str(alan_welcome["id"])}]) == 200
    cli("contacts", "prefer", alan, "--interaction", "routine", "--channel", "sms")
    cli("plan", "--now", "2099-01-01T00:00:00Z")
    pending = [t for t in cli.touches() if t["status"] == "pending_approval"]
    assert sorted((t["contact"]["email"], t["step"], t["channel"]) for t in pending) == [
        (ada, "check-in", "email"), (alan, "check-in", "sms")]
    cli("queue", "approve", "--all")
    cli("dispatch", "--now", "2099-01-02T00:00:00Z")
    assert touch_of(cli, ada, "check-in")["status"] == touch_of(cli, alan, "check-in")["status"] == "sent"
    sms = next(m for m in sb.messages("sms") if "Which monthly report" in m["body"])
    assert sms["to"] == "+442079460103" and "Alan" in sms["body"]
    sb.wait_for_callbacks()  # the sandbox posts signed status callbacks to the engine
    assert "sms.delivered" in [e["type"] for e in cli.json("contacts", "show", alan)["evidence"]]

    # Ada replies to the check-in by email (Inbound Parse, matched by the Reply-To token)
    urls = cli.json("webhooks")
    check_in_mail = [m for m in sb.messages("email") if m["to"] == ada][-1]
    form = {"from": f"Ada King <{ada}>", "to": check_in_mail["reply_to"], "subject": "Re: Quick question",
            "text": "Month-end close, every time.\n\nOn Mon, Sales wrote:\n> Hi Ada", "envelope": json.dumps(
                {"to": [check_in_mail["reply_to"]], "from": ada}),
            "headers": f"From: {ada}\nMessage-ID: <r1@analytical.example>\n", "charsets": "{}"}
    assert httpx.post(urls["sendgrid_inbound_parse"].replace("token=", "token=x"), data=form).status_code == 403
    assert httpx.post(urls["sendgrid_inbound_parse"], data=form).status_code == 200
    replied = [e for e in cli.json("contacts", "show", ada)["evidence"] if e["type"] == "email.replied"]
    assert replied and replied[0]["touch_id"] == touch_of(cli, ada, "check-in")["id"]

    # pricing viewed twice: evaluating; the strategy session goes out as a meeting invite, Ada accepts
    cli("contacts", "prefer", ada, "--interaction", "strategic", "--channel", "meeting")
    for i in range(2):
        cli("evidence", "add", ada, "pricing.viewed")
        del i
    assert cli.json("contacts", "show", ada)["stage"] == "evaluating"
    session = touch_of(cli, ada, "strategy-session")
    assert (session["status"], session["channel"]) == ("pending_approval", "meeting"), session
    cli("queue", "approve", str(session["id"]))
    out = cli("dispatch", "--json", "--now", "2099-01-03T00:00:00Z")
    assert json.loads(out)["sent"] == 1, [(t["step"], t["status"], t["reason"]) for t in cli.touches()
                                          if t["contact"]["email"] == ada]
    invite = [m for m in sb.messages("email") if m["to"] == ada and m["calendar"]][-1]
    uid = next(line.split(":", 1)[1] for line in invite["calendar"].splitlines() if line.startswith("UID:"))
    rsvp = (f"BEGIN:VCALENDAR\r\nPRODID:-//Google Inc//Google Calendar 70.9054//EN\r\nVERSION:2.0\r\n"
            f"METHOD:REPLY\r\nBEGIN:VEVENT\r\nDTSTAMP:20990101T100000Z\r\nUID:{uid}\r\nSEQUENCE:0\r\n"
            f"ATTENDEE;PARTSTAT=ACCEPTED;CN=Ada King:mailto:{ada}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
    rsvp_form = {"from": ada, "to": invite["reply_to"], "subject": "Accepted: Strategy session",
                 "text": "Ada King has accepted this invitation.", "headers": f"From: {ada}\n",
                 "attachments": "1", "attachment-info": json.dumps({"attachment1": {
                     "filename": "invite.ics", "type": "text/calendar; method=REPLY"}})}
    assert httpx.post(urls["sendgrid_inbound_parse"], data=rsvp_form,
                      files={"attachment1": ("invite.ics", rsvp.encode(), "text/calendar")}).status_code == 200
    accepted = [e for e in cli.json("contacts", "show", ada)["evidence"] if e["type"] == "meeting.accepted"]
    assert accepted and accepted[0]["touch_id"] == session["id"]

    # Alan texts STOP: opted out of SMS at once; HELP is answered; an unsigned post changes nothing
    params = {"MessageSid": "SM" + "a" * 32, "AccountSid": SID, "From": "+442079460103",
              "To": "+15005550006", "Body": " stop ", "NumMedia": "0"}
    assert httpx.post(f"{base}/webhooks/twilio/sms", data=params).status_code == 403
    assert twilio_post(base, "/webhooks/twilio/sms", params, token="wrong").status_code == 403
    assert cli.json("contacts", "show", alan)["suppressions"] == []
    assert twilio_post(base, "/webhooks/twilio/sms", params).status_code == 200
    shown = cli.json("contacts", "show", alan)
    assert [s["channel"] for s in shown["suppressions"]] == ["sms"] and shown["consent"]["sms"] is False
    assert shown["channels"]["reminder"]["channel"] == "email"
    help_answer = twilio_post(base, "/webhooks/twilio/sms", {**params, "MessageSid": "SM" + "b" * 32,
                                                              "Body": "help"})
    assert "<Message>" in help_answer.text and "STOP" in help_answer.text
