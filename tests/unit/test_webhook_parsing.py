"""SendGrid and Twilio webhook verification and parsing, against payloads in the providers' formats."""

from __future__ import annotations

import base64
import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sendgrid.helpers.eventwebhook.eventwebhook_header import EventWebhookHeader
from twilio.request_validator import RequestValidator

from channels.base import TOUCH_ARG
from channels.sendgrid_inbound import InboundEmail, parse_inbound, reply_tokens, strip_quoted
from channels.sendgrid_webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, parse_events, verify_event_signature
from channels.twilio_webhooks import (
    inbound_sms_events,
    keyword_of,
    parse_inbound_sms,
    parse_status,
    twiml_message,
    verify_signature,
)
from outreach.errors import WebhookRejected
from outreach.evidence import RESPONSES
from tests.support import FIXTURES
from tests.support.payloads import load_form, twilio_form

NOW = 1_741_170_000.0


def inbound(name: str) -> InboundEmail:
    form, files = load_form(name)
    return parse_inbound(form, files)


def rejected(exc: pytest.ExceptionInfo[WebhookRejected], status: int) -> str:
    assert exc.value.status == status
    return str(exc.value)


# --- SendGrid Event Webhook signature ----------------------------------------------------------

@pytest.fixture(scope="module")
def signing_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def public_b64(key: ec.EllipticCurvePrivateKey) -> str:
    der = key.public_key().public_bytes(serialization.Encoding.DER,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


def sign(key: ec.EllipticCurvePrivateKey, timestamp: str, body: bytes) -> str:
    return base64.b64encode(key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))).decode()


BODY = (FIXTURES / "sendgrid" / "events_all_types.json").read_bytes()


def test_header_names_are_the_sdks() -> None:
    assert SIGNATURE_HEADER == EventWebhookHeader.SIGNATURE
    assert TIMESTAMP_HEADER == EventWebhookHeader.TIMESTAMP


def test_good_signature_passes(signing_key: ec.EllipticCurvePrivateKey) -> None:
    ts = str(int(NOW) - 30)
    verify_event_signature(public_b64(signing_key), BODY, sign(signing_key, ts, BODY), ts, now=NOW)


def test_pem_armoured_key_is_accepted(signing_key: ec.EllipticCurvePrivateKey) -> None:
    pem = signing_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    ts = str(int(NOW))
    verify_event_signature(pem, BODY, sign(signing_key, ts, BODY), ts, now=NOW)


@pytest.mark.parametrize("case", ["other_key", "body_changed", "timestamp_changed", "not_base64", "garbage_der"])
def test_wrong_signature_is_403(signing_key: ec.EllipticCurvePrivateKey, case: str) -> None:
    ts = str(int(NOW))
    body, signature, sent_ts = BODY, sign(signing_key, ts, BODY), ts
    if case == "other_key":
        signature = sign(ec.generate_private_key(ec.SECP256R1()), ts, BODY)
    elif case == "body_changed":
        body = BODY.replace(b'"click"', b'"open" ')
    elif case == "timestamp_changed":
        sent_ts = str(int(NOW) - 1)
    elif case == "not_base64":
        signature = "!!!not base64!!!"
    else:
        signature = base64.b64encode(b"\x30\x03\x02\x01").decode()
    with pytest.raises(WebhookRejected) as exc:
        verify_event_signature(public_b64(signing_key), body, signature, sent_ts, now=NOW)
    assert "does not verify" in rejected(exc, 403)


@pytest.mark.parametrize(("signature", "timestamp"), [(None, "1"), ("sig", None), ("", "1"), ("sig", "")])
def test_missing_headers_are_403(signing_key: ec.EllipticCurvePrivateKey, signature: str | None,
                                 timestamp: str | None) -> None:
    with pytest.raises(WebhookRejected) as exc:
        verify_event_signature(public_b64(signing_key), BODY, signature, timestamp, now=NOW)
    assert "missing" in rejected(exc, 403)


