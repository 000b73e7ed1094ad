"""The sandbox's scripted buyer posts an Event Webhook batch again while the engine answers no 2xx, as
SendGrid does (issue 12, finding 7): an engine restarting for a few seconds loses no click."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

from channels.base import OutgoingMessage
from channels.sendgrid import SendGridProvider
from outreach.sandbox.server import Sandbox


class _Restarting(BaseHTTPRequestHandler):
    """An engine that answers 503 to its first two posts (it is restarting), then 200."""

    answers: list[int] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        status = 503 if len(self.answers) < 2 else 200
        self.answers.append(status)
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        pass


def _buyer_answers(action: str) -> list[int]:
    """Send one email through the sandbox to a buyer scripted to `action` it, with the engine restarting;
    the statuses the engine answered, in order."""
    _Restarting.answers = []
    engine = HTTPServer(("127.0.0.1", 0), _Restarting)
    threading.Thread(target=engine.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{engine.server_port}"
    try:
        with Sandbox(engine_url=base, inbound_url=f"{base}/webhooks/sendgrid/inbound?token=t") as sb:
            sb.parts.buyer.retry_base = 0.2
            sb.script(f"rules: [{{do: {action}, after: 0}}]")
            SendGridProvider("SG.retry", sb.url).send(OutgoingMessage(
                touch_id=7, channel="email", to_email="ada@analytical.example", from_email="sales@example.com",
                subject="Hello", text="Hi Ada"))
            assert sb.wait_for_buyer(15)
            assert [e["status"] for e in sb.emitter.emitted()] == _Restarting.answers
    finally:
        engine.shutdown()
    return list(_Restarting.answers)


def test_a_click_is_posted_again_until_the_engine_takes_it() -> None:
    assert _buyer_answers("click") == [503, 503, 200]


def test_an_inbound_parse_post_is_not_retried() -> None:
    assert _buyer_answers("reply") == [503]
