"""A local stand-in for the SendGrid and Twilio APIs, for rehearsals (`outreach sandbox`) and tests
(`with Sandbox() as sb:`). Point `sendgrid.api_base` and `twilio.api_base` at it.

Provider endpoints, answering as the real APIs do:

    POST /v3/mail/send                                   SendGrid v3 Mail Send (Bearer key, any non-empty)
    POST /2010-04-01/Accounts/{AccountSid}/Messages.json Twilio Messages (Basic auth, user = AccountSid)

Mail Send answers 202 with an `X-Message-Id`, or SendGrid's `{"errors": [...]}` (see
`outreach.sandbox.sendgrid`). Messages answers 201 with a Message resource, or Twilio's error JSON;
Twilio's magic test numbers apply (see `outreach.sandbox.twilio`: To +15005550001 is invalid, 21211;
To +15005550004 has opted out, 21610; ...). A StatusCallback gets `sent` then `delivered`, signed
with `X-Twilio-Signature` under the auth token the send used (`callbacks=False` turns them off).

Control endpoints:

    GET    /sandbox/messages[?kind=email|sms]  what was accepted, one record per delivered message
    DELETE /sandbox/messages                   forget messages, pending faults and opt-outs
    POST   /sandbox/faults      {"status": 429|500|503|..., "count": N, "retry_after": S,
                                 "delay": S, "kind": "email"|"sms"}   the next N matching provider
                                 calls answer `status` (after `delay` seconds); with a delay and no
                                 status the call is accepted late (a client timeout that still sent)
    POST   /sandbox/opt-outs    {"phone": "+1..."}  that number now answers 21610
    GET    /sandbox/keys        {"sendgrid_webhook_public_key": base64 DER}
    POST   /sandbox/sendgrid/emit {"url": ..., "events": [...]}  posts a signed Event Webhook
                                 batch there; answers {"status": the engine's status code}

The way back: `POST /sandbox/emit/{sendgrid-event,sms,sms-status,reply,rsvp}` post the providers'
signed webhooks about received messages to the engine (`outreach.sandbox.emit`), and
`/sandbox/script` runs a scripted buyer that answers messages by itself (`outreach.sandbox.buyer`).
docs/SANDBOX.md walks through a rehearsal.

A faulted call records nothing. All state is guarded by one lock, so counts stay exact under
concurrent clients."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Literal

import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from outreach.sandbox import buyer as sandbox_buyer
from outreach.sandbox import emit as sandbox_emit
from outreach.sandbox import sendgrid as sg
from outreach.sandbox import twilio as tw
from outreach.sandbox.state import Fault, FaultIn, OptOutIn, SandboxState

log = logging.getLogger(__name__)


def _fault_response(fault: Fault, kind: str) -> Response:
    assert fault.status is not None
    try:
        phrase = HTTPStatus(fault.status).phrase
    except ValueError:
        phrase = "Error"
    headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
    if kind == "email":
        body = sg.error_body("too many requests" if fault.status == 429 else phrase)
    else:  # Twilio codes its HTTP errors as 20000 + status (20429, 20500, 20503)
        body = tw.error_body(20000 + fault.status, phrase, fault.status)
    return JSONResponse(body, status_code=fault.status, headers=headers)


def _mail_send(state: SandboxState, auth: str, raw: bytes) -> Response:
    if not auth.startswith("Bearer ") or not auth[7:].strip():
        denied = sg.error_body("The provided authorization grant is invalid, expired, or revoked")
        return JSONResponse(denied, status_code=401)
    try:
        body = json.loads(raw)
    except ValueError:
        return JSONResponse(sg.error_body("Bad Request"), status_code=400)
    if errors := sg.validate(body):
        return JSONResponse({"errors": errors}, status_code=400)
    message_id = sg.new_message_id()
    state.record(*sg.records(body, message_id))
    return Response(status_code=202, headers={"X-Message-Id": message_id})


def _create_message(state: SandboxState, account_sid: str, auth: str | None, raw: bytes) -> Response:
    creds = tw.basic_auth(auth)
    if creds is None or creds[0] != account_sid or not creds[1]:
        return JSONResponse(tw.error_body(20003, "Authenticate", 401), status_code=401)
    state.remember_token(account_sid, creds[1])
    params = dict(urllib.parse.parse_qsl(raw.decode(), keep_blank_values=True))
    if problem := tw.validate(params, state.opted_out()):
        return JSONResponse(tw.error_body(problem[0], problem[1], 400), status_code=400)
    resource = tw.message_resource(account_sid, params)
    state.record({
        "kind": "sms", "sid": resource["sid"], "account_sid": account_sid, "to": params["To"],
        "from": params.get("From"), "messaging_service_sid": params.get("MessagingServiceSid"),
        "body": params.get("Body", ""), "status_callback": params.get("StatusCallback"),
        "num_segments": int(resource["num_segments"]), "params": params,
    })
    if params.get("StatusCallback") and state.callbacks:
        state.schedule_callbacks(params["StatusCallback"], resource)
    return JSONResponse(resource, status_code=201)


@dataclass
class Parts:
    """The sandbox assembled: its state, the emitter that posts webhooks back, the scripted buyer."""

    state: SandboxState
    emitter: sandbox_emit.Emitter
    buyer: sandbox_buyer.Buyer

    @classmethod
    def make(cls, key_file: str | None, callbacks: bool, engine_url: str | None, twilio_token: str | None,
             inbound_url: str | None) -> Parts:
        state = SandboxState(key_file, callbacks)
        emitter = sandbox_emit.Emitter(state, engine_url=engine_url, twilio_token=twilio_token,
                                       inbound_url=inbound_url)
        buyer = sandbox_buyer.Buyer(emitter)
        state.on_record.append(buyer.saw)
        state.on_clear.append(emitter.forget)
        state.on_close += [buyer.close, emitter.close]  # the buyer first: it may still be emitting
        return cls(state, emitter, buyer)


def create_app(parts: Parts) -> FastAPI:
    """The sandbox's HTTP app over `parts`."""
    state = parts.state
    app = FastAPI(title="outreach sandbox", version="1")

    async def with_faults(kind: str, handle: Callable[[], Response]) -> Response:
        """The pending fault's answer, or `handle()`'s. A delay comes after the work, so a client that
        times out may still have had its message accepted, as with a real provider."""
        fault = state.take_fault(kind)
        response = _fault_response(fault, kind) if fault is not None and fault.status else handle()
        if fault is not None and fault.delay:
            await asyncio.sleep(fault.delay)
        return response

    @app.post("/v3/mail/send")
    async def mail_send(request: Request) -> Response:
        raw = await request.body()
        return await with_faults("email", lambda: _mail_send(state, request.headers.get("authorization", ""), raw))

    @app.post("/2010-04-01/Accounts/{account_sid}/Messages.json")
    async def create_message(account_sid: str, request: Request) -> Response:
        raw = await request.body()
        auth = request.headers.get("authorization")
        return await with_faults("sms", lambda: _create_message(state, account_sid, auth, raw))

    @app.get("/sandbox/messages")
    async def list_messages(kind: Literal["email", "sms"] | None = None) -> list[dict[str, Any]]:
        return state.messages(kind)

    @app.delete("/sandbox/messages", status_code=204)
    async def clear_messages() -> None:
        state.clear()

    @app.post("/sandbox/faults", status_code=204)
    async def add_fault(fault: FaultIn) -> None:
        state.add_fault(Fault(**fault.model_dump()))

    @app.post("/sandbox/opt-outs", status_code=204)
    async def add_opt_out(body: OptOutIn) -> None:
        state.opt_out(body.phone)

    @app.get("/sandbox/keys")
    async def keys() -> dict[str, str]:
        return {"sendgrid_webhook_public_key": sg.public_key_b64(state.key)}

    sandbox_emit.install(app, parts.emitter)
    sandbox_buyer.install(app, parts.buyer)
    return app


