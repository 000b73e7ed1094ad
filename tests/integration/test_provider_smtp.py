"""The SMTP provider against a real SMTP server (aiosmtpd) on a port the system picked for it."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Iterator
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import Envelope, Session
from sqlmodel import select

from channels.base import OutgoingMessage, ProviderError
from channels.smtp import SmtpProvider
from outreach.contacts import import_csv
from outreach.db import session_scope
from outreach.engine import Engine
from outreach.models import Touch, TouchStatus
from outreach.project import Project
from tests.support import ALWAYS, make_project

INVITE = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\nUID:touch-42@example.com\r\n"
          "SUMMARY:Demo\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")


class Mailbox:
    """Accepts mail, except for recipients whose local part says otherwise."""

    def __init__(self) -> None:
        self.received: list[tuple[Any, str, list[str], bytes]] = []

    async def handle_RCPT(self, server: SMTPServer, session: Session, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        if address.startswith("nobody@"):
            return "550 5.1.1 No such user here"
        if address.startswith("busy@"):
            return "451 4.3.0 Mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes) and envelope.mail_from is not None
        self.received.append((session.peer, envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted for delivery"


class _OwnPortController(Controller):
    """aiosmtpd's Controller on a port the system picks (bind to 0), read back from the listening socket
    before `start` returns, so no other process can take it between a probe and the bind."""

    def _create_server(self) -> Awaitable[asyncio.AbstractServer]:
        return self._bind()

    async def _bind(self) -> asyncio.AbstractServer:
        server = await self.loop.create_server(self._factory_invoker, host=self.hostname, port=0,
                                               ssl=self.ssl_context)
        self.port = int(server.sockets[0].getsockname()[1])  # start() then checks the server answers there
        return server


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    controller = _OwnPortController(box, hostname="127.0.0.1")
    controller.start()
    try:
        yield box, controller.port
    finally:
        controller.stop()


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port bound but not listening for the test's whole length: a connection to it is refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield int(s.getsockname()[1])


def email(**overrides: Any) -> OutgoingMessage:
    fields: dict[str, Any] = dict(
        touch_id=42, channel="meeting", to_email="buyer@acme.test", to_name="Bea Buyer",
        from_email="sales@example.com", from_name="Example Sales", subject="Demo on Tuesday?",
        text="Hello Bea", html="<p>Hello Bea</p>", reply_to="r-42@reply.example.com",
        message_id="<touch-42.abc@example.com>",
        headers={"List-Unsubscribe": "<https://app.example.com/u/tok42>",
                 "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"},
        calendar=INVITE,
    )
    fields.update(overrides)
    return OutgoingMessage(**fields)


def parse(raw: bytes) -> EmailMessage:
    msg = message_from_bytes(raw, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def test_invite_has_the_structure_calendar_clients_expect(mailbox: tuple[Mailbox, int]) -> None:
    box, port = mailbox
    provider = SmtpProvider("127.0.0.1", port)
    result = provider.send(email())
    provider.close()

    [(_, mail_from, rcpt_tos, raw)] = box.received
    assert (mail_from, rcpt_tos) == ("sales@example.com", ["buyer@acme.test"])
    assert result.provider == "smtp" and result.provider_message_id == "touch-42.abc@example.com"
    msg = parse(raw)
    assert msg["From"] == "Example Sales <sales@example.com>"
    assert msg["To"] == "Bea Buyer <buyer@acme.test>"
    assert (msg["Subject"], msg["Message-ID"], msg["Reply-To"]) == (
        "Demo on Tuesday?", "<touch-42.abc@example.com>", "r-42@reply.example.com")
    assert msg["List-Unsubscribe"] == "<https://app.example.com/u/tok42>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg["X-Outreach-Touch-Id"] == "42" and msg["Date"]
    assert msg.get_content_type() == "multipart/mixed"
    alternative, attachment = msg.iter_parts()
    assert alternative.get_content_type() == "multipart/alternative"
    plain, html, calendar = alternative.iter_parts()
    assert [p.get_content_type() for p in (plain, html, calendar)] == ["text/plain", "text/html", "text/calendar"]
    assert plain.get_content().strip() == "Hello Bea" and html.get_content().strip() == "<p>Hello Bea</p>"
    assert calendar.get_param("method") == "REQUEST"
    assert calendar.get_content().replace("\r\n", "\n") == INVITE.replace("\r\n", "\n")
    assert attachment.get_content_type() == "application/ics"
    assert attachment.get_filename() == "invite.ics" and attachment.get_content_disposition() == "attachment"
    assert attachment.get_content() == INVITE.encode()


def test_plain_email_is_a_single_text_part(mailbox: tuple[Mailbox, int]) -> None:
    box, port = mailbox
    SmtpProvider("127.0.0.1", port).send(email(html=None, calendar=None, reply_to=None, headers={},
                                               message_id=None, from_name="Zoë Sälës"))
    msg = parse(box.received[0][3])
    assert msg.get_content_type() == "text/plain" and not msg.is_multipart()
    assert msg["Reply-To"] is None
    assert msg["Message-ID"].endswith("@example.com>")  # generated on the sender's domain
    assert str(msg["From"]) == "Zoë Sälës <sales@example.com>"


def test_session_is_reused_until_closed(mailbox: tuple[Mailbox, int]) -> None:
    box, port = mailbox
    provider = SmtpProvider("127.0.0.1", port)
    provider.send(email(touch_id=1))
    provider.send(email(touch_id=2))
    provider.close()
    provider.send(email(touch_id=3))
    provider.close()
    peers = [peer for peer, *_ in box.received]
    assert peers[0] == peers[1] != peers[2]


@pytest.mark.parametrize(("to", "code", "retryable"), [
    ("nobody@acme.test", 550, False),
    ("busy@acme.test", 451, True),
])
def test_smtp_refusals_follow_the_reply_code(mailbox: tuple[Mailbox, int], to: str, code: int,
                                             retryable: bool) -> None:
    box, port = mailbox
    provider = SmtpProvider("127.0.0.1", port)
    with pytest.raises(ProviderError) as err:
        provider.send(email(to_email=to))
    assert (err.value.retryable, err.value.code, err.value.status) == (retryable, code, code)
    assert to in err.value.reason and str(code) in err.value.reason
    provider.send(email())  # the failed session was dropped; the next send still goes
    assert len(box.received) == 1


def test_unreachable_server_is_retryable(closed_port: int) -> None:
    with pytest.raises(ProviderError) as err:
        SmtpProvider("127.0.0.1", closed_port, timeout=2).send(email())
    assert err.value.retryable


def test_header_injection_is_refused_permanently(mailbox: tuple[Mailbox, int]) -> None:
    box, port = mailbox
    with pytest.raises(ProviderError) as err:
        SmtpProvider("127.0.0.1", port).send(email(headers={"X-Note": "hi\r\nBcc: everyone@acme.test"}))
    assert not err.value.retryable
    assert box.received == []


def test_the_engine_sends_through_smtp(mailbox: tuple[Mailbox, int], tmp_path: Path) -> None:
    """The path a user takes: `providers.email: smtp` in config.yaml, plan, dispatch."""
    box, port = mailbox
    root = make_project(tmp_path / "proj", f"sqlite:///{tmp_path / 'smtp.db'}", **{
        "providers.email": "smtp", "smtp.host": "127.0.0.1", "smtp.port": port,
        "policy.send_windows": {"email": ALWAYS, "sms": ALWAYS, "meeting": ALWAYS}})
    engine = Engine(Project.open(root))
    now = datetime.now(UTC)
    with session_scope(engine.db) as s:
        import_csv(s, root / "contacts.csv", region="US", first_stage="aware", now=now)
    engine.plan(now)
    result = engine.dispatch(now)
    assert result.sent == 6 and len(box.received) == 6, result.reasons
    with session_scope(engine.db) as s:
        sent = {t.contact_id: t for t in s.exec(select(Touch)).all()}
    assert all(t.status == TouchStatus.SENT and t.provider_message_id for t in sent.values())
    to = sorted(rcpt for _peer, _from, rcpts, _raw in box.received for rcpt in rcpts)
    assert to == sorted(["ada@analytical.example", "grace@cobol.example", "alan@bletchley.example",
                         "katherine@orbit.example", "linus@kernel.example", "margaret@apollo.example"])
    msg = parse(box.received[0][3])
    assert msg["List-Unsubscribe"] and msg["Message-ID"] and msg.get_body(("plain",)) is not None
