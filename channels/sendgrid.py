"""Email through SendGrid's v3 Mail Send, with the official SDK.

The touch id travels as the custom arg `TOUCH_ARG` (SendGrid echoes custom args in every Event
Webhook event) and the engine's own Message-ID as a header (replies quote it). A meeting invite
goes as SendGrid's staff recommend for calendar clients: a `text/calendar; method=REQUEST` content
part after text and html, plus the same iCalendar as an `invite.ics` attachment."""

from __future__ import annotations

import base64
import http.client
import json
import logging
import threading
import time
import urllib.request
from email.message import Message
from email.utils import parseaddr
from typing import Any
from urllib.parse import urlsplit

import python_http_client
from python_http_client.exceptions import HTTPError as SendGridHTTPError
from python_http_client.exceptions import err_dict
from sendgrid import SendGridAPIClient

from channels.base import TOUCH_ARG, OutgoingMessage, Provider, ProviderError, SendResult

log = logging.getLogger(__name__)

CALENDAR_CONTENT_TYPE = "text/calendar; method=REQUEST"
INVITE_FILENAME = "invite.ics"


def _address(email: str, name: str | None) -> dict[str, str]:
    return {"email": email, "name": name} if name else {"email": email}


def build_mail(message: OutgoingMessage) -> dict[str, Any]:
    """The Mail Send request body for one message. Raises a permanent ProviderError when the
    message has no recipient; everything else SendGrid validates and answers for itself."""
    if not message.to_email:
        raise ProviderError(f"touch {message.touch_id} has no email address to send to", retryable=False)
    content = []
    if message.text:  # SendGrid refuses empty content values; html-only mail is allowed
        content.append({"type": "text/plain", "value": message.text})
    if message.html:
        content.append({"type": "text/html", "value": message.html})
    if message.calendar:
        content.append({"type": CALENDAR_CONTENT_TYPE, "value": message.calendar})
    headers = dict(message.headers)
    if message.message_id:
        headers["Message-ID"] = message.message_id
    custom_args = {key: str(value) for key, value in message.custom_args.items()}
    custom_args[TOUCH_ARG] = str(message.touch_id)
    body: dict[str, Any] = {
        "personalizations": [{"to": [_address(message.to_email, message.to_name),
                                     *(_address(e, n) for e, n in message.also_to)]}],
        "from": _address(message.from_email, message.from_name),
        "subject": message.subject or "",
        "content": content,
        "custom_args": custom_args,
    }
    if headers:
        body["headers"] = headers
    if message.reply_to and message.reply_to_also:  # SendGrid takes reply_to or reply_to_list, not both
        body["reply_to_list"] = [_address(email, name) for name, email in
                                 map(parseaddr, [message.reply_to, *message.reply_to_also])]
    elif message.reply_to:
        name, email = parseaddr(message.reply_to)
        body["reply_to"] = _address(email, name)
    if message.categories:
        body["categories"] = list(message.categories)
    if message.calendar:
        body["attachments"] = [{
            "content": base64.b64encode(message.calendar.encode()).decode(),
            "type": "application/ics",
            "filename": INVITE_FILENAME,
            "disposition": "attachment",
        }]
    return body


def _describe_errors(body: bytes | str | None) -> str:
    """SendGrid's `{"errors": [{"message", "field"}]}` as one line; the raw body if it is not that."""
    text = body.decode(errors="replace") if isinstance(body, bytes) else (body or "")
    try:
        errors = json.loads(text)["errors"]
        parts = [f"{e.get('message')} (field {e['field']})" if e.get("field") else str(e.get("message"))
                 for e in errors]
    except (ValueError, KeyError, TypeError, AttributeError):
        return text.strip()[:500] or "no details"
    return "; ".join(parts) or "no details"


def error_from_http(exc: SendGridHTTPError) -> ProviderError:
    """Map SendGrid's HTTP error answer: 429 and 5xx pass, any other status is final."""
    status = int(exc.status_code)
    reason = f"SendGrid answered {status}: {_describe_errors(exc.body)}"
    retry_after = exc.headers.get("Retry-After") if exc.headers is not None else None
    if retry_after:
        reason += f" (retry after {retry_after}s)"
    return ProviderError(reason, retryable=status == 429 or status >= 500, status=status,
                         retry_after=retry_after or None)


class _Answer:
    """An HTTP answer in the shape python_http_client's Response reads (getcode, read, info)."""

    def __init__(self, status: int, body: bytes, headers: Message) -> None:
        self.status, self.body, self.headers = status, body, headers

    def getcode(self) -> int:
        return self.status

    def read(self) -> bytes:
        return self.body

    def info(self) -> Message:
        return self.headers


