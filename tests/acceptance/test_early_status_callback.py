"""A Twilio status callback that arrives before the dispatcher has recorded the send (issue 12,
finding 6) is tied to its touch by MessageSid once the send is recorded, never by phone number:
through the signed webhook route, with the callback posted from inside the provider's send."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlmodel import col
from twilio.request_validator import RequestValidator

from channels.base import OutgoingMessage, Provider, SendResult
from outreach.db import session_scope
from outreach.engine import Engine
from outreach.models import Contact, Evidence, Touch, TouchStatus, UnattributedEvent
from outreach.project import Project
from tests.support import ALWAYS, make_project
from tests.support.payloads import twilio_form
from tests.support.web import client

PUBLIC_URL = "https://engine.example"
TOKEN = "twilio-auth-token-for-tests"
PATH = "/webhooks/twilio/status"
PHONE = "+14155550101"


def post_status(web: TestClient, sid: str, status: str, to: str = PHONE) -> int:
    params = {**twilio_form("status_delivered.form"), "MessageSid": sid, "SmsSid": sid, "MessageStatus": status,
              "SmsStatus": status, "To": to}
    signature = RequestValidator(TOKEN).compute_signature(PUBLIC_URL + PATH, params)
    answer = web.post(PATH, content=urlencode(params).encode(), headers={
        "Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature})
    return answer.status_code


class EagerTwilio(Provider):
    """Twilio as it is when busy: `sent` and `delivered` callbacks come back before create() returns."""

    name = "twilio"

    def __init__(self) -> None:
        self.web: TestClient | None = None
        self.answers: list[int] = []

    def send(self, message: OutgoingMessage) -> SendResult:
        sid = f"SM{message.touch_id:032d}"
        assert self.web is not None
        self.answers += [post_status(self.web, sid, "sent", message.to_phone or ""),
                         post_status(self.web, sid, "delivered", message.to_phone or "")]
        return SendResult(self.name, sid)


def test_callbacks_before_the_send_is_recorded_find_their_touch(tmp_path: Path, database: str) -> None:
    root = make_project(tmp_path / "proj", database, **{
        "twilio.auth_token": TOKEN, "twilio.account_sid": "AC0123456789abcdef0123456789abcdef",
        "server.public_url": PUBLIC_URL, "policy.send_windows": {"email": ALWAYS, "sms": ALWAYS, "meeting": ALWAYS}})
    twilio = EagerTwilio()
    engine = Engine(Project.open(root), providers={"sms": twilio, "email": twilio, "meeting": twilio})
    twilio.web = client(engine)
    with session_scope(engine.db) as s:
        ada = Contact(email="ada@example.org", phone=PHONE, consent_sms=True, first_name="Ada", stage="interested")
        s.add(ada)
        s.flush()
        s.add(Touch(contact_id=ada.id or 0, dedupe_key="t1", stage="interested", rule="playbook:interested",
                    step="check-in", interaction="reminder", content="interested/check-in", channel="sms",
                    status=TouchStatus.APPROVED, due_at=datetime.now(UTC) - timedelta(minutes=5)))
    with twilio.web:
        assert engine.dispatch().sent == 1
        assert twilio.answers == [200, 200]  # kept, not refused: Twilio would retry nothing anyway
        # a status for a message this engine never sent, to Ada's number: not hers by phone alone
        assert post_status(twilio.web, "SM" + "f" * 32, "delivered") == 200
    with session_scope(engine.db) as s:
        touch = s.execute(select(Touch)).scalar_one()
        evidence = sorted((e.type, e.touch_id, e.channel) for e in s.execute(select(Evidence)).scalars())
        left = [(u.type, u.provider_message_id) for u in s.execute(select(UnattributedEvent)).scalars()]
    assert touch.status == TouchStatus.SENT and touch.provider_message_id == f"SM{touch.id:032d}"
    assert evidence == [("provider.sent", touch.id, "sms"), ("sms.delivered", touch.id, "sms")]
    assert left == [("sms.delivered", "SM" + "f" * 32)]


def test_housekeeping_attributes_a_callback_kept_just_after_its_send(tmp_path: Path) -> None:
    """The race the send's own transaction cannot see: the callback was kept as unattributed just after
    the send was recorded. Housekeeping's sweep ties it by MessageSid."""
    root = make_project(tmp_path / "proj", f"sqlite:///{tmp_path / 'race.db'}", **{
        "twilio.auth_token": TOKEN, "server.public_url": PUBLIC_URL})
    engine = Engine(Project.open(root))
    now = datetime.now(UTC)
    with session_scope(engine.db) as s:
        ada = Contact(email="ada@example.org", phone=PHONE, consent_sms=True, first_name="Ada", stage="interested")
        s.add(ada)
        s.flush()
        touch = Touch(contact_id=ada.id or 0, dedupe_key="t1", stage="interested", rule="playbook:interested",
                      step="check-in", interaction="reminder", content="interested/check-in", channel="sms",
                      status=TouchStatus.SENT, sent_at=now, provider="twilio", provider_message_id="SM1",
                      due_at=now)
        s.add(touch)
        s.add(UnattributedEvent(source="twilio", type="sms.delivered", occurred_at=now, reason="not yet",
                                phone=PHONE, provider_message_id="SM1", dedupe_key="twilio:SM1:delivered"))
    engine.housekeeping(now)
    with session_scope(engine.db) as s:
        assert [(e.type, e.touch_id) for e in s.execute(select(Evidence)).scalars()] == [("sms.delivered", touch.id)]
        assert s.execute(select(col(UnattributedEvent.id))).first() is None
