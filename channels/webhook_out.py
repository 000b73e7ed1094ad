"""Outbound webhooks, as the Standard Webhooks specification signs them (standardwebhooks.com): a POST
with `webhook-id`, `webhook-timestamp` (Unix seconds of this attempt) and `webhook-signature`
(`v1,` + base64 HMAC-SHA256 of `id.timestamp.body`, keyed with the base64-decoded `whsec_` secret).
Any receiver with a Standard Webhooks library can verify what this sends."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass

from outreach.errors import InvalidInput

SECRET_PREFIX = "whsec_"


def secret_bytes(secret: str) -> bytes:
    """The key inside a `whsec_<base64>` secret; InvalidInput says what is wrong with one."""
    if not secret.startswith(SECRET_PREFIX):
        raise InvalidInput("a webhook secret starts with whsec_ (then base64: `python -c \"import base64, os; "
                           "print('whsec_' + base64.b64encode(os.urandom(32)).decode())\"`)")
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX):], validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput("the part after whsec_ is not base64") from None
    if not 24 <= len(key) <= 64:
        raise InvalidInput(f"the key after whsec_ is {len(key)} bytes: give 24 to 64 (32 is usual)")
    return key


def signature(secret: str, msg_id: str, timestamp: int, body: str) -> str:
    signed = f"{msg_id}.{timestamp}.{body}".encode()
    digest = hmac.new(secret_bytes(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


@dataclass(frozen=True)
class Attempt:
    """What one POST came to: a 2xx is delivered; anything else (a status, a refused connection, a
    timeout) is retried later. `error` says why in words."""

    delivered: bool
    status: int | None
    error: str | None
    duration_ms: int


class WebhookSender:
    """Posts signed webhooks over one HTTP connection pool. `clock` gives the Unix time to sign with."""

    def __init__(self, timeout: float = 10.0, clock: Callable[[], float] = time.time) -> None:
        import httpx  # here, not at the top: every command imports this module, few post webhooks

        self._client = httpx.Client(timeout=timeout, follow_redirects=False)
        self._clock = clock

    def post(self, url: str, secret: str, msg_id: str, body: str) -> Attempt:
        import httpx

        timestamp = int(self._clock())
        headers = {"content-type": "application/json", "user-agent": "outreach-webhooks/1",
                   "webhook-id": msg_id, "webhook-timestamp": str(timestamp),
                   "webhook-signature": signature(secret, msg_id, timestamp, body)}
        started = time.monotonic()
        try:
            response = self._client.post(url, content=body.encode(), headers=headers)
        except httpx.TimeoutException:
            return Attempt(False, None, "no answer in time", _ms(started))
        except httpx.HTTPError as exc:
            return Attempt(False, None, f"could not connect: {type(exc).__name__}", _ms(started))
        ok = 200 <= response.status_code < 300
        return Attempt(ok, response.status_code, None if ok else f"answered HTTP {response.status_code}",
                       _ms(started))

    def close(self) -> None:
        self._client.close()


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