@pytest.mark.parametrize("key", ["", "bm90IGEga2V5"])
def test_unset_or_invalid_key_is_403(signing_key: ec.EllipticCurvePrivateKey, key: str) -> None:
    ts = str(int(NOW))
    with pytest.raises(WebhookRejected) as exc:
        verify_event_signature(key, BODY, sign(signing_key, ts, BODY), ts, now=NOW)
    assert "key" in rejected(exc, 403)


@pytest.mark.parametrize(("age", "ok"), [(599, True), (600, True), (601, False), (86_400, False), (-601, False)])
def test_stale_timestamp_is_a_replay(signing_key: ec.EllipticCurvePrivateKey, age: int, ok: bool) -> None:
    ts = str(int(NOW) - age)
    args = (public_b64(signing_key), BODY, sign(signing_key, ts, BODY), ts)
    if ok:
        verify_event_signature(*args, max_age=600, now=NOW)
    else:
        with pytest.raises(WebhookRejected) as exc:
            verify_event_signature(*args, max_age=600, now=NOW)
        assert "replay" in rejected(exc, 403)


def test_non_numeric_timestamp_is_403(signing_key: ec.EllipticCurvePrivateKey) -> None:
    with pytest.raises(WebhookRejected) as exc:
        verify_event_signature(public_b64(signing_key), BODY, sign(signing_key, "soon", BODY), "soon", now=NOW)
    rejected(exc, 403)


# --- SendGrid Event Webhook parsing ------------------------------------------------------------

EXPECTED_TYPES = [  # fixture order: (event, normalized type, is a response)
    ("processed", "provider.processed", False),
    ("deferred", "provider.deferred", False),
    ("delivered", "email.delivered", False),
    ("open", "email.opened", False),
    ("click", "email.clicked", True),
    ("bounce", "email.bounced", False),
    ("bounce", "provider.blocked", False),  # type: blocked
    ("dropped", "email.bounced", False),  # Bounced Address
    ("dropped", "email.unsubscribed", False),  # Unsubscribed Address
    ("dropped", "email.complained", False),  # Spam Reporting Address
    ("dropped", "email.bounced", False),  # Invalid
    ("dropped", "provider.dropped", False),  # Invalid SMTPAPI header
    ("dropped", "provider.dropped", False),  # Spam Content
    ("spamreport", "email.complained", False),
    ("unsubscribe", "email.unsubscribed", False),
    ("group_unsubscribe", "email.unsubscribed", False),
    ("group_resubscribe", "email.resubscribed", False),
    ("account_status_change", "provider.account_status_change", False),  # unknown fallback
]


@pytest.mark.parametrize(("index", "expected"), list(enumerate(EXPECTED_TYPES)))
def test_every_event_type_maps(index: int, expected: tuple[str, str, bool]) -> None:
    raw = json.loads(BODY)[index]
    event = parse_events(BODY)[index]
    assert raw["event"] == expected[0]
    assert (event.type, event.type in RESPONSES) == expected[1:]
    assert event.source == "sendgrid"
    assert event.data == raw
    assert event.dedupe_key == f"sendgrid:{raw['sg_event_id']}"
    assert event.occurred_at == datetime.fromtimestamp(raw["timestamp"], UTC)
    assert event.occurred_at.tzinfo is not None


def test_only_clicks_count_as_responses() -> None:
    events = parse_events(BODY)
    assert len(events) == len(EXPECTED_TYPES)
    assert {e.type for e in events if e.type in RESPONSES} == {"email.clicked"}


def test_click_keeps_its_links_and_ids() -> None:
    click = parse_events(BODY)[4]
    assert click.data["url"] == "https://vendor.example/pricing"
    assert click.touch_id == 42
    assert click.provider_message_id == "14c5d75ce93"
    assert click.email == "dana@buyer.example"
    assert click.occurred_at == datetime(2025, 3, 5, 10, 5, tzinfo=UTC)


def one(**fields: Any) -> bytes:
    return json.dumps([{"event": "delivered", "timestamp": 1741168810, **fields}]).encode()


