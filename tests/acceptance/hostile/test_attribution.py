# ruff: noqa: RUF001 - replies in Russian and Japanese, on purpose
"""Evidence is attributed only when it is provably the buyer's: hostile posts through the real HTTP
routes (the bytes SendGrid posts), asserting what the database holds afterwards.

The environment is the webhook security suite's: six contacts at `aware`, each sent the welcome
email (Ada's touch id in `env.welcome[ADA]`)."""

from __future__ import annotations

import json
import time
from email.message import EmailMessage
from typing import Any

import pytest
from sqlalchemy import select
from sqlmodel import col

from outreach import tokens
from outreach.db import session_scope
from outreach.models import Contact, Evidence, StageChange, Suppression, UnattributedEvent
from tests.acceptance.test_webhook_security import ADA, Call, Env, post, sendgrid_sign
from tests.support.web import bearer

BOUNDARY = "xYzZY"


def form(fields: dict[str, bytes]) -> tuple[bytes, dict[str, str]]:
    parts = [f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n'.encode() + v + b"\r\n"
             for k, v in fields.items()]
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode(), {
        "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}


def inbound(env: Env, fields: dict[str, bytes]) -> Any:
    token = tokens.short_mac(env.secret, "inbound-parse", 24)
    answer = post(env, Call(f"/webhooks/sendgrid/inbound?token={token}", *form(fields)))
    assert answer.status_code == 200, answer.text
    return answer


def reply_to(env: Env) -> str:
    return f"reply+{tokens.reply_token(env.secret, env.welcome[ADA])}@reply.example.com"


def state(env: Env) -> dict[str, Any]:
    with session_scope(env.engine.db) as s:
        ada = s.execute(select(Contact).where(col(Contact.email) == ADA)).scalar_one()
        return {
            "stage": ada.stage,
            "evidence": sorted(s.execute(select(col(Evidence.type)).where(
                col(Evidence.contact_id) == ada.id)).scalars()),
            "evidence_data": [e.data for e in s.execute(select(Evidence).where(
                col(Evidence.contact_id) == ada.id)).scalars()],
            "suppressed": sorted(s.execute(select(col(Suppression.channel)).where(
                col(Suppression.contact_id) == ada.id)).scalars()),
            "moves": len(s.execute(select(StageChange).where(col(StageChange.contact_id) == ada.id)).all()),
            "unattributed": [(u.type, u.reason) for u in s.execute(select(UnattributedEvent)).scalars()],
        }


def raw_mail(headers: dict[str, str], body: str = "Yes, let's talk next week.") -> bytes:
    msg = EmailMessage()
    for k, v in headers.items():
        msg[k] = v
    msg.set_content(body)
    return msg.as_bytes()


# --- 1. Provider events for mail this engine did not send -------------------------------------

def sg_event(env: Env, **extra: Any) -> dict[str, Any]:
    return {"email": ADA, "timestamp": int(time.time()), "event": "click", "url": "https://x.example",
            "sg_event_id": f"ev-{time.time_ns()}", "sg_message_id": "notours.filter0001.1.0", **extra}


def post_events(env: Env, events: list[Any]) -> Any:
    body = json.dumps(events).encode()
    answer = post(env, Call("/webhooks/sendgrid/events", body, sendgrid_sign(env.key, body)))
    assert answer.status_code == 200, answer.text
    return answer


@pytest.mark.parametrize("extra", [{}, {"outreach_touch_id": "99999999"}, {"outreach_touch_id": "abc"}],
                         ids=["no-touch-id", "unknown-touch-id", "garbage-touch-id"])
def test_a_click_on_mail_we_did_not_send_is_unattributed(env: Env, extra: dict[str, Any]) -> None:
    post_events(env, [sg_event(env, **extra)])
    after = state(env)
    assert after["stage"] == "aware" and after["moves"] == 0 and "email.clicked" not in after["evidence"]
    assert [t for t, _ in after["unattributed"]] == ["email.clicked"]
    assert "did not send" in after["unattributed"][0][1]


def test_a_click_on_our_mail_still_counts(env: Env) -> None:
    post_events(env, [sg_event(env, outreach_touch_id=str(env.welcome[ADA]))])
    assert state(env)["stage"] == "interested"


def test_admins_see_unattributed_events_and_others_do_not(env: Env) -> None:
    from outreach.users import add_user

    post_events(env, [sg_event(env)])
    with session_scope(env.engine.db) as s:
        _, admin = add_user(s, "admin@example.com", "admin", None)
        _, rep = add_user(s, "rep@example.com", "rep", None)
    seed: Any = type("S", (), {"tokens": {"a": admin, "r": rep}})
    listed = env.client.get("/api/unattributed", headers=bearer(seed, "a"))
    assert listed.status_code == 200 and [e["type"] for e in listed.json()] == ["email.clicked"]
    assert env.client.get("/api/unattributed", headers=bearer(seed, "r")).status_code == 403


# --- 6. A malformed event in a batch ------------------------------------------------------------

@pytest.mark.parametrize("bad", [1, {"event": "click"}, {"event": "open", "timestamp": "yesterday"}, {"timestamp": 1}])
def test_a_malformed_event_does_not_lose_the_batch(env: Env, bad: Any) -> None:
    good = sg_event(env, outreach_touch_id=str(env.welcome[ADA]))
    post_events(env, [good, bad])
    after = state(env)
    assert "email.clicked" in after["evidence"]
    assert [t for t, _ in after["unattributed"]] == ["provider.malformed"]


def test_a_bad_signature_still_refuses_the_whole_batch(env: Env) -> None:
    body = json.dumps([sg_event(env, outreach_touch_id=str(env.welcome[ADA])), 1]).encode()
    answer = post(env, Call("/webhooks/sendgrid/events", body, sendgrid_sign(env.key, b"[]")))
    assert answer.status_code == 403
    assert state(env)["evidence"] == [] and state(env)["unattributed"] == []


# --- 2. Replies: provably ours, and not failing SendGrid's checks -------------------------------

def reply_fields(env: Env, to: str, *, spf: str = "pass", dkim: str = "{@analytical.example : pass}",
                 extra_headers: str = "") -> dict[str, bytes]:
    headers = (f"From: Ada <{ADA}>\nTo: {to}\nSubject: Re: hello\nMessage-ID: <r{time.time_ns()}@a.example>\n"
               + extra_headers)
    return {"headers": headers.encode(), "from": f"Ada <{ADA}>".encode(), "to": to.encode(),
            "subject": b"Re: hello", "text": b"Yes, interested.", "SPF": spf.encode(), "dkim": dkim.encode(),
            "charsets": b'{"to":"UTF-8","subject":"UTF-8","from":"UTF-8","text":"UTF-8"}'}


def test_a_reply_with_our_token_counts(env: Env) -> None:
    inbound(env, reply_fields(env, reply_to(env)))
    after = state(env)
    assert "email.replied" in after["evidence"] and after["stage"] == "interested"


def test_a_reply_referencing_our_message_counts(env: Env) -> None:
    mid = tokens.message_id(env.secret, env.welcome[ADA], "vendor.example")
    inbound(env, reply_fields(env, "sales@reply.example.com", extra_headers=f"In-Reply-To: {mid}\n"))
    assert state(env)["stage"] == "interested"


@pytest.mark.parametrize(("case", "reason"), [
    ({"to": "sales@reply.example.com"}, "sender address only"),
    ({"spf": "fail"}, "SPF"),
    ({"spf": "softfail"}, "SPF"),
    ({"dkim": "{@analytical.example : fail}"}, "DKIM"),
], ids=["from-only", "spf-fail", "spf-softfail", "dkim-fail"])
def test_an_unproven_reply_is_unattributed(env: Env, case: dict[str, str], reason: str) -> None:
    checks = {k: v for k, v in case.items() if k != "to"}  # the parameter is shared by both databases
    inbound(env, reply_fields(env, case.get("to", reply_to(env)), **checks))
    after = state(env)
    assert after["stage"] == "aware" and "email.replied" not in after["evidence"]
    assert [t for t, _ in after["unattributed"]] == ["email.replied"]
    assert reason in after["unattributed"][0][1]


def rsvp(uid: str, attendee: str) -> bytes:
    return (f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//x//y//EN\r\nMETHOD:REPLY\r\nBEGIN:VEVENT\r\n"
            f"UID:{uid}\r\nDTSTAMP:20261201T100000Z\r\nDTSTART:20261210T100000Z\r\n"
            f"ATTENDEE;PARTSTAT=ACCEPTED:mailto:{attendee}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n").encode()


@pytest.mark.parametrize(("uid", "attendee", "counts"), [
    ("ours", ADA, True), ("foreign@calendar.example", ADA, False), ("ours", "mallory@evil.example", False),
], ids=["our-invite-its-attendee", "another-invite", "another-attendee"])
def test_a_calendar_reply_counts_only_for_our_invite_and_its_attendee(
        env: Env, uid: str, attendee: str, counts: bool) -> None:
    if uid == "ours":
        uid = tokens.invite_uid(env.secret, env.welcome[ADA], "vendor.example")
    raw = (f"From: {attendee}\r\nTo: {reply_to(env)}\r\nSubject: Accepted\r\nMessage-ID: <c{time.time_ns()}@x>\r\n"
           f"Content-Type: text/calendar; method=REPLY; charset=UTF-8\r\n\r\n").encode() + rsvp(uid, attendee)
    inbound(env, {"email": raw, "SPF": b"pass"})
    after = state(env)
    assert ("meeting.accepted" in after["evidence"]) is counts
    assert bool(after["unattributed"]) is not counts


# --- 3. Machine mail is not a reply -------------------------------------------------------------

def report(env: Env, report_type: str, machine_part: str, sender: str) -> bytes:
    mid = tokens.message_id(env.secret, env.welcome[ADA], "vendor.example")
    return (f"From: {sender}\r\nTo: {reply_to(env)}\r\nSubject: report\r\nMessage-ID: <m{time.time_ns()}@x>\r\n"
            f"MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type={report_type}; boundary=rb\r\n\r\n"
            f"--rb\r\nContent-Type: text/plain\r\n\r\nThis is an automatically generated message.\r\n"
            f"--rb\r\n{machine_part}\r\n"
            f"--rb\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: {mid}\r\nSubject: hello\r\n"
            f"--rb--\r\n").encode()


DSN = ("Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.analytical.example\r\n\r\n"
       f"Final-Recipient: rfc822; {ADA}\r\nAction: failed\r\nStatus: 5.1.1\r\n")
DSN_DELAY = DSN.replace("failed", "delayed").replace("5.1.1", "4.4.7")
MDN = ("Content-Type: message/disposition-notification\r\n\r\nReporting-UA: x; Outlook\r\n"
       f"Final-Recipient: rfc822; {ADA}\r\nDisposition: manual-action/MDN-sent-manually; displayed\r\n")
ARF = ("Content-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\nUser-Agent: x/1.0\r\nVersion: 1\r\n"
       f"Original-Rcpt-To: <{ADA}>\r\n")


@pytest.mark.parametrize(("rtype", "part", "sender", "expect", "suppressed"), [
    ("delivery-status", DSN, "MAILER-DAEMON@mx.analytical.example", "email.bounced", ["email"]),
    ("delivery-status", DSN_DELAY, "postmaster@mx.analytical.example", "email.soft_bounced", []),
    ("disposition-notification", MDN, ADA, "email.read_receipt", []),
    ("feedback-report", ARF, "abuse@isp.example", "email.complained", ["email"]),
], ids=["dsn-hard", "dsn-delayed", "read-receipt", "arf-abuse"])
def test_machine_mail_is_not_a_reply(env: Env, rtype: str, part: str, sender: str, expect: str,
                                     suppressed: list[str]) -> None:
    inbound(env, {"email": report(env, rtype, part, sender), "SPF": b"pass"})
    after = state(env)
    assert "email.replied" not in after["evidence"] and after["stage"] == "aware"
    assert expect in after["evidence"] and after["suppressed"] == suppressed


def test_a_mailer_daemon_bounce_without_a_report_is_a_bounce(env: Env) -> None:
    raw = raw_mail({"From": "Mail Delivery Subsystem <mailer-daemon@googlemail.com>", "To": reply_to(env),
                    "Subject": "Delivery Status Notification (Failure)", "Return-Path": "<>"},
                   f"Address not found.\n550 5.1.1 The email account {ADA} does not exist.")
    inbound(env, {"email": raw, "SPF": b"pass"})
    after = state(env)
    assert after["evidence"] == ["email.bounced"] and after["suppressed"] == ["email"]


# --- 4. Text decoded right, byte for byte -------------------------------------------------------

def stored_reply(env: Env) -> dict[str, Any]:
    after = state(env)
    assert "email.replied" in after["evidence"], after
    return next(d for d in after["evidence_data"] if "full_text" in d)


def test_parsed_mode_applies_the_charsets_map(env: Env) -> None:
    fields = reply_fields(env, reply_to(env))
    fields["text"] = "Grüße aus Köln, ça va très bien".encode("iso-8859-1")
    fields["subject"] = "Re: Größe".encode()
    fields["charsets"] = b'{"to":"UTF-8","subject":"UTF-8","from":"UTF-8","text":"iso-8859-1"}'
    inbound(env, fields)
    data = stored_reply(env)
    assert data["text"] == "Grüße aus Köln, ça va très bien" and data["subject"] == "Re: Größe"


RAW_BODIES = [
    ("quoted-printable", "utf-8", "Très bien, merci — à lundi"),
    ("base64", "utf-8", "Да, давайте созвонимся"),
    ("7bit", "iso-2022-jp", "よろしくお願いします"),
    ("8bit", "windows-1252", "Grüße – “quoted” €5"),
    ("8bit", "shift_jis", "了解しました。来週お願いします"),
]


@pytest.mark.parametrize(("cte", "charset", "text"), RAW_BODIES, ids=[f"{c}-{s}" for c, s, _ in RAW_BODIES])
def test_raw_mode_decodes_each_part_by_its_charset_and_encoding(env: Env, cte: str, charset: str, text: str) -> None:
    import base64
    import quopri

    encoded = text.encode(charset)
    body = {"base64": base64.encodebytes(encoded), "quoted-printable": quopri.encodestring(encoded)}.get(cte, encoded)
    raw = (f"From: Ada <{ADA}>\r\nTo: {reply_to(env)}\r\nSubject: Re: hello\r\nMessage-ID: <e{time.time_ns()}@x>\r\n"
           f"MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=pp\r\n\r\n--pp\r\n"
           f"Content-Type: text/plain; charset={charset}\r\nContent-Transfer-Encoding: {cte}\r\n\r\n").encode()
    raw += body + b"\r\n--pp--\r\n"
    inbound(env, {"email": raw, "SPF": b"pass", "charsets": b'{"to":"UTF-8","from":"UTF-8","subject":"UTF-8"}'})
    assert stored_reply(env)["text"] == text


# --- 5. The reply without the quoted original ---------------------------------------------------

QUOTES = {
    "english": "On Tue, Dec 1, 2026 at 10:00 AM Sam <sam@vendor.example> wrote:\n> hi Ada",
    "gmail-wrapped": "On Tue, Dec 1, 2026 at 10:00 AM Sam Seller <sam@vendor.example>\nwrote:\n> hi Ada",
    "german": "Am Di., 1. Dez. 2026 um 10:00 Uhr schrieb Sam <sam@vendor.example>:\n> hallo",
    "french": "Le mar. 1 déc. 2026 à 10:00, Sam <sam@vendor.example> a écrit :\n> bonjour",
    "spanish": "El mar, 1 dic 2026 a las 10:00, Sam (<sam@vendor.example>) escribió:\n> hola",
    "russian": "1 дек. 2026 г., в 10:00, Sam <sam@vendor.example> написал(а):\n> привет",
    "russian-gmail": "вт, 1 дек. 2026 г. в 10:00, Sam <sam@vendor.example>:\n> привет",
    "japanese-apple": "2026/12/01 10:00、Sam <sam@vendor.example>のメッセージ:\n> こんにちは",
    "japanese-gmail": "2026年12月1日(火) 10:00 Sam <sam@vendor.example>:\n> こんにちは",
    "japanese-wrote": "2026年12月1日 10:00 Sam wrote:\n> こんにちは",
    "outlook-original": "-----Original Message-----\nFrom: Sam\nSent: Tuesday\nhello Ada",
    "outlook-block": "From: Sam <sam@vendor.example>\nSent: Tuesday, December 1, 2026 10:00 AM\nTo: Ada\nhello",
    "outlook-german": "Von: Sam <sam@vendor.example>\nGesendet: Dienstag, 1. Dezember 2026 10:00\nAn: Ada\nhallo",
    "gt-quoted": "> hi Ada\n> are you free?",
}


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)  # how a reply reads: the same on both databases
@pytest.mark.parametrize("quote", list(QUOTES.values()), ids=list(QUOTES))
def test_the_reply_shown_to_reps_has_no_quoted_original(env: Env, quote: str) -> None:
    fields = reply_fields(env, reply_to(env))
    full = "Yes, Thursday works.\n\n" + quote
    fields["text"] = full.encode()
    inbound(env, fields)
    data = stored_reply(env)
    assert data["text"] == "Yes, Thursday works." and data["full_text"] == full
