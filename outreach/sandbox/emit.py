"""The way back, rehearsed: the sandbox posts to the engine what SendGrid and Twilio would post
about the messages it received, signed as they sign them.

    POST /sandbox/emit/sendgrid-event {"message_id" | "to", "event": "click", "url"?, "fields"?, "engine_url"?}
        a signed Event Webhook post (delivered, open, click, bounce, spamreport, unsubscribe, dropped,
        deferred, processed, group_unsubscribe, group_resubscribe) about that email (the latest one to
        `to`), carrying its custom args and sg_message_id, to {engine_url}/webhooks/sendgrid/events
    POST /sandbox/emit/sms {"from", "body", "to"?, "engine_url"?}
        Twilio's incoming-message webhook, signed with X-Twilio-Signature, to {engine_url}/webhooks/twilio/sms;
        `to` defaults to the number that last texted `from`. STOP-class keywords also opt `from` out here
        (later sends answer 21610) and START-class ones opt it back in, as Twilio's Advanced Opt-Out does
    POST /sandbox/emit/sms-status {"sid" | "to", "status": "delivered" | "failed" | "undelivered" | ..., "error_code"?}
        a signed status callback for that SMS, to its StatusCallback (else {engine_url}/webhooks/twilio/status)
    POST /sandbox/emit/reply {"to_message_id" | "to", "text", "from"?, "subject"?, "auto_reply"?, "inbound_url"?}
        a Gmail reply to that email, in Inbound Parse's parsed format, to the message's Reply-To, with
        In-Reply-To/References its Message-ID (`to_message_id`: the Message-ID or the X-Message-Id)
    POST /sandbox/emit/rsvp {"to", "partstat": "ACCEPTED" | "DECLINED" | "TENTATIVE", "comment"?, "inbound_url"?}
        Google Calendar's METHOD:REPLY for the latest invite sent to `to`, through Inbound Parse
    GET  /sandbox/emitted   everything emitted (by command or by the scripted buyer) and the engine's answers

Each answers {"status": the engine's status code, "url", "posted", "answer"}; 404 when there is no such
message, 400 when no target is known, 502 when the engine cannot be reached. Targets come from the
request or from `outreach sandbox --engine-url URL --inbound-url URL` (the Inbound Parse URL carries
the engine's secret `?token=`: `outreach webhooks` prints it). Twilio posts are signed with
`--twilio-token`, else with the auth token the engine sent with; Twilio signs the URL it calls, so
the engine's `server.public_url` must be the `--engine-url`."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from twilio.request_validator import RequestValidator

from outreach.sandbox import inbound
from outreach.sandbox import sendgrid as sg
from outreach.sandbox import twilio as tw
from outreach.sandbox.state import SandboxState

DEFAULT_ACCOUNT = "AC" + "0" * 32


class EmitError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Emission:
    """One post to the engine and its answer."""

    kind: str  # sendgrid-event | sms | sms-status | reply | rsvp
    url: str
    status: int | None
    posted: Any
    by: str = "command"  # command | script
    answer: str = ""
    error: str | None = None
    at: float = field(default_factory=time.time)


class Emitter:
    """Builds and posts the providers' webhooks about the messages in a SandboxState. Thread-safe."""

    def __init__(self, state: SandboxState, *, engine_url: str | None = None, twilio_token: str | None = None,
                 inbound_url: str | None = None) -> None:
        self.state = state
        self.engine_url = engine_url.rstrip("/") if engine_url else None
        self.twilio_token = twilio_token
        self.inbound_url = inbound_url
        self._log: deque[Emission] = deque(maxlen=1000)
        self._lock = threading.Lock()
        self._client = httpx.Client(timeout=10.0)

    def close(self) -> None:
        self._client.close()

    def emitted(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(e) for e in self._log]

    def forget(self) -> None:
        with self._lock:
            self._log.clear()

    # --- finding messages and targets -------------------------------------------------------------

    def email(self, *, message_id: str | None = None, to: str | None = None, invite: bool = False) -> dict[str, Any]:
        """The email with that X-Message-Id or Message-ID, else the latest one to `to` (with an
        invite when `invite`). Raises EmitError(404) when there is none."""
        if not message_id and not to:
            raise EmitError(400, "say which email: message_id or to")
        wanted = (message_id or "").strip().strip("<>")
        for m in self.state.messages("email")[::-1]:
            mid = str((m.get("headers") or {}).get("Message-ID", "")).strip("<>")
            if wanted and wanted not in (m["message_id"], mid):
                continue
            if to and m["to"].lower() != to.strip().lower():
                continue
            if invite and not m.get("calendar"):
                continue
            return m
        what = f"email with message id {message_id}" if message_id else f"{'invite' if invite else 'email'} to {to}"
        raise EmitError(404, f"the sandbox received no {what}")

    def sms_to(self, phone: str) -> dict[str, Any] | None:
        """The latest SMS the sandbox delivered to `phone`."""
        return next((m for m in reversed(self.state.messages("sms")) if m["to"] == phone), None)

    def _engine(self, override: str | None, path: str) -> str:
        base = (override or self.engine_url or "").rstrip("/")
        if not base:
            raise EmitError(400, "no engine URL: pass engine_url, or start the sandbox with --engine-url")
        return base + path

    def _inbound(self, override: str | None) -> str:
        url = override or self.inbound_url
        if not url:
            raise EmitError(400, "no Inbound Parse URL: pass inbound_url, or start the sandbox with --inbound-url "
                                 "(`outreach webhooks` prints it, ?token= included)")
        return url

    def _token(self, account_sid: str) -> str:
        token = self.twilio_token or self.state.token_for(account_sid)
        if not token:
            raise EmitError(400, "no Twilio auth token to sign with: start the sandbox with --twilio-token, "
                                 "or let the engine send an SMS first")
        return token

    # --- posting --------------------------------------------------------------------------------------

    def _post(self, kind: str, url: str, posted: Any, by: str, **request: Any) -> Emission:
        try:
            answer = self._client.post(url, **request)
        except httpx.HTTPError as exc:
            emission = Emission(kind, url, None, posted, by, error=f"{type(exc).__name__}: {exc}")
        else:
            emission = Emission(kind, url, answer.status_code, posted, by, answer=answer.text[:2000])
        with self._lock:
            self._log.append(emission)
        if emission.error:
            raise EmitError(502, f"could not reach {url}: {emission.error}")
        return emission

    def sendgrid_event(self, message: dict[str, Any], name: str, *, fields: dict[str, Any] | None = None,
                       engine_url: str | None = None, by: str = "command") -> Emission:
        """A signed Event Webhook post of one `name` event about `message`."""
        url = self._engine(engine_url, "/webhooks/sendgrid/events")
        try:
            item = sg.event(message, name, **(fields or {}))
        except ValueError as exc:
            raise EmitError(400, str(exc)) from None
        body = json.dumps([item]).encode()
        headers = {**sg.sign(self.state.key, body), "Content-Type": "application/json",
                   "User-Agent": "SendGrid Event API"}
        return self._post("sendgrid-event", url, [item], by, content=body, headers=headers)

    def _twilio(self, kind: str, url: str, params: dict[str, str], token: str, by: str) -> Emission:
        signature = RequestValidator(token).compute_signature(url, params)
        headers = {"X-Twilio-Signature": signature, "User-Agent": "TwilioProxy/1.1",
                   "Content-Type": "application/x-www-form-urlencoded"}
        return self._post(kind, url, params, by, data=params, headers=headers)

    def sms(self, frm: str, body: str, *, to: str | None = None, engine_url: str | None = None,
            by: str = "command") -> Emission:
        """An inbound SMS from `frm`; `to` defaults to the number that last texted `frm`."""
        url = self._engine(engine_url, "/webhooks/twilio/sms")
        last = self.sms_to(frm)
        account = (last or {}).get("account_sid") or next(iter(self.state.accounts()), DEFAULT_ACCOUNT)
        params = tw.inbound_params(account, frm, to or (last or {}).get("from") or tw.DEFAULT_FROM, body,
                                   messaging_service_sid=(last or {}).get("messaging_service_sid"))
        emission = self._twilio("sms", url, params, self._token(account), by)
        keyword = params.get("OptOutType")
        if keyword == "STOP":
            self.state.opt_out(frm)
        elif keyword == "START":
            self.state.opt_in(frm)
        return emission

    def sms_status(self, message: dict[str, Any], status: str, *, error_code: int | str | None = None,
                   engine_url: str | None = None, by: str = "command") -> Emission:
        """A status callback for a recorded SMS, to its StatusCallback URL."""
        url = message.get("status_callback") or self._engine(engine_url, "/webhooks/twilio/status")
        params = tw.callback_params(message, status, error_code)
        return self._twilio("sms-status", url, params, self._token(message["account_sid"]), by)

    def reply(self, message: dict[str, Any], text: str, *, sender: str | None = None, subject: str | None = None,
              auto_reply: bool = False, inbound_url: str | None = None, by: str = "command") -> Emission:
        """A Gmail reply to `message` through Inbound Parse."""
        url = self._inbound(inbound_url)
        fields, files = inbound.reply_post(message, text, sender=sender, subject=subject, auto_reply=auto_reply)
        body, ctype = inbound.multipart(fields, files)
        return self._post("reply", url, fields, by, content=body, headers={"Content-Type": ctype})

    def rsvp(self, message: dict[str, Any], partstat: str, *, comment: str | None = None,
             inbound_url: str | None = None, by: str = "command") -> Emission:
        """Google Calendar's answer to the invite in `message` through Inbound Parse."""
        url = self._inbound(inbound_url)
        try:
            fields, files = inbound.rsvp_post(message, partstat, comment=comment)
        except ValueError as exc:
            raise EmitError(400, str(exc)) from None
        body, ctype = inbound.multipart(fields, files)
        posted = {**fields, "attachment1": files["attachment1"][2].decode()}
        return self._post("rsvp", url, posted, by, content=body, headers={"Content-Type": ctype})