@pytest.mark.parametrize(("value", "expected"), [
    ("42", 42), (" 7 ", 7), (42, 42), ("abc", None), ("4.2", None), ("-3", None), (True, None), (None, None),
])
def test_touch_id_from_custom_arg(value: Any, expected: int | None) -> None:
    assert parse_events(one(**{TOUCH_ARG: value}))[0].touch_id == expected


def test_missing_custom_arg_and_ids() -> None:
    event = parse_events(one(email="Dana@Buyer.Example"))[0]
    assert (event.touch_id, event.provider_message_id, event.email) == (None, None, "dana@buyer.example")
    assert parse_events(one(sg_message_id="abc"))[0].provider_message_id == "abc"


def test_dedupe_key_falls_back_to_a_content_hash() -> None:
    first = parse_events(one(email="a@b.example"))[0].dedupe_key
    assert first is not None and first.startswith("sendgrid:sha256:")
    assert parse_events(one(email="a@b.example"))[0].dedupe_key == first
    assert parse_events(one(email="c@b.example"))[0].dedupe_key != first


@pytest.mark.parametrize(("body", "mentions"), [
    (b"not json", "not JSON"),
    (b"\xff\xfe", "not JSON"),
    (b'{"event": "open", "timestamp": 1}', "array"),
])
def test_malformed_batches_are_400(body: bytes, mentions: str) -> None:
    with pytest.raises(WebhookRejected) as exc:
        parse_events(body)
    assert mentions in rejected(exc, 400)


@pytest.mark.parametrize(("body", "mentions"), [
    (b"[1]", "#0"),
    (b'[{"timestamp": 1}]', "'event'"),
    (b'[{"event": "open"}]', "timestamp"),
    (b'[{"event": "open", "timestamp": "yesterday"}]', "timestamp"),
    (b'[{"event": "open", "timestamp": true}]', "timestamp"),
    (b'[{"event": "open", "timestamp": 1e20}]', "impossible"),
    (b'[{"event": "open", "timestamp": 1}, {"event": "click"}]', "#1"),
])
def test_a_malformed_event_is_kept_raw_not_refused(body: bytes, mentions: str) -> None:
    """SendGrid retries a refused batch for a day and then drops it: the good events would be lost."""
    events = parse_events(body)
    bad = [e for e in events if e.type == "provider.malformed"]
    assert len(bad) == 1 and mentions in (bad[0].requires_touch or "")
    assert bad[0].data["raw"] == json.loads(body)[-1]


def test_empty_batch() -> None:
    assert parse_events(b"[]") == []


# --- SendGrid Inbound Parse --------------------------------------------------------------------

def test_sdk_parsed_sample() -> None:
    mail = inbound("sdk_default_parsed.txt")
    assert (mail.sender, mail.sender_name) == ("test@example.com", "Example User")
    assert mail.recipients == ["inbound@inbound.example.com"]
    assert mail.subject == "Testing non-raw"  # parsed mode: SendGrid's decoded field wins
    assert mail.text == "Hello Twilio SendGrid!"
    assert mail.html is not None and "<strong>" in mail.html
    assert not mail.auto_reply and mail.calendar_replies == []


@pytest.mark.parametrize("name", ["sdk_raw.txt", "sdk_raw_with_attachment.txt"])
def test_sdk_raw_samples(name: str) -> None:
    mail = inbound(name)
    assert mail.sender == "test@example.com"
    assert mail.subject.startswith("Inbound Parse Test Raw Data")  # raw mode: the message's header wins
    assert mail.text == "Hello Twilio SendGrid!"
    assert mail.recipients == ["inbound@inbound.inbound.com"]
    assert mail.calendar_replies == []


def test_gmail_reply_threading_and_quote() -> None:
    mail = inbound("reply_parsed.txt")
    assert mail.sender == "dana@buyer.example"
    assert mail.message_id == "<CAF3x9Yk2vQm1dana4Zr8=w@mail.gmail.com>"
    assert mail.in_reply_to == "<touch-42.1741168800@vendor.example>"
    assert mail.references == ["<touch-42.1741168800@vendor.example>"]
    assert mail.recipients == ["reply+t42k7q@reply.vendor.example", "pat@buyer.example"]
    assert mail.text == "Hi Ann,\n\nThursday works. Can you send a calendar invite for 3pm CET?\n\nDana"
    assert "> Would a 20-minute call" in mail.full_text
    assert reply_tokens(mail, "reply.vendor.example") == ["t42k7q"]


