"""The one route pipeline every webhook endpoint runs (outreach/web/webhooks.py), with a made-up
provider: the order of its steps, one `engine.record` call per request, and the handler's answer."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from types import SimpleNamespace
from typing import ClassVar

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient

from channels.base import NormalizedEvent, WebhookHandler, WebhookOutcome, WebhookReply, WebhookRequest
from outreach.errors import WebhookRejected
from outreach.evidence import RecordResult
from outreach.web.webhooks import PREFIX, register, router


@dataclass
class FakeEngine:
    settings: SimpleNamespace = field(default_factory=lambda: SimpleNamespace(
        server=SimpleNamespace(public_url="https://engine.example/")))
    calls: list[list[NormalizedEvent]] = field(default_factory=list)

    def record(self, items: list[NormalizedEvent], now: datetime | None = None) -> RecordResult:
        self.calls.append(items)
        return RecordResult(duplicates=len(items))


class Echo(WebhookHandler):
    """Each line of the body is an event type; the header `X-Key` must be "k"."""

    max_body: ClassVar[int] = 64
    seen: ClassVar[list[str]] = []

    def verify(self, request: WebhookRequest) -> None:
        Echo.seen.append(f"verify:{len(request.body)}:{request.url}")
        if request.headers.get("x-key") != "k":
            raise WebhookRejected(403, "no key")

    def parse(self, request: WebhookRequest) -> list[NormalizedEvent]:
        Echo.seen.append("parse")
        return [NormalizedEvent(line, request.received_at, "echo") for line in request.body.decode().split()]

    def respond(self, request: WebhookRequest, outcome: WebhookOutcome) -> WebhookReply:
        return WebhookReply(f"<ok {outcome.received}/{outcome.duplicates}/>", "application/xml")


class UrlKeyed(Echo):
    verifies_url_only = True


def app_with(engine: FakeEngine) -> TestClient:
    app = FastAPI()
    app.state.engine = engine
    router = APIRouter(prefix=PREFIX)
    register("/echo", lambda _s: Echo(), "echo", on=router)
    register("/url", lambda _s: UrlKeyed(), "url keyed", on=router)
    app.include_router(router)

    @app.exception_handler(WebhookRejected)
    async def _rejected(_request: Request, exc: WebhookRejected) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=exc.status)

    return TestClient(app)


def test_a_request_is_verified_parsed_recorded_once_and_answered() -> None:
    engine, Echo.seen[:] = FakeEngine(), []
    answer = app_with(engine).post("/webhooks/echo?a=1", content=b"email.clicked email.opened",
                                   headers={"X-Key": "k"})
    assert (answer.status_code, answer.text) == (200, "<ok 2/2/>")
    assert answer.headers["content-type"] == "application/xml"
    assert Echo.seen == ["verify:26:https://engine.example/webhooks/echo?a=1", "parse"]
    assert [[e.type for e in call] for call in engine.calls] == [["email.clicked", "email.opened"]]


def test_refusals_record_nothing() -> None:
    engine, Echo.seen[:] = FakeEngine(), []
    client = app_with(engine)
    assert client.post("/webhooks/echo", content=b"email.clicked").status_code == 403
    assert client.post("/webhooks/echo", content=b"x" * 65, headers={"X-Key": "k"}).status_code == 413
    assert engine.calls == [] and "parse" not in Echo.seen


def test_a_url_secret_is_checked_before_the_body_is_read() -> None:
    engine, Echo.seen[:] = FakeEngine(), []
    client = app_with(engine)
    assert client.post("/webhooks/url", content=b"x" * 65).status_code == 403  # not 413: never read
    assert Echo.seen == ["verify:0:https://engine.example/webhooks/url"]
    assert client.post("/webhooks/url", content=b"", headers={"X-Key": "k"}).status_code == 200
    assert engine.calls == []  # no events: nothing to record


def test_every_provider_endpoint_is_registered() -> None:
    assert sorted(getattr(r, "path", "") for r in router.routes) == [
        "/webhooks/sendgrid/events", "/webhooks/sendgrid/inbound", "/webhooks/shopify", "/webhooks/stripe",
        "/webhooks/twilio/sms", "/webhooks/twilio/status"]