class SendGridEventIn(BaseModel):
    event: str = "click"
    message_id: str | None = None
    to: str | None = None
    url: str | None = None  # the link a click event names
    fields: dict[str, Any] = {}
    engine_url: str | None = None


class SmsIn(BaseModel):
    from_: str = Field(alias="from")
    body: str
    to: str | None = None
    engine_url: str | None = None

    model_config = ConfigDict(populate_by_name=True)


class SmsStatusIn(BaseModel):
    status: str = "delivered"
    sid: str | None = None
    to: str | None = None
    error_code: int | str | None = None
    engine_url: str | None = None


class ReplyIn(BaseModel):
    text: str
    to_message_id: str | None = None
    to: str | None = None
    from_: str | None = Field(default=None, alias="from")
    subject: str | None = None
    auto_reply: bool = False
    inbound_url: str | None = None

    model_config = ConfigDict(populate_by_name=True)


class RsvpIn(BaseModel):
    to: str
    partstat: str = "ACCEPTED"
    comment: str | None = None
    inbound_url: str | None = None


def _answer(emission: Emission) -> dict[str, Any]:
    return {"status": emission.status, "url": emission.url, "posted": emission.posted, "answer": emission.answer}


def post_events(key: ec.EllipticCurvePrivateKey, url: str, events: list[dict[str, Any]]) -> int:
    """POST `events` to `url` the way SendGrid's signed Event Webhook does; the receiver's status."""
    body = json.dumps(events).encode()
    headers = {**sg.sign(key, body), "Content-Type": "application/json", "User-Agent": "SendGrid Event API"}
    return httpx.post(url, content=body, headers=headers, timeout=10.0).status_code