def test_outlook_reply_raw() -> None:
    mail = inbound("reply_raw.txt")
    assert (mail.sender, mail.sender_name) == ("pat.mueller@buyer.example", "Pat Müller")
    assert mail.text.endswith("Grüße,\nPat")
    assert "Would a 20-minute call" not in mail.text and "From:" not in mail.text
    assert mail.in_reply_to == "<touch-43.1741165200@vendor.example>"
    assert not mail.auto_reply  # X-Auto-Response-Suppress alone is ordinary Outlook mail


@pytest.mark.parametrize(("name", "reason"), [("ooo_raw.txt", "Auto-Submitted"), ("ooo_parsed.txt", "auto-replied")])
def test_out_of_office(name: str, reason: str) -> None:
    mail = inbound(name)
    assert mail.auto_reply
    assert mail.auto_reply_reason is not None and reason in mail.auto_reply_reason


@pytest.mark.parametrize(("name", "partstat", "attendee", "comment"), [
    ("google_rsvp_raw.txt", "ACCEPTED", "dana@buyer.example", None),
    ("google_rsvp_parsed.txt", "ACCEPTED", "dana@buyer.example", None),
    ("outlook_rsvp_raw.txt", "TENTATIVE", "pat.mueller@buyer.example", "I might be a few minutes late."),
    ("outlook_rsvp_parsed.txt", "TENTATIVE", "pat.mueller@buyer.example", "I might be a few minutes late."),
])
def test_rsvp_mails(name: str, partstat: str, attendee: str, comment: str | None) -> None:
    mail = inbound(name)
    # Google sends the calendar twice (inline part and invite.ics): one answer, not two.
    assert len(mail.calendar_replies) == 1
    reply = mail.calendar_replies[0]
    assert (reply.uid, reply.partstat, reply.attendee, reply.comment) == (
        "touch-44@outreach.vendor.example", partstat, attendee, comment)
    assert reply_tokens(mail, "reply.vendor.example") == ["t44m3x"]


def test_parsed_rsvp_as_plain_field_without_files() -> None:
    form, files = load_form("google_rsvp_parsed.txt")
    form["attachment1"] = files["attachment1"].decode()
    assert parse_inbound(form).calendar_replies[0].partstat == "ACCEPTED"


def test_broken_or_request_calendars_do_not_reject_the_mail() -> None:
    form, _ = load_form("google_rsvp_parsed.txt")
    for ics in ("broken.ics", "google_request.ics"):
        files = {"attachment1": (FIXTURES / "calendar" / ics).read_bytes()}
        mail = parse_inbound(form, files)
        assert mail.calendar_replies == [] and mail.sender == "dana@buyer.example"


def test_bytes_fields_use_sendgrids_charsets() -> None:
    form: dict[str, object] = {"from": b"Jo <jo@kunde.example>", "text": "Grüße".encode("latin-1"),
                                    "subject": b"Hallo", "charsets": '{"text": "iso-8859-1"}'}
    mail = parse_inbound(form)
    assert (mail.text, mail.subject, mail.sender) == ("Grüße", "Hallo", "jo@kunde.example")


def test_raw_8bit_body_headers_and_calendar_keep_their_characters() -> None:
    ics = (FIXTURES / "calendar" / "outlook_reply_tentative.ics").read_text(encoding="utf-8")
    raw = ("From: =?utf-8?q?J=C3=BCrgen?= <j@kunde.example>\nTo: reply+a@r.example\nSubject: Grüße · 日本\n"
           "MIME-Version: 1.0\nContent-Type: multipart/alternative; boundary=b\n\n"
           "--b\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\nGrüße · 日本語\n"
           "--b\nContent-Type: text/calendar; charset=utf-8; method=REPLY\nContent-Transfer-Encoding: 7bit\n\n"
           f"{ics}\n--b--\n")
    for value in (raw, raw.encode()):
        mail = parse_inbound({"email": value})
        assert (mail.sender_name, mail.subject, mail.text) == ("Jürgen", "Grüße · 日本", "Grüße · 日本語")
        assert [r.attendee_name for r in mail.calendar_replies] == ["Müller, Pat"]


