"""Twilio's two webhook handlers as the route drives them (verify, parse, respond), and the form
details the parsing table in test_webhook_parsing.py leaves out: Twilio's older field names, media
counts, status texts as Twilio spells them, and the refusal texts an operator reads in Twilio's
debugger (the route answers {"error": <text>})."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from twilio.request_validator import RequestValidator

from channels.base import WebhookOutcome, WebhookRequest
from channels.twilio_webhooks import (
    NOT_YET_OURS,
    SIGNATURE_HEADER,
    InboundSmsHandler,
    StatusHandler,
    inbound_sms_events,
    parse_inbound_sms,
    parse_status,
    verify_signature,
)
from outreach.errors import WebhookRejected
from tests.support.payloads import twilio_form

TOKEN = "12345678901234567890123456789012"
URL = "https://hooks.vendor.example/webhooks/twilio/sms"
WHEN = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
OUTCOME = WebhookOutcome(received=1, recorded=1, duplicates=0, unmatched=0)
HELP_TEXT = "Vendor: help at help@vendor.example. Reply STOP to opt out."
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def request(fields: dict[str, str], *, token: str = TOKEN, url: str = URL, signature: str | None = "sign",
            header: str = SIGNATURE_HEADER) -> WebhookRequest:
    signed = RequestValidator(token).compute_signature(url, fields) if signature == "sign" else signature
    headers = {header: signed} if signed is not None else {}
    return WebhookRequest(url=url, headers=headers, query={}, body=b"", received_at=WHEN, fields=fields)


def refusal(exc: pytest.ExceptionInfo[WebhookRejected]) -> tuple[int, str]:
    return exc.value.status, str(exc.value)


# --- verify: the handlers check Twilio's signature over the URL and the form ---------------------------

@pytest.mark.parametrize("make", [lambda token: InboundSmsHandler(token, None), StatusHandler])
def test_a_signed_request_passes_and_anything_else_is_refused(
        make: Callable[[str], InboundSmsHandler | StatusHandler]) -> None:
    handler = make(TOKEN)
    fields = twilio_form("inbound_reply.form")
    handler.verify(request(fields))
    with pytest.raises(WebhookRejected) as exc:
        handler.verify(request(fields, signature=None))
    assert refusal(exc) == (403, f"missing {SIGNATURE_HEADER} header")
    with pytest.raises(WebhookRejected) as exc:  # signed, but under another header: not Twilio's
        handler.verify(request(fields, header="X-Signature"))
    assert refusal(exc) == (403, "missing X-Twilio-Signature header")
    with pytest.raises(WebhookRejected) as exc:
        handler.verify(request({**fields, "Body": "STOP"}, signature=request(fields).headers[SIGNATURE_HEADER]))
    assert refusal(exc) == (403, "Twilio signature does not verify")


def test_without_an_auth_token_nothing_verifies() -> None:
    fields = twilio_form("inbound_reply.form")
    with pytest.raises(WebhookRejected) as exc:
        InboundSmsHandler("", None).verify(request(fields))
    assert refusal(exc) == (403, "Twilio auth token is not configured")


def test_a_signature_with_blanks_around_it_still_verifies() -> None:
    fields = {"MessageSid": "SM1", "From": "+12125550123"}
    signature = RequestValidator(TOKEN).compute_signature(URL, fields)
    verify_signature(TOKEN, URL, fields, f"  {signature}\n")
    with pytest.raises(WebhookRejected):
        verify_signature(TOKEN, URL, fields, signature[:-2])


# --- inbound SMS: parse and respond ---------------------------------------------------------------------

def test_help_is_answered_with_the_help_text_and_records_nothing() -> None:
    handler = InboundSmsHandler(TOKEN, HELP_TEXT)
    req = request(twilio_form("inbound_help.form"))
    assert handler.parse(req) == []
    reply = handler.respond(req, OUTCOME)
    assert reply.media_type == "application/xml"
    assert reply.body == ('<?xml version="1.0" encoding="UTF-8"?><Response><Message>'
                          f"{HELP_TEXT}</Message></Response>")


@pytest.mark.parametrize("name", ["inbound_reply.form", "inbound_stop.form", "inbound_start.form"])
def test_anything_but_help_is_answered_with_silence(name: str) -> None:
    handler = InboundSmsHandler(TOKEN, HELP_TEXT)
    reply = handler.respond(request(twilio_form(name)), OUTCOME)
    assert (reply.body, reply.media_type) == (EMPTY_TWIML, "application/xml")


def test_help_without_a_help_text_is_answered_with_silence() -> None:
    reply = InboundSmsHandler(TOKEN, None).respond(request(twilio_form("inbound_help.form")), OUTCOME)
    assert reply.body == EMPTY_TWIML


@pytest.mark.parametrize(("name", "kind"), [("inbound_stop.form", "sms.opted_out"),
                                            ("inbound_start.form", "sms.opted_in"),
                                            ("inbound_reply.form", "sms.replied")])
def test_inbound_events_take_the_time_the_request_came(name: str, kind: str) -> None:
    fields = twilio_form(name)
    (event,) = InboundSmsHandler(TOKEN, None).parse(request(fields))
    assert (event.type, event.occurred_at, event.phone) == (kind, WHEN, "+12125550123")
    assert event.data["body"] == fields["Body"]
    assert event.data["keyword"] == {"sms.opted_out": "stop", "sms.opted_in": "start"}.get(kind)


def test_an_inbound_event_without_a_time_takes_the_clock() -> None:
    before = datetime.now(UTC)
    (event,) = inbound_sms_events(parse_inbound_sms({"MessageSid": "SM1", "From": "+1", "Body": "hi"}))
    assert before <= event.occurred_at <= datetime.now(UTC)


def test_older_field_names_blanks_and_media() -> None:
    sms = parse_inbound_sms({"SmsSid": " SM9 ", "From": " +12125550123 ", "To": " +14155550100 ", "Body": " Hi ",
                             "NumMedia": "2", "AccountSid": "AC1"})
    assert (sms.message_sid, sms.from_, sms.to, sms.body) == ("SM9", "+12125550123", "+14155550100", " Hi ")
    assert (sms.num_media, sms.account_sid, sms.keyword) == (2, "AC1", None)
    assert sms.data["NumMedia"] == "2"  # every field Twilio posted is kept
    # MessageSid wins over the older SmsSid when both come
    assert parse_inbound_sms({"MessageSid": "SM1", "SmsSid": "SM2", "From": "+1"}).message_sid == "SM1"


@pytest.mark.parametrize(("num_media", "count"), [(None, 0), ("", 0), ("0", 0), ("3", 3), ("many", 0)])
def test_a_media_count_that_is_not_a_number_is_none(num_media: str | None, count: int) -> None:
    fields = {"MessageSid": "SM1", "From": "+1"} | ({"NumMedia": num_media} if num_media is not None else {})
    sms = parse_inbound_sms(fields)
    assert (sms.num_media, sms.to, sms.body, sms.account_sid) == (count, "", "", None)


@pytest.mark.parametrize("fields", [{}, {"MessageSid": "SM1"}, {"From": "+1"}, {"MessageSid": " ", "From": "+1"},
                                    {"MessageSid": "SM1", "From": "  "}])
def test_an_inbound_sms_without_ids_says_what_it_needs(fields: dict[str, str]) -> None:
    with pytest.raises(WebhookRejected) as exc:
        InboundSmsHandler(TOKEN, None).parse(request(fields))
    assert refusal(exc) == (400, "inbound SMS needs MessageSid and From")


# --- status callbacks -----------------------------------------------------------------------------------

def test_a_status_callback_is_tied_by_message_sid_only() -> None:
    fields = twilio_form("status_delivered.form")
    (event,) = StatusHandler(TOKEN).parse(request(fields))
    assert (event.type, event.occurred_at, event.provider_message_id) == ("sms.delivered", WHEN, fields["MessageSid"])
    assert event.requires_touch == NOT_YET_OURS  # kept unattributed until the send's record names the sid
    assert event.source == "twilio" and event.conversation is None


def test_a_status_for_an_inbound_message_records_nothing() -> None:
    assert StatusHandler(TOKEN).parse(request({"MessageSid": "SM1", "MessageStatus": "received"})) == []


def test_a_status_callback_is_answered_with_an_empty_response() -> None:
    reply = StatusHandler(TOKEN).respond(request(twilio_form("status_sent.form")), OUTCOME)
    assert (reply.body, reply.media_type) == ("<Response></Response>", "application/xml")


@pytest.mark.parametrize(("fields", "why"), [
    ({"MessageStatus": "delivered"}, "no MessageSid"),
    ({"SmsSid": "SM1", "MessageStatus": "delivered"}, "no MessageSid"),  # a status callback always has it
    ({"MessageSid": "SM1"}, "status callback needs MessageSid and MessageStatus"),
    ({"MessageSid": "SM1", "MessageStatus": " -- "}, "status callback needs MessageSid and MessageStatus"),
])
def test_a_status_callback_without_ids_says_what_it_needs(fields: dict[str, str], why: str) -> None:
    with pytest.raises(WebhookRejected) as exc:
        StatusHandler(TOKEN).parse(request(fields))
    assert refusal(exc) == (400, why)


@pytest.mark.parametrize(("fields", "kind", "key"), [
    ({"MessageSid": " SM1 ", "MessageStatus": " Delivered "}, "sms.delivered", "twilio:SM1:delivered"),
    ({"SmsSid": "SM1", "SmsStatus": "failed"}, "sms.failed", "twilio:SM1:failed"),  # the older names
    ({"MessageSid": "SM1", "MessageStatus": "Partially Delivered"}, "provider.partially_delivered",
     "twilio:SM1:partially_delivered"),
    ({"MessageSid": "SM1", "MessageStatus": "read"}, "provider.read", "twilio:SM1:read"),
])
def test_status_texts_as_twilio_spells_them(fields: dict[str, str], kind: str, key: str) -> None:
    event = parse_status(fields, now=WHEN)
    assert event is not None and (event.type, event.dedupe_key, event.provider_message_id) == (kind, key, "SM1")


@pytest.mark.parametrize(("error_code", "kept"), [(" 30007 ", "30007"), ("", None), ("  ", None), (None, None)])
def test_a_failed_sms_keeps_twilios_error_code(error_code: str | None, kept: str | None) -> None:
    fields = {"MessageSid": "SM1", "MessageStatus": "undelivered"} | (
        {"ErrorCode": error_code} if error_code is not None else {})
    event = parse_status(fields, now=WHEN)
    assert event is not None and event.type == "sms.failed" and event.data["error_code"] == kept


def test_the_number_a_status_names_and_the_clock() -> None:
    before = datetime.now(UTC)
    event = parse_status({"MessageSid": "SM1", "MessageStatus": "sent", "To": " +12125550123 "})
    assert event is not None and event.phone == "+12125550123" and "error_code" not in event.data
    assert before <= event.occurred_at <= datetime.now(UTC)
    blank = parse_status({"MessageSid": "SM1", "MessageStatus": "sent", "To": " "}, now=WHEN)
    assert blank is not None and blank.phone is None
    missing = parse_status({"MessageSid": "SM1", "MessageStatus": "sent"}, now=WHEN)
    assert missing is not None and missing.phone is None


def test_twilios_advanced_opt_out_names_the_keyword_in_the_form() -> None:
    fields = {"MessageSid": "SM1", "From": "+12125550123", "Body": "Arrêt", "OptOutType": "STOP"}
    (event,) = InboundSmsHandler(TOKEN, None).parse(request(fields))
    assert (event.type, event.data["keyword"]) == ("sms.opted_out", "stop")