class Sandbox:
    """The sandbox on a free local port in a background thread, for tests:

        with Sandbox() as sb:
            provider = SendGridProvider("key", sb.url)
            ...
            assert len(sb.messages("email")) == 1
    """

    def __init__(self, *, callbacks: bool = True, key_file: str | None = None, host: str = "127.0.0.1",
                 engine_url: str | None = None, twilio_token: str | None = None,
                 inbound_url: str | None = None) -> None:
        self.parts = Parts.make(key_file, callbacks, engine_url, twilio_token, inbound_url)
        self.state = self.parts.state
        self.host = host
        self.url = ""
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Sandbox:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        # IPPROTO_TCP, not 0: asyncio only sets TCP_NODELAY on sockets that say they are TCP, and
        # without it every answer with a body waits ~40 ms on Nagle and delayed ACKs.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.bind((self.host, 0))
        port = sock.getsockname()[1]
        # No websockets and no lifespan: nothing to import or run that the sandbox does not use.
        config = uvicorn.Config(create_app(self.parts), log_level="warning", access_log=False, ws="none",
                                lifespan="off", http="h11", backlog=1024)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True,
                                        name="outreach-sandbox")
        self._thread.start()
        deadline = time.monotonic() + 10.0
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the sandbox did not start")
            time.sleep(0.01)
        self.url = f"http://{self.host}:{port}"

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10.0)
        self.state.close()

    def messages(self, kind: str | None = None) -> list[dict[str, Any]]:
        """Copies of the recorded messages (kind "email" or "sms"), oldest first."""
        return self.state.messages(kind)

    def clear(self) -> None:
        """Forget recorded messages, pending faults and opt-outs."""
        self.state.clear()

    def fail_next(self, status: int | None, count: int = 1, retry_after: int | None = None, *,
                  delay: float = 0.0, kind: str | None = None) -> None:
        """Make the next `count` provider calls (of `kind`, or any) answer `status`; see the module doc."""
        self.state.add_fault(Fault(status, count, retry_after, delay, kind))

    def opt_out(self, phone: str) -> None:
        """Twilio sends to `phone` now fail with 21610, as after the buyer texted STOP."""
        self.state.opt_out(phone)

    def wait_for_callbacks(self, timeout: float = 5.0) -> None:
        self.state.wait_for_callbacks(timeout)

    @property
    def public_key(self) -> str:
        """The Event Webhook verification key (base64 DER), for `sendgrid.webhook_public_key`."""
        return sg.public_key_b64(self.state.key)

    def sign_events(self, body: bytes, timestamp: str | None = None) -> dict[str, str]:
        """The signature and timestamp headers SendGrid would send with this Event Webhook body."""
        return sg.sign(self.state.key, body, timestamp)

    def emit_events(self, url: str, events: list[dict[str, Any]]) -> int:
        """Post `events` to `url` as a signed Event Webhook batch; the receiver's status code."""
        return sandbox_emit.post_events(self.state.key, url, events)

    @property
    def emitter(self) -> sandbox_emit.Emitter:
        """Emits signed provider webhooks about received messages (see `outreach.sandbox.emit`)."""
        return self.parts.emitter

    def script(self, text: str) -> None:
        """Load a scripted buyer (YAML rules, see `outreach.sandbox.buyer`); raises ValueError."""
        self.parts.buyer.load(sandbox_buyer.load_script(text))

    def wait_for_buyer(self, timeout: float = 10.0) -> bool:
        """Block until the scripted buyer has done everything it planned."""
        return self.parts.buyer.wait_idle(timeout)


def serve(host: str, port: int, *, key_file: str | None = None, callbacks: bool = True,
          engine_url: str | None = None, twilio_token: str | None = None, inbound_url: str | None = None,
          script: str | None = None) -> None:
    """Run the sandbox until interrupted (`outreach sandbox`). With `key_file`, the webhook signing
    key is read from it, or created there, so the public key given to the engine stays valid.
    `engine_url`, `twilio_token` and `inbound_url` are where and how emitted webhooks go; `script`
    is a buyer script's text (raises ValueError when it is not valid)."""
    parts = Parts.make(key_file, callbacks, engine_url, twilio_token, inbound_url)
    if script is not None:
        parts.buyer.load(sandbox_buyer.load_script(script))
    log.info("sandbox: SendGrid webhook public key %s", sg.public_key_b64(parts.state.key))
    try:
        uvicorn.run(create_app(parts), host=host, port=port, log_level="info", ws="none", lifespan="off")
    finally:
        parts.state.close()