def test_upload_objects_in_the_form_are_ignored() -> None:
    form: dict[str, object] = {"from": "a@b.example", "text": "hi", "attachment1": object()}
    assert parse_inbound(form).text == "hi"


def test_html_only_mail_gets_text_without_the_quote() -> None:
    html = "<div>Yes, <b>Thursday</b> &amp; 3pm.</div><blockquote>Old &gt; stuff</blockquote>"
    mail = parse_inbound({"from": "a@b.example", "html": html})
    assert mail.text == "Yes, Thursday & 3pm."


@pytest.mark.parametrize("form", [{}, {"to": "a@b.example", "text": "hi"}, {"from": "nobody"},
                                  {"email": "Subject: no sender\n\nhello"}])
def test_unusable_inbound_posts_are_400(form: dict[str, str]) -> None:
    with pytest.raises(WebhookRejected) as exc:
        parse_inbound(form)
    rejected(exc, 400)


def raw_mail(subject: str, headers: dict[str, str]) -> InboundEmail:
    lines = [f"{k}: {v}" for k, v in headers.items()]
    text = "\n".join(["From: Dana <dana@buyer.example>", "To: reply+x@r.example", f"Subject: {subject}",
                      *lines, "", "Thanks"])
    return parse_inbound({"email": text})


@pytest.mark.parametrize(("subject", "headers", "auto"), [
    ("Re: pricing", {}, False),
    ("Re: pricing", {"Auto-Submitted": "no"}, False),
    ("Re: pricing", {"Auto-Submitted": "auto-replied"}, True),
    ("Re: pricing", {"Auto-Submitted": "auto-generated; owner-email=\"x@y.example\""}, True),
    ("Re: pricing", {"X-Autoreply": "yes"}, True),
    ("Re: pricing", {"X-Autorespond": "Away"}, True),
    ("Re: pricing", {"Precedence": "bulk"}, True),
    ("Re: pricing", {"Precedence": "junk"}, True),
    ("Re: pricing", {"Precedence": "auto_reply"}, True),
    ("Re: pricing", {"Precedence": "list"}, False),
    ("Re: pricing", {"X-Auto-Response-Suppress": "All"}, False),
    ("Re: pricing", {"X-Auto-Response-Suppress": "All", "X-MS-Exchange-Inbox-Rules-Loop": "d@b.example"}, True),
    ("Out of Office: Re: pricing", {}, True),
    ("Automatic reply: pricing", {}, True),
    ("Auto-Reply: pricing", {}, True),
    ("AutoReply", {}, True),
    ("Abwesenheitsnotiz: pricing", {}, True),
    ("=?utf-8?q?R=C3=A9ponse_automatique_=3A_pricing?=", {}, True),
    ("Re: out of office next week?", {}, False),
])
def test_auto_reply_detection(subject: str, headers: dict[str, str], auto: bool) -> None:
    mail = raw_mail(subject, headers)
    assert mail.auto_reply is auto
    assert (mail.auto_reply_reason is not None) is auto


