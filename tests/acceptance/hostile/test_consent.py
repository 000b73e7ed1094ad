"""Opt-outs always win. Through the real routes and commands, asserting what the database holds:

- every opt-out act takes effect, every time (the unsubscribe link, RFC 8058 one-click, SendGrid's
  unsubscribe, group_unsubscribe and spamreport, a Twilio STOP), also after the buyer resubscribed;
- SMS keywords are matched as carriers match them (any case, blanks and trailing punctuation ignored);
- nobody but the buyer lifts an opt-out: every role, through the API, the web form and the CLI, is
  refused `email.resubscribed` and `sms.opted_in`; an admin restores consent with `contacts consent`;
- a simulated month of opt-outs, resubscribes and opt-outs again sends nothing while suppressed.
SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import json
import os
import random
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import func, select
from sqlmodel import col
from twilio.request_validator import RequestValidator

from channels.sendgrid_webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER
from outreach import db, tokens
from outreach.contacts import import_csv
from outreach.db import session_scope
from outreach.engine import Engine
from outreach.models import ConsentChange, Contact, Evidence, Suppression, Touch, TouchStatus
from outreach.project import Project
from outreach.testing import FixedClock, RecordingProvider
from tests.support import ALWAYS, ROOT, make_project
from tests.support.web import Seed, TestClient, bearer, seed, sign_in  # type: ignore[attr-defined]

PUBLIC_URL = "https://engine.example"
TWILIO_TOKEN = "twilio-auth-token-for-consent-tests"
ADMIN, MARKETER, REP = "admin@example.com", "marketer@example.com", "rep@example.com"
ADA, ADA_PHONE = "ada@analytical.example", "+14155550101"  # rep@example.com's buyer, sms opt-in: yes


@dataclass
class Env:
    engine: Engine
    seed: Seed
    client: TestClient
    key: ec.EllipticCurvePrivateKey  # signs SendGrid's Event Webhook
    root: Path

    @property
    def ada(self) -> int:
        return self.seed.contacts["Ada"]


def project_overrides(public_key: str) -> dict[str, Any]:
    return {"sendgrid.webhook_public_key": public_key, "twilio.auth_token": TWILIO_TOKEN,
            "twilio.account_sid": "AC0123456789abcdef0123456789abcdef", "server.public_url": PUBLIC_URL,
            "policy.send_windows": {"email": ALWAYS, "sms": ALWAYS, "meeting": ALWAYS},
            "policy.caps": {"all": {"day": 50}}}


def signing_key() -> tuple[ec.EllipticCurvePrivateKey, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    public = base64.b64encode(key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).decode()
    return key, public


def client(engine: Engine) -> TestClient:
    """The app over https, as server.public_url says (session cookies are https-only then)."""
    from outreach.web.app import create_app

    return TestClient(create_app(engine), base_url="https://testserver")


@pytest.fixture
def env(tmp_path: Path, database: str) -> Iterator[Env]:
    key, public = signing_key()
    root = make_project(tmp_path / "proj", database, **project_overrides(public))
    engine = Engine(Project.open(root))
    yield Env(engine, seed(engine), client(engine), key, root)
    db.dispose_all()


# --- the buyer's acts, as the providers and the mailbox deliver them -------------------------------

def sendgrid_event(c: TestClient, key: ec.EllipticCurvePrivateKey, name: str, email: str) -> None:
    body = json.dumps([{"event": name, "email": email, "timestamp": int(time.time()),
                        "sg_event_id": uuid.uuid4().hex, "asm_group_id": 1}]).encode()
    ts = str(int(time.time()))
    signature = base64.b64encode(key.sign(ts.encode() + body, ec.ECDSA(hashes.SHA256()))).decode()
    answer = c.post("/webhooks/sendgrid/events", content=body, headers={
        SIGNATURE_HEADER: signature, TIMESTAMP_HEADER: ts, "Content-Type": "application/json"})
    assert answer.status_code == 200, answer.text


def sms_in(c: TestClient, phone: str, text: str) -> httpx.Response:
    params = {"MessageSid": "SM" + uuid.uuid4().hex, "AccountSid": "AC0123456789abcdef0123456789abcdef",
              "From": phone, "To": "+15005550006", "Body": text, "NumMedia": "0", "NumSegments": "1"}
    url = PUBLIC_URL + "/webhooks/twilio/sms"
    answer = c.post("/webhooks/twilio/sms", content=urlencode(params).encode(), headers={
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": RequestValidator(TWILIO_TOKEN).compute_signature(url, params)})
    assert answer.status_code == 200, answer.text
    return answer  # type: ignore[no-any-return]


def link(secret: str, contact_id: int, touch_id: int = 0) -> str:
    return "/unsubscribe/" + tokens.sign(secret, "unsubscribe", [contact_id, touch_id])


def click_and_confirm(e: Env) -> None:
    """The buyer opens the link in the email and presses the button."""
    path = link(e.engine.settings.server.secret_key, e.ada)
    assert e.client.get(path).status_code == 200
    answer = e.client.post(path, data={"List-Unsubscribe": "One-Click"})
    assert answer.status_code == 200 and "any more" in answer.text


def one_click(e: Env) -> None:
    """The mailbox provider's RFC 8058 POST: no cookies, the fixed body, 200 and no redirect."""
    got = e.client.post(link(e.engine.settings.server.secret_key, e.ada), content=b"List-Unsubscribe=One-Click",
                        headers={"Content-Type": "application/x-www-form-urlencoded"}, follow_redirects=False)
    assert got.status_code == 200, got.text


