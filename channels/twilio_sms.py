"""SMS through Twilio's Messages API, with the official SDK.

Twilio's own error codes decide what a failure means: 21610 (the buyer texted STOP) is permanent and
marks the number opted out; 429/20429, 5xx and 21611 (the sender's queue is full) pass; any other
4xx (21211 invalid number, 21614 not a mobile, 21408 no permission, ...) is permanent."""

from __future__ import annotations

import threading
from typing import Any

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from channels.base import OutgoingMessage, Provider, ProviderError, SendResult

OPTED_OUT = 21610
PASSING_CODES = frozenset({20429, 21611})


def _retryable(status: int, code: int | None) -> bool:
    return status == 429 or status >= 500 or code in PASSING_CODES


class TwilioSmsProvider(Provider):
    """Sends with `From` = the message's or the configured sender, or through a Messaging Service
    (which picks the sender) when `messaging_service_sid` is set. Each thread gets its own SDK
    client, because the SDK's HTTP client keeps a requests Session and per-request state."""

    name = "twilio"

    def __init__(self, account_sid: str, auth_token: str, api_base: str, sms_from: str,
                 messaging_service_sid: str = "", timeout: float = 10.0) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.api_base = api_base.rstrip("/")
        self.sms_from = sms_from
        self.messaging_service_sid = messaging_service_sid
        self.timeout = timeout
        self._local = threading.local()
        self._lock = threading.Lock()
        self._http_clients: list[TwilioHttpClient] = []

    def _client(self) -> Client:
        client: Client | None = getattr(self._local, "client", None)
        if client is None:
            # The SDK has no default timeout either.
            http_client = TwilioHttpClient(timeout=self.timeout)
            client = Client(self.account_sid, self.auth_token, http_client=http_client)
            client.api.base_url = self.api_base  # edge/region cannot point the SDK elsewhere; this can
            self._local.client = client
            with self._lock:
                self._http_clients.append(http_client)
        return client

    def _params(self, message: OutgoingMessage) -> dict[str, Any]:
        if not message.to_phone:
            raise ProviderError(f"touch {message.touch_id} has no phone number to send to", retryable=False)
        params: dict[str, Any] = {"to": message.to_phone, "body": message.text}
        if self.messaging_service_sid:
            params["messaging_service_sid"] = self.messaging_service_sid
            if message.sms_from:  # an explicit sender must belong to the service's pool
                params["from_"] = message.sms_from
        elif message.sms_from or self.sms_from:
            params["from_"] = message.sms_from or self.sms_from
        else:
            raise ProviderError("no SMS sender: set sender.sms_from or twilio.messaging_service_sid",
                                retryable=False)
        if message.status_callback:
            params["status_callback"] = message.status_callback
        return params

    def send(self, message: OutgoingMessage) -> SendResult:
        params = self._params(message)
        try:
            created = self._client().messages.create(**params)
        except TwilioRestException as exc:
            code = int(exc.code) if exc.code is not None else None
            raise ProviderError(f"Twilio answered {exc.status}, error {code}: {exc.msg}",
                                retryable=_retryable(exc.status, code), code=code, status=exc.status,
                                opted_out=code == OPTED_OUT) from exc
        except TwilioServiceException as exc:  # the newer RFC 9457 error shape
            raise ProviderError(f"Twilio answered {exc.status}, error {exc.code}: {exc.title}"
                                + (f" ({exc.detail})" if exc.detail else ""),
                                retryable=_retryable(exc.status, exc.code), code=exc.code, status=exc.status,
                                opted_out=exc.code == OPTED_OUT) from exc
        except (requests.ConnectTimeout, requests.ConnectionError) as exc:
            if isinstance(exc, requests.ConnectTimeout) or "refused" in str(exc).lower():
                # the request never reached Twilio: safe to try again
                raise ProviderError(f"Twilio at {self.api_base} could not be reached ({type(exc).__name__})",
                                    retryable=True) from exc
            raise ProviderError(f"Twilio at {self.api_base} dropped the connection ({type(exc).__name__}); it may "
                                "or may not have accepted the message", retryable=True, maybe_sent=True) from exc
        except requests.RequestException as exc:  # read timeout and the like: the request went out
            raise ProviderError(
                f"Twilio at {self.api_base} did not answer within {self.timeout}s ({type(exc).__name__}); "
                "it may or may not have accepted the message", retryable=True, maybe_sent=True,
            ) from exc
        except TwilioException as exc:  # e.g. no credentials configured
            raise ProviderError(f"Twilio client error: {exc}", retryable=False) from exc
        return SendResult(self.name, str(created.sid))

    def close(self) -> None:
        with self._lock:
            clients, self._http_clients = self._http_clients, []
        for http_client in clients:
            if http_client.session is not None:
                http_client.session.close()
        self._local = threading.local()