@pytest.mark.parametrize(("text", "expected"), [
    ("Sounds good.", "Sounds good."),
    ("Yes.\r\n\r\nOn Tue, Mar 4, 2025 at 9:00 AM Ann <a@v.example> wrote:\r\n> Call?", "Yes."),
    ("Yes.\n\nOn Tue, Mar 4, 2025 at 9:00 AM Ann Rep <ann@vendor.example>\nwrote:\n\n> Call?", "Yes."),
    ("Yes.\n-----Original Message-----\nFrom: Ann\nCall?", "Yes."),
    ("Yes.\n\n________________________________\nFrom: Ann Rep\nSent: Tuesday\nCall?", "Yes."),
    ("Yes.\nFrom: Ann Rep <a@v.example>\nSent: Tuesday, March 4, 2025 9:00 AM\nCall?", "Yes."),
    ("Ja.\n\nAm 04.03.2025 um 09:00 schrieb Ann Rep <a@v.example>:\n> Call?", "Ja."),
    ("Oui.\n\nLe mar. 4 mars 2025 à 09:00, Ann <a@v.example> a écrit :\n> Call?", "Oui."),
    ("Yes.\n> Thursday?\nNo, Friday.", "Yes.\nNo, Friday."),
    ("On Monday we can meet.\nHere is what I wrote:", "On Monday we can meet.\nHere is what I wrote:"),
    ("On Tue, Mar 4, 2025 at 9:00 AM Ann wrote:\n> Call?\nMy answer below.", "My answer below."),
])
def test_quoted_text_stripping(text: str, expected: str) -> None:
    assert strip_quoted(text) == expected


def test_reply_tokens() -> None:
    mail = InboundEmail(sender="d@b.example", sender_name=None, subject="", text="", recipients=[
        "REPLY+AbC9@Reply.Vendor.Example", "reply+abc9@reply.vendor.example", "reply+other@elsewhere.example",
        "reply@reply.vendor.example", "reply+@reply.vendor.example", "ann@reply.vendor.example",
        "Reply+x7@reply.vendor.example"])
    assert reply_tokens(mail, "reply.VENDOR.example") == ["AbC9", "x7"]


# --- Twilio ------------------------------------------------------------------------------------

TOKEN = "12345678901234567890123456789012"
SMS_URL = "https://hooks.vendor.example/webhooks/twilio/sms"


def test_twilio_signature_good_and_tampered() -> None:
    params = twilio_form("inbound_reply.form")
    signature = RequestValidator(TOKEN).compute_signature(SMS_URL, params)
    verify_signature(TOKEN, SMS_URL, params, signature)
    verify_signature(TOKEN, "https://hooks.vendor.example:443/webhooks/twilio/sms", params, signature)
    tampered: list[tuple[str, str, dict[str, str], str]] = [
        (TOKEN, SMS_URL.replace("/sms", "/status"), params, signature),
        (TOKEN, SMS_URL + "?x=1", params, signature),
        (TOKEN, SMS_URL, {**params, "Body": "STOP"}, signature),
        (TOKEN, SMS_URL, {**params, "Extra": "1"}, signature),
        ("0" * 32, SMS_URL, params, signature),
    ]
    for args in tampered:
        with pytest.raises(WebhookRejected) as exc:
            verify_signature(*args)
        assert "does not verify" in rejected(exc, 403)


@pytest.mark.parametrize(("token", "signature"), [(TOKEN, None), (TOKEN, ""), ("", "c2ln")])
def test_twilio_signature_missing(token: str, signature: str | None) -> None:
    with pytest.raises(WebhookRejected) as exc:
        verify_signature(token, SMS_URL, {"MessageSid": "SM1"}, signature)
    rejected(exc, 403)


@pytest.mark.parametrize(("name", "keyword", "event_type", "counts"), [
    ("inbound_reply.form", None, "sms.replied", True),
    ("inbound_stop.form", "stop", "sms.opted_out", False),
    ("inbound_start.form", "start", "sms.opted_in", False),
    ("inbound_stop_please.form", None, "sms.replied", True),
])
def test_inbound_sms(name: str, keyword: str | None, event_type: str, counts: bool) -> None:
    params = twilio_form(name)
    sms = parse_inbound_sms(params)
    assert (sms.message_sid, sms.from_, sms.to) == (params["MessageSid"], "+12125550123", "+14155550100")
    assert sms.keyword == keyword and sms.body == params["Body"] and sms.num_media == 0
    when = datetime(2025, 3, 5, 10, 0, tzinfo=UTC)
    [event] = inbound_sms_events(sms, now=when)
    assert (event.type, event.type in RESPONSES) == (event_type, counts)
    assert event.conversation == "sms"  # the engine ties it to the latest SMS touch to that number
    assert event.dedupe_key == f"twilio:{params['MessageSid']}"
    assert (event.phone, event.occurred_at, event.source) == ("+12125550123", when, "twilio")
    assert event.data["Body"] == params["Body"]