def email_back(e: Env) -> None:
    sendgrid_event(e.client, e.key, "group_resubscribe", ADA)


def sms_back(e: Env) -> None:
    sms_in(e.client, ADA_PHONE, "START")


# (name, the opt-out act, the channel it shuts, the buyer's own way back, the evidence it records)
OPT_OUTS: list[tuple[str, Callable[[Env], object], str, Callable[[Env], object], str]] = [
    ("link clicked and confirmed", click_and_confirm, "email", email_back, "email.unsubscribed"),
    ("RFC 8058 one-click POST", one_click, "email", email_back, "email.unsubscribed"),
    ("SendGrid unsubscribe", lambda e: sendgrid_event(e.client, e.key, "unsubscribe", ADA), "email", email_back,
     "email.unsubscribed"),
    ("SendGrid group_unsubscribe", lambda e: sendgrid_event(e.client, e.key, "group_unsubscribe", ADA), "email",
     email_back, "email.unsubscribed"),
    ("SendGrid spamreport", lambda e: sendgrid_event(e.client, e.key, "spamreport", ADA), "email", email_back,
     "email.complained"),
    ("Twilio STOP", lambda e: sms_in(e.client, ADA_PHONE, "STOP"), "sms", sms_back, "sms.opted_out"),
    ("Twilio 'Stop.'", lambda e: sms_in(e.client, ADA_PHONE, "Stop."), "sms", sms_back, "sms.opted_out"),
]


def suppressed(e: Engine, contact_id: int) -> set[str]:
    with session_scope(e.db) as s:
        return set(s.execute(select(col(Suppression.channel)).where(
            col(Suppression.contact_id) == contact_id)).scalars())


def count(e: Engine, kind: str, contact_id: int | None = None) -> int:
    with session_scope(e.db) as s:
        q = select(func.count()).select_from(Evidence).where(col(Evidence.type) == kind)
        if contact_id is not None:
            q = q.where(col(Evidence.contact_id) == contact_id)
        return int(s.execute(q).scalar_one())


def snapshot(e: Engine) -> dict[str, Any]:
    """Everything a consent attempt may change."""
    with session_scope(e.db) as s:
        return {
            "suppressions": sorted(s.execute(select(col(Suppression.contact_id), col(Suppression.channel))).all()),
            "consent": sorted(s.execute(select(col(Contact.id), col(Contact.consent_email),
                                               col(Contact.consent_sms))).all()),
            "evidence": sorted(s.execute(select(col(Evidence.id), col(Evidence.type))).all()),
            "audit": int(s.execute(select(func.count()).select_from(ConsentChange)).scalar_one()),
        }


