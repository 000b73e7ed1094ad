"""The SendGrid and Twilio providers, through the real SDKs, against the sandbox; and the sandbox
itself (validation, faults, signed callbacks and events, exact counts under concurrency)."""

from __future__ import annotations

import base64
import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from sendgrid.helpers.eventwebhook import EventWebhook
from twilio.request_validator import RequestValidator

from channels.base import TOUCH_ARG, OutgoingMessage, ProviderError
from channels.sendgrid import SendGridProvider
from channels.twilio_sms import TwilioSmsProvider
from outreach.sandbox.server import Sandbox

SID = "AC" + "1" * 32
TOKEN = "test-auth-token"
SENDER = "+15005550006"
INVITE = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\nUID:touch-42@example.com\r\n"
          "SUMMARY:Demo\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")


class Receiver:
    """A local HTTP endpoint that records what is posted to it and answers `status`."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, dict[str, str], bytes]] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.posts.append((self.path, dict(self.headers.items()), body))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def running_sandbox() -> Iterator[Sandbox]:
    with Sandbox() as sb:
        yield sb


@pytest.fixture
def sb(running_sandbox: Sandbox) -> Sandbox:
    running_sandbox.clear()
    return running_sandbox


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port bound but not listening for the test's whole length: a connection to it is refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield int(s.getsockname()[1])


def email(**overrides: Any) -> OutgoingMessage:
    fields: dict[str, Any] = dict(
        touch_id=42, channel="email", to_email="buyer@acme.test", to_name="Bea Buyer",
        from_email="sales@example.com", from_name="Example Sales", subject="Your pilot",
        text="Hello Bea", html="<p>Hello Bea</p>", reply_to="r-42@reply.example.com",
        message_id="<touch-42.abc@example.com>",
        headers={"List-Unsubscribe": "<https://app.example.com/u/tok42>",
                 "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"},
        categories=["nurture", "evaluation"], custom_args={"rule": "pilot-followup"},
    )
    fields.update(overrides)
    return OutgoingMessage(**fields)


def sms(**overrides: Any) -> OutgoingMessage:
    fields: dict[str, Any] = dict(touch_id=7, channel="sms", to_phone="+14155550101", text="Hi Bea, pilot?")
    fields.update(overrides)
    return OutgoingMessage(**fields)


def sendgrid(sb: Sandbox, timeout: float = 5.0) -> SendGridProvider:
    return SendGridProvider("SG.test-key", sb.url, timeout=timeout)


def twilio(sb: Sandbox, **kwargs: Any) -> TwilioSmsProvider:
    return TwilioSmsProvider(SID, TOKEN, sb.url, SENDER, **kwargs)


# --- SendGrid -----------------------------------------------------------------------------------------

def test_sendgrid_send_carries_touch_id_headers_and_invite(sb: Sandbox) -> None:
    result = sendgrid(sb).send(email(calendar=INVITE))

    [got] = sb.messages("email")
    assert result.provider == "sendgrid"
    assert result.provider_message_id == got["message_id"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", result.provider_message_id)
    assert got["custom_args"] == {TOUCH_ARG: "42", "rule": "pilot-followup"}
    assert got["headers"] == {"Message-ID": "<touch-42.abc@example.com>",
                              "List-Unsubscribe": "<https://app.example.com/u/tok42>",
                              "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
    assert (got["to"], got["to_name"], got["from"], got["from_name"]) == (
        "buyer@acme.test", "Bea Buyer", "sales@example.com", "Example Sales")
    assert got["reply_to"] == "r-42@reply.example.com"
    assert (got["subject"], got["text"], got["html"]) == ("Your pilot", "Hello Bea", "<p>Hello Bea</p>")
    assert got["categories"] == ["nurture", "evaluation"]
    request = got["request"]
    assert [c["type"] for c in request["content"]] == ["text/plain", "text/html", "text/calendar; method=REQUEST"]
    assert request["content"][2]["value"] == INVITE
    [attachment] = got["attachments"]
    assert (attachment["filename"], attachment["type"], attachment["disposition"]) == (
        "invite.ics", "application/ics", "attachment")
    assert base64.b64decode(attachment["content"]).decode() == INVITE


def test_sendgrid_plain_message_has_only_what_it_needs(sb: Sandbox) -> None:
    sendgrid(sb).send(email(html=None, reply_to=None, headers={}, categories=[], custom_args={}, message_id=None))

    request = sb.messages("email")[0]["request"]
    assert request["content"] == [{"type": "text/plain", "value": "Hello Bea"}]
    assert request["custom_args"] == {TOUCH_ARG: "42"}
    assert not {"reply_to", "headers", "categories", "attachments"} & request.keys()


@pytest.mark.parametrize("status", [429, 500, 503])
def test_sendgrid_passing_faults_are_retryable_and_send_nothing(sb: Sandbox, status: int) -> None:
    provider = sendgrid(sb)
    sb.fail_next(status, count=2, retry_after=7)

    for _ in range(2):
        with pytest.raises(ProviderError) as err:
            provider.send(email())
        assert err.value.retryable and err.value.status == status
        assert f"SendGrid answered {status}" in err.value.reason and "retry after 7s" in err.value.reason
        assert err.value.retry_after == "7"  # the dispatcher's retry waits at least that long
    assert sb.messages() == []
    provider.send(email())
    assert len(sb.messages("email")) == 1


@pytest.mark.parametrize(("overrides", "said"), [
    ({"headers": {"Reply-To": "x@y.test"}}, "The header Reply-To is reserved and cannot be set. (field headers)"),
    ({"subject": None}, "The subject is required."),
    ({"to_email": "not-an-address"}, "Does not contain a valid address. (field personalizations.0.to.0.email)"),
])
def test_sendgrid_refusal_is_permanent_and_says_what_sendgrid_said(
        sb: Sandbox, overrides: dict[str, Any], said: str) -> None:
    with pytest.raises(ProviderError) as err:
        sendgrid(sb).send(email(**overrides))
    assert not err.value.retryable and err.value.status == 400
    assert err.value.reason.startswith("SendGrid answered 400: ") and said in err.value.reason
    assert sb.messages() == []


def test_sendgrid_rejected_key_is_permanent(sb: Sandbox) -> None:
    with pytest.raises(ProviderError) as err:
        SendGridProvider(" ", sb.url).send(email())
    assert not err.value.retryable and err.value.status == 401
    assert "authorization grant is invalid" in err.value.reason


def test_sendgrid_timeout_is_retryable_though_the_message_may_have_gone(sb: Sandbox) -> None:
    sb.fail_next(None, delay=3.0)  # accepted, but only after the client gave up
    started = time.monotonic()
    with pytest.raises(ProviderError) as err:
        sendgrid(sb, timeout=0.3).send(email())
    assert time.monotonic() - started < 2.5  # gave up at its timeout, well before the answer (room for a busy machine)
    assert err.value.retryable and err.value.status is None
    assert "may or may not have accepted" in err.value.reason
    deadline = time.monotonic() + 3
    while not sb.messages() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(sb.messages("email")) == 1


def test_unreachable_providers_are_retryable(closed_port: int) -> None:
    url = f"http://127.0.0.1:{closed_port}"
    with pytest.raises(ProviderError) as err:
        SendGridProvider("SG.key", url, timeout=1).send(email())
    assert err.value.retryable
    with pytest.raises(ProviderError) as err:
        TwilioSmsProvider(SID, TOKEN, url, SENDER, timeout=1).send(sms())
    assert err.value.retryable


def test_missing_address_is_refused_before_any_call(sb: Sandbox) -> None:
    with pytest.raises(ProviderError) as err:
        sendgrid(sb).send(email(to_email=None))
    assert not err.value.retryable
    with pytest.raises(ProviderError) as err:
        twilio(sb).send(sms(to_phone=None))
    assert not err.value.retryable
    with pytest.raises(ProviderError) as err:
        TwilioSmsProvider(SID, TOKEN, sb.url, "").send(sms())
    assert not err.value.retryable and "sms_from" in err.value.reason
    assert sb.messages() == []


# --- Twilio --------------------------------------------------------------------------------------------

def test_twilio_send_posts_documented_fields_and_signed_status_callbacks(sb: Sandbox, receiver: Receiver) -> None:
    callback = f"{receiver.url}/webhooks/twilio/status"
    result = twilio(sb).send(sms(status_callback=callback))

    [got] = sb.messages("sms")
    assert result.provider == "twilio"
    assert re.fullmatch(r"SM[0-9a-f]{32}", result.provider_message_id)
    assert got["sid"] == result.provider_message_id
    assert got["params"] == {"To": "+14155550101", "From": SENDER, "Body": "Hi Bea, pilot?",
                             "StatusCallback": callback}
    sb.wait_for_callbacks()
    posted = [dict(parse_qsl(body.decode())) for _, _, body in receiver.posts]
    assert [p["MessageStatus"] for p in posted] == ["sent", "delivered"]
    for (path, headers, _), params in zip(receiver.posts, posted, strict=True):
        assert path == "/webhooks/twilio/status"
        assert params["MessageSid"] == params["SmsSid"] == result.provider_message_id
        assert (params["AccountSid"], params["From"], params["To"], params["ApiVersion"]) == (
            SID, SENDER, "+14155550101", "2010-04-01")
        assert RequestValidator(TOKEN).validate(callback, params, headers["X-Twilio-Signature"])
        assert not RequestValidator("another-token").validate(callback, params, headers["X-Twilio-Signature"])


def test_twilio_messaging_service_sends_without_from(sb: Sandbox) -> None:
    service = "MG" + "2" * 32
    twilio(sb, messaging_service_sid=service).send(sms())
    assert sb.messages("sms")[0]["params"] == {"To": "+14155550101", "MessagingServiceSid": service,
                                               "Body": "Hi Bea, pilot?"}


@pytest.mark.parametrize(("to", "code", "opted_out", "said"), [
    ("+15005550001", 21211, False, "is not a valid phone number"),
    ("+15005550002", 21612, False, "not currently reachable"),
    ("+15005550004", 21610, True, "Attempt to send to unsubscribed recipient"),
    ("+15005550009", 21614, False, "not a valid mobile number"),
    ("4155550101", 21211, False, "is not a valid phone number"),
])
def test_twilio_refusals_are_permanent_with_twilio_code(
        sb: Sandbox, to: str, code: int, opted_out: bool, said: str) -> None:
    with pytest.raises(ProviderError) as err:
        twilio(sb).send(sms(to_phone=to))
    assert (err.value.retryable, err.value.status, err.value.code, err.value.opted_out) == (
        False, 400, code, opted_out)
    assert f"error {code}" in err.value.reason and said in err.value.reason
    assert sb.messages() == []


def test_twilio_number_that_texted_stop_is_opted_out(sb: Sandbox) -> None:
    provider = twilio(sb)
    provider.send(sms())
    sb.opt_out("+14155550101")
    with pytest.raises(ProviderError) as err:
        provider.send(sms())
    assert err.value.opted_out and err.value.code == 21610 and not err.value.retryable


@pytest.mark.parametrize(("status", "code"), [(429, 20429), (500, 20500), (503, 20503)])
def test_twilio_passing_faults_are_retryable(sb: Sandbox, status: int, code: int) -> None:
    provider = twilio(sb)
    sb.fail_next(status, kind="sms")
    sendgrid(sb).send(email())  # a fault for sms leaves email alone
    with pytest.raises(ProviderError) as err:
        provider.send(sms())
    assert (err.value.retryable, err.value.status, err.value.code) == (True, status, code)
    provider.send(sms())
    assert len(sb.messages("sms")) == 1


def test_twilio_full_sender_queue_is_retryable(sb: Sandbox) -> None:
    with pytest.raises(ProviderError) as err:
        twilio(sb).send(sms(sms_from="+15005550008"))
    assert err.value.retryable and err.value.code == 21611


def test_twilio_timeout_is_retryable(sb: Sandbox) -> None:
    sb.fail_next(503, delay=1.0)
    with pytest.raises(ProviderError) as err:
        twilio(sb, timeout=0.3).send(sms())
    assert err.value.retryable and err.value.status is None


def test_status_callbacks_can_be_switched_off(receiver: Receiver) -> None:
    with Sandbox(callbacks=False) as quiet:
        twilio(quiet).send(sms(status_callback=f"{receiver.url}/status"))
        time.sleep(0.3)
        quiet.wait_for_callbacks()
    assert receiver.posts == []


# --- the sandbox's own contract ---------------------------------------------------------------------------

def mail_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "personalizations": [{"to": [{"email": "b@acme.test"}]}], "from": {"email": "s@example.com"},
        "subject": "s", "content": [{"type": "text/plain", "value": "t"}],
    }
    for key, value in changes.items():
        if value is None:
            body.pop(key)
        else:
            body[key] = value
    return body


@pytest.mark.parametrize(("body", "field"), [
    (mail_body(personalizations=[]), "personalizations"),
    (mail_body(personalizations=[{"cc": [{"email": "c@acme.test"}]}]), "personalizations.0.to"),
    (mail_body(**{"from": None}), "from.email"),
    (mail_body(subject=None), "subject"),
    (mail_body(content=None), "content"),
    (mail_body(content=[{"type": "text/plain", "value": ""}]), "content.0.value"),
    (mail_body(content=[{"type": "text/html", "value": "h"}, {"type": "text/plain", "value": "t"}]), "content"),
    (mail_body(custom_args={"outreach_touch_id": 42}), "custom_args.outreach_touch_id"),
    (mail_body(custom_args="42"), "custom_args"),
    (mail_body(attachments=[{"filename": "a.ics", "content": "not base64!"}]), "attachments.0.content"),
])
def test_sandbox_rejects_invalid_mail_like_sendgrid(sb: Sandbox, body: dict[str, Any], field: str) -> None:
    answer = httpx.post(f"{sb.url}/v3/mail/send", json=body, headers={"Authorization": "Bearer k"})
    assert answer.status_code == 400
    [error] = answer.json()["errors"]
    assert error["field"] == field and error["message"] and error["help"].endswith(field)
    assert sb.messages() == []


def test_sandbox_requires_credentials(sb: Sandbox) -> None:
    answer = httpx.post(f"{sb.url}/v3/mail/send", json=mail_body())
    assert answer.status_code == 401 and answer.json()["errors"][0]["message"]
    url = f"{sb.url}/2010-04-01/Accounts/{SID}/Messages.json"
    form = {"To": "+14155550101", "From": SENDER, "Body": "x"}
    for auth in [None, ("AC" + "9" * 32, TOKEN), (SID, "")]:
        answer = httpx.post(url, data=form, auth=auth)
        assert answer.status_code == 401 and answer.json()["code"] == 20003
    assert sb.messages() == []


def test_sandbox_message_resource_looks_like_twilios(sb: Sandbox) -> None:
    url = f"{sb.url}/2010-04-01/Accounts/{SID}/Messages.json"
    answer = httpx.post(url, data={"To": "+14155550101", "From": SENDER, "Body": "a" * 161}, auth=(SID, TOKEN))
    assert answer.status_code == 201
    resource = answer.json()
    assert (resource["status"], resource["direction"], resource["num_segments"]) == ("queued", "outbound-api", "2")
    assert resource["uri"] == f"/2010-04-01/Accounts/{SID}/Messages/{resource['sid']}.json"
    assert parsedate_to_datetime(resource["date_created"]).tzinfo is not None
    unicode = httpx.post(url, data={"To": "+14155550101", "From": SENDER, "Body": "é" * 70 + "ü"},
                         auth=(SID, TOKEN)).json()
    assert unicode["num_segments"] == "1"  # é and ü are GSM-7
    emoji = httpx.post(url, data={"To": "+14155550101", "From": SENDER, "Body": "🙂" * 36},
                       auth=(SID, TOKEN)).json()
    assert emoji["num_segments"] == "2"  # 72 UCS-2 units
    error = httpx.post(url, data={"To": "+15005550001", "From": SENDER, "Body": "x"}, auth=(SID, TOKEN))
    assert error.json() == {"code": 21211, "message": "The 'To' number +15005550001 is not a valid phone number.",
                            "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400}


def test_sandbox_control_endpoints(sb: Sandbox) -> None:
    with httpx.Client(base_url=sb.url) as client:
        assert client.post("/sandbox/faults", json={"status": 429, "count": 1, "retry_after": 9}).status_code == 204
        limited = client.post("/v3/mail/send", json=mail_body(), headers={"Authorization": "Bearer k"})
        assert limited.status_code == 429 and limited.headers["Retry-After"] == "9"
        assert limited.json()["errors"][0]["message"]
        assert client.post("/v3/mail/send", json=mail_body(), headers={"Authorization": "Bearer k"}).status_code == 202
        assert client.post("/sandbox/faults", json={"status": 200}).status_code == 422
        client.post(f"/2010-04-01/Accounts/{SID}/Messages.json", data={"To": "+14155550101", "From": SENDER,
                                                                       "Body": "x"}, auth=(SID, TOKEN))
        assert [m["kind"] for m in client.get("/sandbox/messages").json()] == ["email", "sms"]
        assert [m["kind"] for m in client.get("/sandbox/messages", params={"kind": "sms"}).json()] == ["sms"]
        assert client.delete("/sandbox/messages").status_code == 204
        assert client.get("/sandbox/messages").json() == []


def test_event_webhook_signature_verifies_with_the_sendgrid_sdk(sb: Sandbox) -> None:
    body = json.dumps([{"email": "b@acme.test", "event": "open", "sg_event_id": "e1", TOUCH_ARG: "42"}]).encode()
    headers = sb.sign_events(body)
    verifier = EventWebhook(httpx.get(f"{sb.url}/sandbox/keys").json()["sendgrid_webhook_public_key"])
    signature = headers["X-Twilio-Email-Event-Webhook-Signature"]
    timestamp = headers["X-Twilio-Email-Event-Webhook-Timestamp"]
    assert verifier.verify_signature(body.decode(), signature, timestamp)
    assert not verifier.verify_signature(body.decode().replace("open", "click"), signature, timestamp)
    assert not verifier.verify_signature(body.decode(), signature, str(int(timestamp) + 1))


def test_emit_posts_signed_events_and_returns_the_engines_answer(sb: Sandbox, receiver: Receiver) -> None:
    events = [{"email": "b@acme.test", "event": "delivered", "sg_event_id": "e2", TOUCH_ARG: "42",
               "timestamp": 1700000000}]
    answer = httpx.post(f"{sb.url}/sandbox/sendgrid/emit", json={"url": f"{receiver.url}/hook", "events": events})
    assert answer.json() == {"status": 200}
    [(path, headers, body)] = receiver.posts
    assert path == "/hook" and json.loads(body) == events
    assert EventWebhook(sb.public_key).verify_signature(
        body.decode(), headers["X-Twilio-Email-Event-Webhook-Signature"],
        headers["X-Twilio-Email-Event-Webhook-Timestamp"])
    receiver.status = 403
    assert sb.emit_events(f"{receiver.url}/hook", events) == 403


def test_key_file_keeps_the_public_key_across_restarts(tmp_path: Any) -> None:
    key_file = str(tmp_path / "sandbox-key.pem")
    first = Sandbox(key_file=key_file).public_key
    assert Sandbox(key_file=key_file).public_key == first
    assert Sandbox().public_key != first


@pytest.mark.parametrize("total", [2000, pytest.param(10_000, marks=pytest.mark.slow)])
def test_concurrent_messages_are_counted_exactly(sb: Sandbox, total: int) -> None:
    """Eight clients, half email half SMS, with 137 injected 500s they must retry: every accepted
    message is recorded once, every fault is served once. (10,000 takes ~10 s, hence `slow`.)"""
    per_client = total // 8
    sb.fail_next(500, count=137)
    faults: list[int] = []
    lock = threading.Lock()

    def client(worker: int) -> None:
        with httpx.Client(base_url=sb.url) as http:
            for i in range(per_client):
                while True:
                    if i % 2:
                        answer = http.post("/v3/mail/send", headers={"Authorization": "Bearer k"},
                                           json=mail_body(custom_args={TOUCH_ARG: f"{worker}-{i}"}))
                    else:
                        answer = http.post(f"/2010-04-01/Accounts/{SID}/Messages.json", auth=(SID, TOKEN),
                                           data={"To": "+14155550101", "From": SENDER, "Body": f"{worker}-{i}"})
                    if answer.status_code != 500:
                        assert answer.status_code in (201, 202)
                        break
                    with lock:
                        faults.append(worker)

    threads = [threading.Thread(target=client, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    emails, texts = sb.messages("email"), sb.messages("sms")
    assert len(faults) == 137
    assert len(emails) == len(texts) == total // 2
    assert len({m["custom_args"][TOUCH_ARG] for m in emails}) == total // 2
    assert len({m["body"] for m in texts}) == len({m["sid"] for m in texts}) == total // 2


def test_shared_providers_send_each_touch_once_from_many_threads(sb: Sandbox) -> None:
    email_provider, sms_provider = sendgrid(sb), twilio(sb)
    ids: list[str] = []

    def worker(w: int) -> None:
        for i in range(25):
            touch = w * 100 + i
            ids.append(email_provider.send(email(touch_id=touch)).provider_message_id)
            ids.append(sms_provider.send(sms(touch_id=touch, text=str(touch))).provider_message_id)

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sms_provider.close()
    touches = {w * 100 + i for w in range(8) for i in range(25)}
    assert {int(m["custom_args"][TOUCH_ARG]) for m in sb.messages("email")} == touches
    assert {int(m["body"]) for m in sb.messages("sms")} == touches
    assert len(sb.messages()) == len(set(ids)) == 400