def test_help_is_answered_not_recorded() -> None:
    sms = parse_inbound_sms(twilio_form("inbound_help.form"))
    assert sms.keyword == "help"
    assert inbound_sms_events(sms) == []


@pytest.mark.parametrize(("body", "expected"), [
    *[(word, "stop") for word in ("STOP", "stop", "  Stop  ", "\tSTOP\n", "StopAll", "unsubscribe", "Cancel",
                                  "END", "quit", "Revoke", "OPTOUT", "STOP ALL", "stop  all", "STOP.", "Stop!",
                                  " stop. ", "stop?!", "Unsubscribe.")],
    *[(word, "start") for word in ("START", "unstop", " Yes ", "Start.", "UNSTOP!")],
    *[(word, "help") for word in ("HELP", "info", " Help\n", "Help?", "info.")],
    *[(text, None) for text in ("stop please", "Please stop", "yes please", "", "helpful", ".stop", "stop it.")],
])
def test_keyword_table(body: str, expected: str | None) -> None:
    assert keyword_of(body) == expected
    assert parse_inbound_sms({"MessageSid": "SM1", "From": "+1", "Body": body}).keyword == expected


def test_opt_out_type_wins_over_body() -> None:
    assert keyword_of("Arrêt", "STOP") == "stop"
    assert keyword_of("stop please", "FOO") is None
    assert keyword_of("start", "") == "start"


@pytest.mark.parametrize("params", [{}, {"MessageSid": "SM1"}, {"From": "+1"}, {"MessageSid": "", "From": "+1"}])
def test_inbound_sms_without_ids_is_400(params: dict[str, str]) -> None:
    with pytest.raises(WebhookRejected) as exc:
        parse_inbound_sms(params)
    rejected(exc, 400)


@pytest.mark.parametrize(("name", "event_type", "error_code"), [
    ("status_sent.form", "provider.sent", None),
    ("status_delivered.form", "sms.delivered", None),
    ("status_undelivered.form", "sms.failed", "30003"),
    ("status_failed.form", "sms.failed", "30007"),
])
def test_status_callbacks(name: str, event_type: str, error_code: str | None) -> None:
    params = twilio_form(name)
    event = parse_status(params)
    assert event is not None
    assert event.type == event_type and event.type not in RESPONSES
    assert event.provider_message_id == params["MessageSid"]
    assert event.dedupe_key == f"twilio:{params['MessageSid']}:{params['MessageStatus']}"
    assert event.phone == "+12125550123"
    assert event.data.get("error_code") == error_code


@pytest.mark.parametrize(("status", "expected"), [
    ("queued", "provider.queued"), ("sending", "provider.sending"), ("accepted", "provider.accepted"),
    ("Delivered", "sms.delivered"), ("partially_delivered", "provider.partially_delivered"),
    ("received", None), ("receiving", None),
])
def test_status_table(status: str, expected: str | None) -> None:
    event = parse_status({"MessageSid": "SM1", "MessageStatus": status, "To": "+1"})
    assert (event.type if event else None) == expected


@pytest.mark.parametrize("params", [{}, {"MessageSid": "SM1"}, {"MessageStatus": "sent"}])
def test_status_without_ids_is_400(params: dict[str, str]) -> None:
    with pytest.raises(WebhookRejected) as exc:
        parse_status(params)
    rejected(exc, 400)


def test_twiml() -> None:
    empty = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
    assert twiml_message(None) == empty and twiml_message("") == empty
    answer = twiml_message("Reply STOP to opt out. Q&A: <help@vendor.example>\x07")
    assert "&amp;" in answer and "&lt;help@vendor.example&gt;" in answer
    root = ET.fromstring(answer.encode())
    message = root.find("Message")
    assert root.tag == "Response" and message is not None
    assert message.text == "Reply STOP to opt out. Q&A: <help@vendor.example>"