@pytest.mark.parametrize(("act", "channel", "back", "kind"), [o[1:] for o in OPT_OUTS], ids=[o[0] for o in OPT_OUTS])
def test_every_opt_out_takes_effect_every_time(env: Env, act: Callable[[Env], object], channel: str,
                                               back: Callable[[Env], object], kind: str) -> None:
    act(env)
    assert suppressed(env.engine, env.ada) == {channel}
    back(env)  # the buyer changes their mind...
    assert suppressed(env.engine, env.ada) == set()
    act(env)  # ...and back again: the same link, another event of the same kind, another STOP
    assert suppressed(env.engine, env.ada) == {channel}, "the second opt-out was dropped as a repeat"
    assert count(env.engine, kind, env.ada) == 2
    # and nothing goes out on that channel any more
    with session_scope(env.engine.db) as s:
        for t in s.execute(select(Touch).where(col(Touch.contact_id) == env.ada,
                                               col(Touch.status) == TouchStatus.PENDING)).scalars():
            t.status = TouchStatus.APPROVED
            s.add(t)
    now = datetime.now(UTC) + timedelta(minutes=1)
    env.engine.dispatch(now)
    with session_scope(env.engine.db) as s:
        sent = s.execute(select(col(Touch.channel)).where(col(Touch.contact_id) == env.ada,
                                                          col(Touch.status) == TouchStatus.SENT)).scalars().all()
    blocked = {"email", "meeting"} if channel == "email" else {"sms"}
    assert not set(sent) & blocked


def test_a_repeated_provider_event_is_still_one_act(env: Env) -> None:
    """Dedupe by the act's own identity: the same SendGrid event delivered twice counts once."""
    body = json.dumps([{"event": "unsubscribe", "email": ADA, "timestamp": int(time.time()),
                        "sg_event_id": "same-event"}]).encode()
    for _ in range(2):
        ts = str(int(time.time()))
        sig = base64.b64encode(env.key.sign(ts.encode() + body, ec.ECDSA(hashes.SHA256()))).decode()
        env.client.post("/webhooks/sendgrid/events", content=body, headers={
            SIGNATURE_HEADER: sig, TIMESTAMP_HEADER: ts, "Content-Type": "application/json"})
    assert count(env.engine, "email.unsubscribed", env.ada) == 1


# --- SMS keywords ------------------------------------------------------------------------------------

KEYWORDS = [  # (what the buyer texts, the evidence it records: None for HELP, which is answered)
    *[(w, "sms.opted_out") for w in ("STOP", "STOP.", "Stop!", " stop ", "stop\n", "STOPALL", "stop all",
                                     "Unsubscribe.", "cancel!", "End.", "quit?", "OptOut", "revoke!!")],
    *[(w, "sms.opted_in") for w in ("START", "Start.", " unstop! ", "Yes.", "yes")],
    *[(w, None) for w in ("HELP", "Help?", " info. ")],
    *[(w, "sms.replied") for w in ("stop please", "please stop texting", "start the demo", "yes, call me")],
]


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)  # how a text reads: the same on both databases
@pytest.mark.parametrize(("text", "kind"), KEYWORDS, ids=[repr(k[0]) for k in KEYWORDS])
def test_sms_keywords_are_matched_as_carriers_match_them(env: Env, text: str, kind: str | None) -> None:
    if kind == "sms.opted_in":
        sms_in(env.client, ADA_PHONE, "STOP")
        assert suppressed(env.engine, env.ada) == {"sms"}
    before = count(env.engine, "sms.replied")
    answer = sms_in(env.client, ADA_PHONE, text)
    if kind is None:
        assert "reply STOP to opt out" in answer.text  # the help text, answered in TwiML
        assert count(env.engine, "sms.replied") == before
        assert suppressed(env.engine, env.ada) == set()
        return
    assert count(env.engine, kind, env.ada) >= 1
    with session_scope(env.engine.db) as s:
        contact = s.get(Contact, env.ada)
        assert contact is not None
        consent_sms = contact.consent_sms
    if kind == "sms.opted_out":
        assert suppressed(env.engine, env.ada) == {"sms"} and consent_sms is False
        assert count(env.engine, "sms.replied") == before
    elif kind == "sms.opted_in":
        assert suppressed(env.engine, env.ada) == set() and consent_sms is True
    else:
        assert suppressed(env.engine, env.ada) == set() and consent_sms is True


# --- nobody but the buyer lifts an opt-out ---------------------------------------------------------------

def cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    return subprocess.run([sys.executable, "-m", "outreach.cli", *args, "--project", str(root)],
                          capture_output=True, text=True, env=environment, timeout=120)


def opt_out_both(e: Env) -> None:
    """Ada unsubscribes from email and texts STOP."""
    click_and_confirm(e)
    sms_in(e.client, ADA_PHONE, "STOP")
    assert suppressed(e.engine, e.ada) == {"email", "sms"}