class EventsIn(BaseModel):
    url: str
    events: list[dict[str, Any]]


def install(app: FastAPI, emitter: Emitter) -> None:
    """Add the /sandbox/emit/* endpoints, /sandbox/emitted and /sandbox/sendgrid/emit to the app."""

    @app.exception_handler(EmitError)
    async def _failed(_request: Any, exc: EmitError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=exc.status)

    @app.post("/sandbox/sendgrid/emit")
    async def emit_batch(body: EventsIn) -> JSONResponse:
        """A hand-made batch of events, signed, to any URL."""
        try:
            status = await run_in_threadpool(post_events, emitter.state.key, body.url, body.events)
        except httpx.HTTPError as exc:
            return JSONResponse({"status": None, "error": str(exc)}, status_code=502)
        return JSONResponse({"status": status})

    @app.post("/sandbox/emit/sendgrid-event")
    async def emit_event(body: SendGridEventIn) -> dict[str, Any]:
        message = emitter.email(message_id=body.message_id, to=body.to)
        fields = {**({"url": body.url} if body.url else {}), **body.fields}
        return _answer(await run_in_threadpool(emitter.sendgrid_event, message, body.event.strip().lower(),
                                               fields=fields, engine_url=body.engine_url))

    @app.post("/sandbox/emit/sms")
    async def emit_sms(body: SmsIn) -> dict[str, Any]:
        return _answer(await run_in_threadpool(emitter.sms, body.from_, body.body, to=body.to,
                                               engine_url=body.engine_url))

    @app.post("/sandbox/emit/sms-status")
    async def emit_sms_status(body: SmsStatusIn) -> dict[str, Any]:
        if not body.sid and not body.to:
            raise EmitError(400, "say which SMS: sid or to")
        found = [m for m in emitter.state.messages("sms")
                 if m["sid"] == body.sid or (not body.sid and m["to"] == body.to)]
        if not found:
            raise EmitError(404, f"the sandbox sent no SMS {body.sid or 'to ' + str(body.to)}")
        return _answer(await run_in_threadpool(emitter.sms_status, found[-1], body.status.strip().lower(),
                                               error_code=body.error_code, engine_url=body.engine_url))

    @app.post("/sandbox/emit/reply")
    async def emit_reply(body: ReplyIn) -> dict[str, Any]:
        message = emitter.email(message_id=body.to_message_id, to=body.to)
        return _answer(await run_in_threadpool(emitter.reply, message, body.text, sender=body.from_,
                                               subject=body.subject, auto_reply=body.auto_reply,
                                               inbound_url=body.inbound_url))

    @app.post("/sandbox/emit/rsvp")
    async def emit_rsvp(body: RsvpIn) -> dict[str, Any]:
        message = emitter.email(to=body.to, invite=True)
        return _answer(await run_in_threadpool(emitter.rsvp, message, body.partstat, comment=body.comment,
                                               inbound_url=body.inbound_url))

    @app.get("/sandbox/emitted")
    async def emitted() -> list[dict[str, Any]]:
        return emitter.emitted()
