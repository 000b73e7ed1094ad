"""The sandbox's memory: accepted messages, pending faults, opt-outs, the webhook signing key; one lock
guards it all, so counts stay exact under concurrent clients."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import httpx
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import BaseModel, Field
from twilio.request_validator import RequestValidator

from outreach.sandbox import sendgrid as sg
from outreach.sandbox import twilio as tw

log = logging.getLogger(__name__)


@dataclass
class Fault:
    status: int | None
    count: int
    retry_after: int | None = None
    delay: float = 0.0
    kind: str | None = None  # email | sms | None for both


class FaultIn(BaseModel):
    status: int | None = Field(default=None, ge=400, le=599)
    count: int = Field(default=1, ge=1)
    retry_after: int | None = Field(default=None, ge=0)
    delay: float = Field(default=0.0, ge=0, le=60)
    kind: Literal["email", "sms"] | None = None


class OptOutIn(BaseModel):
    phone: str


class SandboxState:
    """What the sandbox remembers. Every method is thread-safe."""

    def __init__(self, key_file: str | None = None, callbacks: bool = True) -> None:
        self._lock = threading.Lock()
        self._messages: list[dict[str, Any]] = []
        self._faults: list[Fault] = []
        self._opted_out: set[str] = set()
        self._tokens: dict[str, str] = {}
        self.key: ec.EllipticCurvePrivateKey = sg.load_or_create_key(key_file)
        self.callbacks = callbacks
        self._callbacks: queue.Queue[tuple[str, dict[str, Any], str] | None] = queue.Queue()
        self._callback_thread: threading.Thread | None = None
        # who hears of each stored message, of a clear and of the close (the scripted buyer, the emitter)
        self.on_record: list[Callable[[dict[str, Any]], None]] = []
        self.on_clear: list[Callable[[], None]] = []
        self.on_close: list[Callable[[], None]] = []

    def record(self, *records: dict[str, Any]) -> None:
        now = time.time()
        stored = [{**rec, "received_at": now} for rec in records]
        with self._lock:
            self._messages.extend(stored)
        for rec in stored:  # the scripted buyer answers in its own thread, later
            for listener in self.on_record:
                listener(dict(rec))

    def messages(self, kind: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(m) for m in self._messages if kind is None or m["kind"] == kind]

    def clear(self) -> None:
        with self._lock:
            self._messages.clear()
            self._faults.clear()
            self._opted_out.clear()
        for listener in self.on_clear:
            listener()

    def add_fault(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def take_fault(self, kind: str) -> Fault | None:
        """Consume one call's worth of the first pending fault that applies to `kind`."""
        with self._lock:
            for fault in self._faults:
                if fault.kind in (None, kind):
                    fault.count -= 1
                    if fault.count <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def opt_out(self, phone: str) -> None:
        with self._lock:
            self._opted_out.add(phone)

    def opt_in(self, phone: str) -> None:
        with self._lock:
            self._opted_out.discard(phone)

    def opted_out(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._opted_out)

    def remember_token(self, account_sid: str, token: str) -> None:
        with self._lock:
            self._tokens[account_sid] = token

    def token_for(self, account_sid: str) -> str | None:
        """The auth token the engine sent with for that account (what it verifies webhooks with)."""
        with self._lock:
            return self._tokens.get(account_sid)

    def accounts(self) -> list[str]:
        with self._lock:
            return list(self._tokens)

    def schedule_callbacks(self, url: str, resource: dict[str, Any]) -> None:
        """Queue `sent` then `delivered` for one message; one worker thread posts them in order."""
        with self._lock:
            token = self._tokens[resource["account_sid"]]
            if self._callback_thread is None:
                self._callback_thread = threading.Thread(target=self._post_callbacks, daemon=True,
                                                         name="sandbox-twilio-callbacks")
                self._callback_thread.start()
        self._callbacks.put((url, resource, token))

    def _post_callbacks(self) -> None:
        with httpx.Client(timeout=10.0) as client:
            while (item := self._callbacks.get()) is not None:
                url, resource, token = item
                try:
                    for status in ("sent", "delivered"):
                        params = tw.callback_params(resource, status)
                        signature = RequestValidator(token).compute_signature(url, params)
                        client.post(url, data=params, headers={"X-Twilio-Signature": signature,
                                                               "User-Agent": "TwilioProxy/1.1"})
                except Exception as exc:  # best effort; a bad URL must not stop the worker
                    log.warning("sandbox: status callback to %s failed: %s", url, exc)
                finally:
                    self._callbacks.task_done()
            self._callbacks.task_done()

    def wait_for_callbacks(self, timeout: float = 5.0) -> None:
        """Block until every queued status callback was posted (or `timeout` passed)."""
        deadline = time.monotonic() + timeout
        while self._callbacks.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)

    def close(self) -> None:
        for listener in self.on_close:
            listener()
        if self._callback_thread is not None:
            self._callbacks.put(None)
            self._callback_thread.join(timeout=5.0)
            self._callback_thread = None