LIFTS = ["email.resubscribed", "sms.opted_in"]
ATTEMPTS = [(route, who, kind) for kind in LIFTS for route, who in [
    ("api", ADMIN), ("api", MARKETER), ("api", REP), ("web", ADMIN), ("web", MARKETER), ("web", REP),
    ("cli", "operator")]]


@pytest.mark.parametrize(("route", "who", "kind"), ATTEMPTS, ids=[f"{r}-{w.split('@')[0]}-{k}" for r, w, k in ATTEMPTS])
def test_staff_cannot_lift_an_opt_out(env: Env, route: str, who: str, kind: str) -> None:
    opt_out_both(env)
    before = snapshot(env.engine)
    if route == "api":
        got = env.client.post("/api/evidence", headers=bearer(env.seed, who),
                              json={"contact": {"email": ADA}, "type": kind, "id": f"lift-{uuid.uuid4().hex}"})
        assert got.status_code == 403, got.text
        assert "only the buyer" in got.json()["detail"]
    elif route == "web":
        csrf = sign_in(env.client, who)
        page = env.client.post(f"/contacts/{env.ada}/evidence", data={"csrf": csrf, "type": kind, "note": "asked"})
        assert "only the buyer" in page.text and f"Recorded {kind}" not in page.text
    else:
        p = cli(env.root, "evidence", "add", ADA, kind)
        assert p.returncode == 2, p.stdout + p.stderr
        assert "only the buyer" in p.stderr and "Traceback" not in p.stderr
    assert snapshot(env.engine) == before
    assert suppressed(env.engine, env.ada) == {"email", "sms"}


@pytest.mark.parametrize("who", [ADMIN, MARKETER, REP])
def test_staff_may_record_an_opt_out_for_a_buyer(env: Env, who: str) -> None:
    got = env.client.post("/api/evidence", headers=bearer(env.seed, who),
                          json={"contact": {"email": ADA}, "type": "email.unsubscribed"})
    assert got.status_code == 201, got.text
    assert suppressed(env.engine, env.ada) == {"email"}


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)  # CLI subprocesses: one database is enough
def test_contacts_consent_is_audited_and_needs_a_source_and_a_reason(env: Env) -> None:
    opt_out_both(env)
    before = snapshot(env.engine)
    for args in (["--channel", "email", "--granted", "--reason", "signed form"],  # no --source
                 ["--channel", "email", "--granted", "--source", "paper form"],  # no --reason
                 ["--channel", "email", "--granted", "--source", " ", "--reason", " "],  # blank
                 ["--channel", "email", "--source", "paper form", "--reason", "signed"],  # neither flag
                 ["--channel", "fax", "--granted", "--source", "paper form", "--reason", "signed"]):
        p = cli(env.root, "contacts", "consent", ADA, *args)
        assert p.returncode == 2, (args, p.stdout, p.stderr)
        assert "Traceback" not in p.stderr
    assert snapshot(env.engine) == before

    p = cli(env.root, "contacts", "consent", ADA, "--channel", "email", "--granted",
            "--source", "signed form, 2026-11-30", "--reason", "asked at the conference to hear from us again")
    assert p.returncode == 0, p.stderr
    assert suppressed(env.engine, env.ada) == {"sms"}
    p = cli(env.root, "contacts", "consent", ADA, "--channel", "sms", "--revoked", "--source", "phone call",
            "--reason", "asked for no texts")
    assert p.returncode == 0, p.stderr
    with session_scope(env.engine.db) as s:
        rows = [(a.channel, a.granted, a.source, a.actor) for a in s.execute(
            select(ConsentChange).order_by(col(ConsentChange.id))).scalars()]
        contact = s.get(Contact, env.ada)
        assert contact is not None and contact.consent_email is True and contact.consent_sms is False
    assert rows == [("email", True, "signed form, 2026-11-30", "cli"), ("sms", False, "phone call", "cli")]
    assert suppressed(env.engine, env.ada) == {"sms"}

    # the audit trail is on the contact page, its times in the viewer's zone
    sign_in(env.client, REP)
    page = env.client.get(f"/contacts/{env.ada}").text
    assert "asked at the conference to hear from us again" in page and "signed form, 2026-11-30" in page
    assert "asked for no texts" in page and 'id="consent-audit"' in page


# --- a month of changing minds --------------------------------------------------------------------------