class KeptAlive:
    """One kept-alive HTTP(S) connection per sending thread to one host: the SDK's urllib opener opens
    (and for HTTPS, handshakes) a new connection for every message, which cost a third of a send.

    A POST is never repeated here: a connection that fails mid-request is closed and the error goes up
    as it would from urllib (the provider maps it to "may have been sent", so the touch is never sent
    twice). A connection idle for longer than `idle` seconds is not reused, so a server that has closed
    its end in the meantime (keep-alive timeouts are commonly 5 s and up) does not turn a send into an
    uncertain one."""

    def __init__(self, base: str, idle: float = 4.0) -> None:
        parts = urlsplit(base)
        self.https, self.netloc, self.idle = parts.scheme == "https", parts.netloc, idle
        self._local = threading.local()

    def _connection(self, timeout: float | None) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is not None and time.monotonic() - self._local.used > self.idle:
            conn.close()
            conn = None
        if conn is None:
            conn = (http.client.HTTPSConnection if self.https else http.client.HTTPConnection)(
                self.netloc, timeout=timeout)
            self._local.conn = conn
        return conn

    def close(self) -> None:
        """Close this thread's connection (the others close with their threads' sockets)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def send(self, request: urllib.request.Request, timeout: float | None) -> _Answer:
        """Send `request` (as python_http_client built it); SendGrid's error classes for 4xx/5xx, as
        python_http_client raises them."""
        conn = self._connection(timeout)
        try:
            body = request.data if isinstance(request.data, bytes) else None
            conn.request(request.get_method(), request.selector, body=body, headers=dict(request.header_items()))
            response = conn.getresponse()
            data = response.read()
        except BaseException:
            self.close()  # never reuse a connection in an unknown state
            raise
        if response.will_close:
            self.close()
        self._local.used = time.monotonic()
        if response.status >= 400:
            raise err_dict.get(response.status, SendGridHTTPError)(response.status, response.reason, data,
                                                                  response.headers)
        return _Answer(response.status, data, response.headers)


def proxied(base: str) -> bool:
    """Whether urllib would send requests to `base` through a proxy (HTTP_PROXY, HTTPS_PROXY, NO_PROXY)."""
    parts = urlsplit(base)
    return parts.scheme in urllib.request.getproxies() and not urllib.request.proxy_bypass(parts.hostname or "")


class _KeptAliveClient(python_http_client.Client):  # type: ignore[misc]  # the SDK is untyped
    """python_http_client's Client (the SendGrid SDK's transport), sending through a KeptAlive pool.
    Every `client.mail.send` step builds a child client: they share the pool."""

    def __init__(self, *args: Any, pool: KeptAlive, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pool = pool

    def _build_client(self, name: str | None = None) -> _KeptAliveClient:
        return _KeptAliveClient(host=self.host, version=self._version, request_headers=self.request_headers,
                                url_path=[*self._url_path, name] if name else self._url_path,
                                append_slash=self.append_slash, timeout=self.timeout, pool=self._pool)

    def _make_request(self, opener: Any, request: urllib.request.Request, timeout: float | None = None) -> _Answer:
        return self._pool.send(request, timeout or self.timeout)


class SendGridProvider(Provider):
    """Sends through `{api_base}/v3/mail/send`. Safe to share between threads: each thread keeps its
    own connection (KeptAlive), and the client keeps no per-request state."""

    name = "sendgrid"

    def __init__(self, api_key: str, api_base: str, timeout: float = 10.0) -> None:
        self.api_base = api_base.rstrip("/")
        self.timeout = timeout
        self._client = SendGridAPIClient(api_key, host=self.api_base)
        # The SDK's default is no timeout at all: a hung provider would hang the worker.
        self._client.client.timeout = timeout
        if not proxied(self.api_base):  # urllib honours HTTP(S)_PROXY; http.client would go around it
            self._client.client = _KeptAliveClient(
                host=self.api_base, request_headers=self._client.client.request_headers, version=3, timeout=timeout,
                pool=KeptAlive(self.api_base))

    def send(self, message: OutgoingMessage) -> SendResult:
        body = build_mail(message)
        try:
            response = self._client.send(body)
        except SendGridHTTPError as exc:
            raise error_from_http(exc) from exc
        except (OSError, http.client.HTTPException) as exc:  # refused, reset, timed out (URLError is OSError)
            detail = getattr(exc, "reason", None) or exc or type(exc).__name__
            refused = isinstance(detail, ConnectionRefusedError) or isinstance(exc, ConnectionRefusedError)
            if refused:  # nothing reached SendGrid: safe to try again
                raise ProviderError(f"SendGrid at {self.api_base} refused the connection ({detail})",
                                    retryable=True) from exc
            raise ProviderError(
                f"SendGrid at {self.api_base} did not answer within {self.timeout}s ({detail}); "
                "it may or may not have accepted the message", retryable=True, maybe_sent=True,
            ) from exc
        message_id = response.headers.get("X-Message-Id") or ""
        if not message_id:
            log.warning("sendgrid: accepted touch %s (status %s) without an X-Message-Id", message.touch_id,
                        response.status_code)
        return SendResult(self.name, message_id)
