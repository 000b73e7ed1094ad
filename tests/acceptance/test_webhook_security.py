"""The security cases every webhook endpoint must pass, written once (`WebhookSecurityCases`) and
inherited by one class per endpoint, which only says how to build, sign and break its requests.

Unsigned, wrongly signed and stale requests are refused (403), malformed ones 400, oversized ones
413, and none of them changes the database; an exact repeat of a valid request answers 200 and
changes nothing the second time. Bodies are the providers' real formats (tests/fixtures). The cases
refused before any database work (a wrong or stale signature, a malformed or oversized body) run on
SQLite only; those that write (valid, repeated, unsigned then valid) on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlencode

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import func, select, update
from sqlmodel import col
from twilio.request_validator import RequestValidator

from channels.sendgrid_webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER
from outreach import db, tokens
from outreach.contacts import import_csv
from outreach.db import session_scope
from outreach.engine import Engine
from outreach.models import Contact, Evidence, StageChange, Suppression, Touch
from outreach.project import Project
from outreach.web.webhooks import MAX_BODY, MAX_INBOUND
from tests.support import ALWAYS, FIXTURES, make_project
from tests.support.payloads import load_form
from tests.support.web import TestClient, client

STRIPE_SECRET, SHOPIFY_SECRET = "whsec_test_stripe_endpoint_secret", "shopify-app-client-secret"
PUBLIC_URL = "https://engine.example"  # what Twilio signs: server.public_url, not the test client's host
TWILIO_TOKEN = "twilio-auth-token-for-tests"
ADA, ADA_PHONE = "ada@analytical.example", "+14155550101"


@dataclass
class Env:
    client: TestClient
    engine: Engine
    key: ec.EllipticCurvePrivateKey  # the SendGrid Event Webhook signing key
    secret: str  # server.secret_key
    welcome: dict[str, int]  # contact email -> the id of the welcome email it was sent


@dataclass
class Call:
    path: str
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@pytest.fixture
def env(tmp_path: Path, database: str) -> Iterator[Env]:
    key = ec.generate_private_key(ec.SECP256R1())
    public = base64.b64encode(key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).decode()
    root = make_project(tmp_path / "proj", database, **{
        "sendgrid.webhook_public_key": public, "twilio.auth_token": TWILIO_TOKEN,
        "twilio.account_sid": "AC0123456789abcdef0123456789abcdef", "server.public_url": PUBLIC_URL,
        "stripe.webhook_secret": STRIPE_SECRET, "shopify.webhook_secret": SHOPIFY_SECRET,
        "policy.send_windows": {"email": ALWAYS, "sms": ALWAYS, "meeting": ALWAYS},
        "policy.caps": {"all": {"day": 20}}})
    engine = Engine(Project.open(root))
    now = datetime.now(UTC)
    with session_scope(engine.db) as s:
        import_csv(s, root / "contacts.csv", region="US", first_stage="aware", now=now)
    engine.plan(now)
    assert engine.dispatch(now).sent == 6  # the outbox provider: everybody got the welcome email
    with session_scope(engine.db) as s:
        welcome = dict(s.execute(select(col(Contact.email), col(Touch.id)).join(
            Touch, col(Touch.contact_id) == col(Contact.id)).where(col(Touch.step) == "welcome")).all())
    yield Env(client(engine), engine, key, engine.settings.server.secret_key, welcome)
    db.dispose_all()


def snapshot(engine: Engine) -> dict[str, Any]:
    """Everything a webhook may change: evidence, suppressions, stage changes, touches, consent."""
    with session_scope(engine.db) as s:
        def count(model: Any) -> int:
            return int(s.execute(select(func.count()).select_from(model)).scalar_one())

        return {
            "evidence": count(Evidence), "suppression": count(Suppression), "stage_change": count(StageChange),
            "touches": sorted(s.execute(select(col(Touch.id), col(Touch.status))).all()),
            "contacts": sorted(s.execute(select(col(Contact.id), col(Contact.stage), col(Contact.consent_email),
                                                col(Contact.consent_sms))).all()),
        }


def evidence_types(engine: Engine) -> list[str]:
    with session_scope(engine.db) as s:
        return sorted(s.execute(select(col(Evidence.type))).scalars())


def post(env: Env, call: Call, *, chunked: bool = False) -> httpx.Response:
    content: Any = call.body
    if chunked:  # no Content-Length: the limit must hold while the body streams
        content = iter([call.body[i:i + 65536] for i in range(0, len(call.body), 65536)])
    return env.client.post(call.path, content=content, headers=call.headers)


class WebhookSecurityCases:
    """The shared cases every endpoint inherits. A subclass fills the hooks; the cases that only
    some providers can have (a signed time, a body worth limiting) come as the mixins below."""

    refused: ClassVar[int] = 403  # the answer to unsigned and wrongly signed requests
    malformed_status: ClassVar[int] = 400
    recorded: ClassVar[set[str]]  # evidence types a valid request records

    def valid(self, env: Env) -> Call:
        """A signed, real-format request that changes the database."""
        raise NotImplementedError

    def unsigned(self, env: Env) -> Call:
        """The valid request without its credentials."""
        raise NotImplementedError

    def wrongly_signed(self, env: Env) -> list[Call]:
        """The valid request with credentials that must not verify (other key, other body, garbage)."""
        raise NotImplementedError

    def malformed(self, env: Env) -> list[Call]:
        """Correctly signed requests whose bodies are not what the provider sends."""
        raise NotImplementedError

    def refuse(self, env: Env, calls: list[Call], status: int, **kw: Any) -> None:
        for call in calls:
            before = snapshot(env.engine)
            answer = post(env, call, **kw)
            assert answer.status_code == status, (call.path, call.headers, answer.text)
            assert snapshot(env.engine) == before, f"a refused request changed the database: {call}"

    def test_a_valid_request_is_recorded(self, env: Env) -> None:
        before = snapshot(env.engine)
        answer = post(env, self.valid(env))
        assert answer.status_code == 200, answer.text
        assert snapshot(env.engine) != before
        assert self.recorded <= set(evidence_types(env.engine))

    def test_unsigned_is_refused_and_changes_nothing(self, env: Env) -> None:
        self.refuse(env, [self.unsigned(env)], self.refused)
        # the refusal burnt nothing: the same event, signed, is still recorded
        assert post(env, self.valid(env)).status_code == 200
        assert self.recorded <= set(evidence_types(env.engine))

    @pytest.mark.parametrize("database", ["sqlite"], indirect=True)  # refused before any database work
    def test_wrong_signature_is_refused_and_changes_nothing(self, env: Env) -> None:
        calls = self.wrongly_signed(env)
        assert calls
        self.refuse(env, calls, self.refused)

    def test_an_exact_repeat_changes_nothing(self, env: Env) -> None:
        call = self.valid(env)
        assert post(env, call).status_code == 200
        once = snapshot(env.engine)
        repeat = post(env, call)
        assert repeat.status_code == 200, repeat.text
        assert snapshot(env.engine) == once

    @pytest.mark.parametrize("database", ["sqlite"], indirect=True)  # refused before any database work
    def test_malformed_is_refused_and_changes_nothing(self, env: Env) -> None:
        calls = self.malformed(env)
        assert calls
        self.refuse(env, calls, self.malformed_status)



class StaleCases(WebhookSecurityCases):
    """For providers that sign a time (SendGrid's Event Webhook): an old signature is a replay."""

    def stale(self, env: Env) -> Call:
        """The valid request signed too long ago."""
        raise NotImplementedError

    @pytest.mark.parametrize("database", ["sqlite"], indirect=True)  # refused before any database work
    def test_stale_signature_is_refused_and_changes_nothing(self, env: Env) -> None:
        self.refuse(env, [self.stale(env)], self.refused)


class OversizedCases(WebhookSecurityCases):
    """For endpoints that read a body: one over the limit is refused before it is parsed."""

    def oversized(self, env: Env) -> Call:
        """A correctly signed request over the size limit."""
        raise NotImplementedError

    @pytest.mark.parametrize("database", ["sqlite"], indirect=True)  # refused before any database work
    @pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
    def test_oversized_is_refused_and_changes_nothing(self, env: Env, chunked: bool) -> None:
        self.refuse(env, [self.oversized(env)], 413, chunked=chunked)


# --- SendGrid Event Webhook ----------------------------------------------------------------------

def sendgrid_sign(key: ec.EllipticCurvePrivateKey, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    signature = base64.b64encode(key.sign(ts.encode() + body, ec.ECDSA(hashes.SHA256()))).decode()
    return {SIGNATURE_HEADER: signature, TIMESTAMP_HEADER: ts, "Content-Type": "application/json"}


class TestSendGridEvents(StaleCases, OversizedCases):
    path = "/webhooks/sendgrid/events"
    recorded: ClassVar[set[str]] = {"email.delivered", "email.opened", "email.clicked"}

    def events(self, env: Env) -> list[dict[str, Any]]:
        """The fixture's delivered, open and click events, about Ada's welcome email."""
        batch = json.loads((FIXTURES / "sendgrid" / "events_all_types.json").read_text())
        now = int(time.time())
        return [{**e, "email": ADA, "outreach_touch_id": str(env.welcome[ADA]), "timestamp": now}
                for e in batch if e["event"] in ("delivered", "open", "click")]

    def body(self, env: Env) -> bytes:
        return json.dumps(self.events(env)).encode()

    def valid(self, env: Env) -> Call:
        body = self.body(env)
        return Call(self.path, body, sendgrid_sign(env.key, body))

    def unsigned(self, env: Env) -> Call:
        return Call(self.path, self.body(env), {"Content-Type": "application/json"})

    def wrongly_signed(self, env: Env) -> list[Call]:
        body = self.body(env)
        other = ec.generate_private_key(ec.SECP256R1())
        good = sendgrid_sign(env.key, body)
        return [
            Call(self.path, body, sendgrid_sign(other, body)),  # another account's key
            Call(self.path, body, sendgrid_sign(env.key, b"[]")),  # a signature of another body
            Call(self.path, body, {**good, TIMESTAMP_HEADER: str(int(good[TIMESTAMP_HEADER]) + 1)}),
            Call(self.path, body, {**good, SIGNATURE_HEADER: base64.b64encode(b"nope").decode()}),
            Call(self.path, body, {**good, SIGNATURE_HEADER: "not base64 at all!"}),
            Call(self.path, body, {SIGNATURE_HEADER: good[SIGNATURE_HEADER]}),  # no timestamp
        ]

    def malformed(self, env: Env) -> list[Call]:
        events = self.events(env)
        # A bad item inside a batch is kept raw and the good ones recorded (tests/acceptance/hostile).
        bodies = [b"not json", b'{"event": "click"}', json.dumps({"events": events}).encode()]
        return [Call(self.path, b, sendgrid_sign(env.key, b)) for b in bodies]

    def stale(self, env: Env) -> Call:
        body = self.body(env)
        return Call(self.path, body, sendgrid_sign(env.key, body, int(time.time()) - 3600))

    def oversized(self, env: Env) -> Call:
        body = b"[" + b" " * MAX_BODY + b"]"
        return Call(self.path, body, sendgrid_sign(env.key, body))

    @pytest.mark.parametrize("database", ["sqlite"], indirect=True)  # refused before any database work
    def test_a_future_timestamp_is_refused(self, env: Env) -> None:
        body = self.body(env)
        self.refuse(env, [Call(self.path, body, sendgrid_sign(env.key, body, int(time.time()) + 3600))], 403)


# --- SendGrid Inbound Parse --------------------------------------------------------------------

def multipart(fields: dict[str, str], files: dict[str, bytes]) -> tuple[bytes, dict[str, str]]:
    """multipart/form-data as SendGrid posts it (always multipart, even without attachments)."""
    boundary = "xYzZY"
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n'.encode() + v.encode() + b"\r\n"
             for k, v in fields.items()]
    parts += [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"; filename="{k}.ics"\r\n'
              f"Content-Type: application/ics\r\n\r\n".encode() + v + b"\r\n" for k, v in files.items()]
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


class TestSendGridInbound(OversizedCases):  # no signed time: a replay is a repeat, caught by its Message-ID
    recorded: ClassVar[set[str]] = {"email.replied"}

    def path(self, env: Env, token: str | None = None, *, signed: bool = True) -> str:
        if signed and token is None:
            token = tokens.short_mac(env.secret, "inbound-parse", 24)
        return "/webhooks/sendgrid/inbound" + (f"?{urlencode({'token': token})}" if token is not None else "")

    def form(self, env: Env) -> tuple[bytes, dict[str, str]]:
        """The Gmail reply fixture, from Ada, to the Reply-To of her welcome email."""
        fields, files = load_form("reply_parsed.txt")
        reply_to = f"reply+{tokens.reply_token(env.secret, env.welcome[ADA])}@reply.example.com"
        fields = {k: v.replace("Dana@Buyer.example", ADA).replace("reply+t42k7q@reply.vendor.example", reply_to)
                  for k, v in fields.items()}
        return multipart(fields, files)

    def valid(self, env: Env) -> Call:
        return Call(self.path(env), *self.form(env))

    def unsigned(self, env: Env) -> Call:
        return Call(self.path(env, signed=False), *self.form(env))

    def wrongly_signed(self, env: Env) -> list[Call]:
        good = tokens.short_mac(env.secret, "inbound-parse", 24)
        wrong = [good[:-1] + ("0" if good[-1] != "0" else "1"), good.upper(), good[:12], "", "x" * 24,
                 tokens.short_mac("another project's secret", "inbound-parse", 24)]
        return [Call(self.path(env, t), *self.form(env)) for t in wrong]

    def malformed(self, env: Env) -> list[Call]:
        no_sender = multipart({"subject": "Re: hello", "text": "hi"}, {})
        boundary = {"Content-Type": "multipart/form-data; boundary=xYzZY"}
        return [
            Call(self.path(env), *no_sender),
            Call(self.path(env), b"--xYzZY\r\nContent-Disposition: form-data; name=\"from\"\r\n\r\nada", boundary),
            Call(self.path(env), b"garbage", boundary),
            Call(self.path(env), json.dumps({"from": ADA, "text": "hi"}).encode(),
                 {"Content-Type": "application/json"}),
        ]

    def oversized(self, env: Env) -> Call:
        body, headers = multipart({"from": ADA, "text": "x" * MAX_INBOUND}, {})
        return Call(self.path(env), body, headers)

    def test_a_big_raw_mail_within_the_limit_is_read(self, env: Env) -> None:
        """Raw mode puts the whole MIME message (attachments too) in one field, over Starlette's 1 MB."""
        filler = "\r\n".join(["x" * 76] * 20_000)  # ~1.5 MB of attachment-like lines
        reply_to = f"reply+{tokens.reply_token(env.secret, env.welcome[ADA])}@reply.example.com"
        raw = (f"From: Ada King <{ADA}>\r\nTo: {reply_to}\r\nSubject: Re: hello\r\n"
               f"Message-ID: <big@analytical.example>\r\nContent-Type: multipart/mixed; boundary=b1\r\n\r\n"
               f"--b1\r\nContent-Type: text/plain\r\n\r\nYes, interested.\r\n--b1\r\n"
               f"Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=a.bin\r\n\r\n"
               f"{filler}\r\n--b1--\r\n")
        answer = post(env, Call(self.path(env), *multipart({"email": raw, "to": "reply@reply.example.com"}, {})))
        assert answer.status_code == 200, answer.text
        assert "email.replied" in evidence_types(env.engine)


# --- Twilio ----------------------------------------------------------------------------------------

def twilio_form(name: str, **changes: str) -> dict[str, str]:
    params = dict(parse_qsl((FIXTURES / "twilio" / name).read_text().strip(), keep_blank_values=True))
    return {**params, **changes}


def twilio_call(path: str, params: dict[str, str], *, token: str = TWILIO_TOKEN, signed_url: str | None = None,
                signed_params: dict[str, str] | None = None, signature: str | None = None) -> Call:
    url = signed_url or PUBLIC_URL + path
    if signature is None:
        signature = RequestValidator(token).compute_signature(url, signed_params or params)
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if signature:
        headers["X-Twilio-Signature"] = signature
    return Call(path, urlencode(params).encode(), headers)


class TwilioCases(OversizedCases):  # Twilio signs no time: a replay is a repeat, caught by its MessageSid
    path: ClassVar[str]
    other_path: ClassVar[str]
    required: ClassVar[tuple[tuple[str, ...], ...]]  # groups of fields without which the request is malformed

    def params(self, env: Env) -> dict[str, str]:
        raise NotImplementedError

    def valid(self, env: Env) -> Call:
        return twilio_call(self.path, self.params(env))

    def unsigned(self, env: Env) -> Call:
        return twilio_call(self.path, self.params(env), signature="")

    def wrongly_signed(self, env: Env) -> list[Call]:
        params = self.params(env)
        return [
            twilio_call(self.path, params, token="another-accounts-token"),
            twilio_call(self.path, params, signed_url=PUBLIC_URL + self.other_path),  # signed for another URL
            twilio_call(self.path, params, signed_url="http://testserver" + self.path),  # not the public URL
            twilio_call(self.path, params, signed_params={**params, "Body": "tampered"}),
            twilio_call(self.path, params, signature="bm90IGEgc2lnbmF0dXJl"),
        ]

    def malformed(self, env: Env) -> list[Call]:
        params = self.params(env)
        calls = [twilio_call(self.path, {k: v for k, v in params.items() if k not in group})
                 for group in self.required]
        return [*calls, twilio_call(self.path, {})]

    def oversized(self, env: Env) -> Call:
        return twilio_call(self.path, {**self.params(env), "Body": "x" * MAX_BODY})


class TestTwilioInboundSms(TwilioCases):
    path = "/webhooks/twilio/sms"
    other_path = "/webhooks/twilio/status"
    recorded: ClassVar[set[str]] = {"sms.opted_out"}
    required = (("MessageSid", "SmsSid", "SmsMessageSid"), ("From",))

    def params(self, env: Env) -> dict[str, str]:
        """Ada texts STOP: a refused request must not opt her out."""
        return twilio_form("inbound_stop.form", From=ADA_PHONE)


class TestTwilioStatus(TwilioCases):
    path = "/webhooks/twilio/status"
    other_path = "/webhooks/twilio/sms"
    recorded: ClassVar[set[str]] = {"sms.delivered"}
    required = (("MessageSid", "SmsSid"), ("MessageStatus", "SmsStatus"))

    def params(self, env: Env) -> dict[str, str]:
        params = twilio_form("status_delivered.form", To=ADA_PHONE)
        # a status counts by its MessageSid only (never by phone): make it the id of a send of ours
        with session_scope(env.engine.db) as s:
            s.execute(update(Touch).where(col(Touch.id) == env.welcome[ADA]).values(
                provider_message_id=params["MessageSid"]))
        return params


# --- One-click unsubscribe (RFC 8058) ----------------------------------------------------------

# Unsubscribe links carry no time (RFC 8058: they must keep working) and the one-click POST body is
# never read, so only the shared cases apply.
class TestUnsubscribe(WebhookSecurityCases):
    refused = 404
    malformed_status = 404
    recorded: ClassVar[set[str]] = {"email.unsubscribed"}
    one_click = {"Content-Type": "application/x-www-form-urlencoded"}

    def token(self, env: Env, secret: str | None = None, purpose: str = "unsubscribe", value: Any = None) -> str:
        contact = self.ada(env)
        return tokens.sign(secret or env.secret, purpose, [contact, env.welcome[ADA]] if value is None else value)

    def ada(self, env: Env) -> int:
        with session_scope(env.engine.db) as s:
            return int(s.execute(select(col(Contact.id)).where(col(Contact.email) == ADA)).scalar_one())

    def call(self, token: str) -> Call:
        return Call(f"/unsubscribe/{token}", b"List-Unsubscribe=One-Click", self.one_click)

    def valid(self, env: Env) -> Call:
        return self.call(self.token(env))

    def unsigned(self, env: Env) -> Call:
        return self.call(self.token(env).rsplit(".", 1)[0])  # the payload without its signature

    def wrongly_signed(self, env: Env) -> list[Call]:
        good = self.token(env)
        payload, signature = good.rsplit(".", 1)
        other = self.token(env, value=[self.ada(env) + 1, 0]).rsplit(".", 1)[0]
        return [self.call(self.token(env, secret="another project's secret")),
                self.call(self.token(env, purpose="inbound-parse")),
                self.call(f"{other}.{signature}"),  # another contact's payload under Ada's signature
                self.call(f"{payload}.{signature[::-1]}"), self.call("nope")]

    def malformed(self, env: Env) -> list[Call]:
        return [self.call(self.token(env, value=v)) for v in ("ada", [1], [1, 2, 3], ["1", "2"])]

    def test_an_exact_repeat_changes_nothing(self, env: Env) -> None:
        """Not for the link: each POST is the buyer's own act (they may have resubscribed in between),
        recorded again; the suppression it holds stays one."""
        call = self.valid(env)
        assert post(env, call).status_code == 200
        once = snapshot(env.engine)
        assert post(env, call).status_code == 200
        again = snapshot(env.engine)
        assert again["evidence"] == once["evidence"] + 1
        assert {**again, "evidence": 0} == {**once, "evidence": 0}


# --- Stripe and Shopify ----------------------------------------------------------------------------

def stripe_sign(body: bytes, secret: str = STRIPE_SECRET, timestamp: int | None = None) -> dict[str, str]:
    """Stripe-Signature as Stripe computes it: t=TIMESTAMP,v1=hex HMAC-SHA256 of `TIMESTAMP.body`."""
    ts = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    return {"Stripe-Signature": f"t={ts},v1={mac}", "Content-Type": "application/json"}


class TestStripe(StaleCases, OversizedCases):
    path = "/webhooks/stripe"
    recorded: ClassVar[set[str]] = {"order.placed"}

    def body(self, env: Env) -> bytes:
        fixture = FIXTURES / "stripe" / "checkout_session_completed.json"
        return fixture.read_bytes().replace(b"buyer@shop.example", ADA.encode())

    def valid(self, env: Env) -> Call:
        body = self.body(env)
        return Call(self.path, body, stripe_sign(body))

    def unsigned(self, env: Env) -> Call:
        return Call(self.path, self.body(env), {"Content-Type": "application/json"})

    def wrongly_signed(self, env: Env) -> list[Call]:
        body = self.body(env)
        good = stripe_sign(body)["Stripe-Signature"]
        return [
            Call(self.path, body, stripe_sign(body, "whsec_another_endpoint")),
            Call(self.path, body, stripe_sign(b"{}")),
            Call(self.path, body, {"Stripe-Signature": good.replace("t=", "t=1")}),
            Call(self.path, body, {"Stripe-Signature": "t=1,v1=nope"}),
            Call(self.path, body, {"Stripe-Signature": "garbage"}),
        ]

    def malformed(self, env: Env) -> list[Call]:
        bodies = [b"not json", b"[]", json.dumps({"type": "checkout.session.completed"}).encode()]
        return [Call(self.path, b, stripe_sign(b)) for b in bodies]

    def stale(self, env: Env) -> Call:
        body = self.body(env)
        return Call(self.path, body, stripe_sign(body, timestamp=int(time.time()) - 3600))

    def oversized(self, env: Env) -> Call:
        body = b"{" + b" " * (1024 * 1024) + b"}"
        return Call(self.path, body, stripe_sign(body))


def shopify_sign(body: bytes, topic: str = "orders/create", secret: str = SHOPIFY_SECRET,
                 webhook_id: str = "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043") -> dict[str, str]:
    mac = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
    return {"X-Shopify-Hmac-Sha256": mac, "X-Shopify-Topic": topic, "X-Shopify-Webhook-Id": webhook_id,
            "Content-Type": "application/json"}


class TestShopify(OversizedCases):  # Shopify signs no time: a replay is a repeat, caught by the order id
    path = "/webhooks/shopify"
    recorded: ClassVar[set[str]] = {"order.placed"}

    def body(self, env: Env) -> bytes:
        return (FIXTURES / "shopify" / "orders_create.json").read_bytes().replace(b"buyer@shop.example",
                                                                                 ADA.encode())

    def valid(self, env: Env) -> Call:
        body = self.body(env)
        return Call(self.path, body, shopify_sign(body))

    def unsigned(self, env: Env) -> Call:
        return Call(self.path, self.body(env), {"X-Shopify-Topic": "orders/create"})

    def wrongly_signed(self, env: Env) -> list[Call]:
        body = self.body(env)
        good = shopify_sign(body)
        return [
            Call(self.path, body, shopify_sign(body, secret="another shop's secret")),
            Call(self.path, body, shopify_sign(b"{}")),
            Call(self.path, body, {**good, "X-Shopify-Hmac-Sha256": good["X-Shopify-Hmac-Sha256"].lower()}),
            Call(self.path, body, {**good, "X-Shopify-Hmac-Sha256": "bm9wZQ=="}),
        ]

    def malformed(self, env: Env) -> list[Call]:
        no_topic = self.body(env)
        headers = shopify_sign(no_topic)
        del headers["X-Shopify-Topic"]
        no_id = json.dumps({"email": ADA}).encode()
        return [Call(self.path, b"not json", shopify_sign(b"not json")), Call(self.path, no_topic, headers),
                Call(self.path, no_id, shopify_sign(no_id))]

    def oversized(self, env: Env) -> Call:
        body = b"{" + b" " * (2 * 1024 * 1024) + b"}"
        return Call(self.path, body, shopify_sign(body))

    def test_an_abandoned_checkout_is_recorded_once_however_often_it_changes(self, env: Env) -> None:
        checkout = json.loads((FIXTURES / "shopify" / "checkouts_update.json").read_text())
        checkout["email"] = ADA
        for n in range(2):  # Shopify sends an update per change of the checkout
            body = json.dumps({**checkout, "updated_at": f"2026-03-02T10:0{n}:00-05:00"}).encode()
            assert post(env, Call(self.path, body, shopify_sign(body, "checkouts/update", webhook_id=str(n)))
                        ).status_code == 200
        completed = json.dumps({**checkout, "token": "other", "completed_at": "2026-03-02T10:05:00-05:00"}).encode()
        assert post(env, Call(self.path, completed, shopify_sign(completed, "checkouts/update"))).status_code == 200
        assert evidence_types(env.engine).count("cart.abandoned") == 1