MONTH_RULES = """version: 1
stages:
  - id: aware
interactions:
  routine:  {channels: [email, sms]}
  reminder: {channels: [sms, email]}
playbooks:
  aware:
""" + "".join(f"""    - id: s{i}
      after: {i}d
      interaction: {"reminder" if i % 2 else "routine"}
      content: busy
""" for i in range(30))


def month_engine(tmp_path: Path, database: str, public: str, provider: RecordingProvider) -> Engine:
    root = make_project(tmp_path / "month", database, **project_overrides(public))
    for f in (root / "rules").glob("*.yaml"):
        f.unlink()
    (root / "rules" / "busy.yaml").write_text(MONTH_RULES)
    (root / "content" / "busy.email.j2").write_text("{% block subject %}Hi{% endblock %}{% block text %}Hello"
                                                   "{% endblock %}")
    (root / "content" / "busy.sms.j2").write_text("Hello. Reply STOP to opt out.")
    return Engine(Project.open(root), providers=provider.as_providers())


@pytest.mark.slow
@pytest.mark.parametrize("database", ["sqlite"], indirect=True)  # the dialects: covered above
def test_a_month_of_opt_outs_and_resubscribes_sends_nothing_while_suppressed(tmp_path: Path, database: str) -> None:
    key, public = signing_key()
    provider = RecordingProvider()
    engine = month_engine(tmp_path, database, public, provider)
    c = client(engine)
    secret = engine.settings.server.secret_key
    rnd = random.Random(11)
    clock = FixedClock("2026-03-02 00:00")
    start = clock()
    rows = ["email,phone,timezone,consent_email,consent_sms"]
    rows += [f"m{i}@example.org,+1415556{i:04d},UTC,yes,yes" for i in range(40)]
    (tmp_path / "c.csv").write_text("\n".join(rows) + "\n")
    with session_scope(engine.db) as s:
        import_csv(s, tmp_path / "c.csv", region="US", first_stage="aware", now=start)
        people = {cid: (email, phone) for cid, email, phone in s.execute(
            select(col(Contact.id), col(Contact.email), col(Contact.phone)))}
    # per (contact, channel): the times the channel was shut [since, until) by the buyer's acts
    shut: dict[tuple[int, str], list[list[datetime | None]]] = {}
    acts = 0
    while (now := clock()) < start + timedelta(days=30):
        engine.plan(now)
        engine.dispatch(now)
        for cid in rnd.sample(sorted(people), 3):
            email, phone = people[cid]
            channel = rnd.choice(["email", "sms"])
            spans = shut.setdefault((cid, channel), [])
            is_shut = bool(spans) and spans[-1][1] is None
            if not is_shut:  # opt out: the same link every time for email, a new STOP for sms
                if channel == "email":
                    assert c.post(link(secret, cid), content=b"List-Unsubscribe=One-Click", headers={
                        "Content-Type": "application/x-www-form-urlencoded"}).status_code == 200
                else:
                    sms_in(c, phone, rnd.choice(["STOP", "Stop.", "stop!", " STOP "]))
                spans.append([now, None])
            elif rnd.random() < 0.5:  # the buyer's own way back
                if channel == "email":
                    sendgrid_event(c, key, "group_resubscribe", email)
                else:
                    sms_in(c, phone, rnd.choice(["START", "Unstop."]))
                spans[-1][1] = now
            acts += 1
            with session_scope(engine.db) as s:
                state = set(s.execute(select(col(Suppression.channel)).where(
                    col(Suppression.contact_id) == cid)).scalars())
            assert (channel in state) == (spans[-1][1] is None), f"contact {cid} {channel} at {now}"
        clock.advance(timedelta(hours=2))

    resubscribed_and_shut_again = sum(1 for spans in shut.values() if len(spans) >= 2)
    assert acts > 500 and resubscribed_and_shut_again > 10  # the month exercised changing minds
    with session_scope(engine.db) as s:
        sent = s.execute(select(Touch).where(col(Touch.status) == TouchStatus.SENT)).scalars().all()
    assert len(sent) > 200
    for t in sent:
        channel = "sms" if t.channel == "sms" else "email"
        for since, until in shut.get((t.contact_id, channel), []):
            assert t.sent_at is not None
            # the tick dispatches before that tick's acts: a send at the opt-out's own time is before it
            assert not (since < t.sent_at and (until is None or t.sent_at < until)), \
                f"touch {t.id} ({t.channel}) went out at {t.sent_at} while suppressed since {since}"
