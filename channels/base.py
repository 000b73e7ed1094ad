"""The provider interface: what the dispatcher hands a provider, what comes back, and the
normalized events that webhooks turn provider payloads into. Channels never import the engine."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from outreach.errors import OutreachError


@dataclass
class OutgoingMessage:
    """One rendered touch, ready for a provider. `touch_id` travels with it (custom args,
    Message-ID, Reply-To) so that the provider's events and the buyer's replies find it again."""

    touch_id: int
    channel: str  # email | sms | meeting
    to_email: str | None = None
    to_phone: str | None = None
    to_name: str | None = None
    from_email: str = ""
    from_name: str = ""
    sms_from: str = ""
    subject: str | None = None
    text: str = ""
    html: str | None = None
    reply_to: str | None = None
    message_id: str | None = None  # RFC 5322 Message-ID, with angle brackets
    headers: dict[str, str] = field(default_factory=dict)
    categories: list[str] = field(default_factory=list)
    custom_args: dict[str, str] = field(default_factory=dict)
    calendar: str | None = None  # an iCalendar METHOD:REQUEST body for meeting invites
    status_callback: str | None = None  # where SMS delivery status should be posted


@dataclass
class SendResult:
    provider: str
    provider_message_id: str


class ProviderError(OutreachError):
    """A provider refused or failed a send. `retryable` tells a passing fault (timeout, 429, 5xx)
    from a permanent refusal (bad address, opted-out number); `code` is the provider's own."""

    def __init__(self, reason: str, *, retryable: bool, code: str | int | None = None,
                 status: int | None = None, opted_out: bool = False, maybe_sent: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.code = code
        self.status = status
        self.opted_out = opted_out  # the address itself refuses us (Twilio 21610): suppress it
        # the request went out but no answer came (a read timeout): the provider may have taken it,
        # so the engine must not retry it blindly
        self.maybe_sent = maybe_sent


class Provider(ABC):
    """Sends one message. Implementations fill `send`; they raise ProviderError, never return False."""

    name: str = "provider"

    @abstractmethod
    def send(self, message: OutgoingMessage) -> SendResult: ...

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections (an SMTP session, an HTTP pool)."""


@dataclass
class NormalizedEvent:
    """A provider event in the engine's vocabulary (SPEC section 9), with the raw payload kept.

    `type` is a dotted name such as `email.clicked`; provider events that are not buyer evidence
    (processed, deferred) keep a name under `provider.` and are recorded on the touch only."""

    type: str
    occurred_at: datetime
    source: str  # sendgrid | twilio | inbound | ...
    dedupe_key: str | None = None  # provider's event id: a repeat changes nothing
    touch_id: int | None = None
    provider_message_id: str | None = None
    email: str | None = None
    phone: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    counts_as_response: bool = True


# The custom arg (SendGrid) and header that carry the engine's touch id through a provider.
TOUCH_ARG = "outreach_touch_id"
