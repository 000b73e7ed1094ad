"""The provider interface: what the dispatcher hands a provider, what comes back, the normalized
events that webhooks turn provider payloads into, and the webhook handler interface. Channels never
import the engine."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import KW_ONLY, asdict, dataclass, field
from datetime import datetime
from typing import ClassVar

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
    # more (address, name) recipients of the same message: a meeting invite goes to every buyer it names
    also_to: list[tuple[str, str | None]] = field(default_factory=list)
    from_email: str = ""
    from_name: str = ""
    sms_from: str = ""
    subject: str | None = None
    text: str = ""
    html: str | None = None
    reply_to: str | None = None
    # more Reply-To addresses after `reply_to` (the owning rep's inbox): a reply goes to all of them
    reply_to_also: list[str] = field(default_factory=list)
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
                 status: int | None = None, opted_out: bool = False, maybe_sent: bool = False,
                 retry_after: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.code = code
        self.status = status
        self.opted_out = opted_out  # the address itself refuses us (Twilio 21610): suppress it
        # the request went out but no answer came (a read timeout): the provider may have taken it,
        # so the engine must not retry it blindly
        self.maybe_sent = maybe_sent
        self.retry_after = retry_after  # the answer's Retry-After header as sent (seconds or an HTTP-date)


class Provider(ABC):
    """Sends one message. Implementations fill `send`; they raise ProviderError, never return False."""

    name: str = "provider"

    @abstractmethod
    def send(self, message: OutgoingMessage) -> SendResult: ...

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections (an SMTP session, an HTTP pool)."""


@dataclass
class NormalizedEvent:
    """A buyer or provider event in the engine's vocabulary (SPEC section 9), with the raw payload
    kept: the one shape a webhook produces and the engine records (outreach.evidence).

    `type` is a dotted name such as `email.clicked`; provider events that are not buyer evidence
    (processed, deferred) keep a name under `provider.`. Whether a type is a response, a refusal or
    a suppression is the engine's decision (outreach.evidence), never the provider module's.
    The contact is found by `contact_id`, the touch (`touch_id`, `provider_message_id`, or for an
    event that names no message of ours, `conversation`), `email` or `phone`, in that order."""

    type: str
    occurred_at: datetime
    source: str = "api"  # sendgrid | twilio | inbound | api | cli | ...
    _: KW_ONLY
    contact_id: int | None = None
    touch_id: int | None = None
    provider_message_id: str | None = None
    email: str | None = None
    phone: str | None = None
    dedupe_key: str | None = None  # the provider's event id: a repeat changes nothing
    # The channel whose conversation with `phone` this event continues when it names no message of
    # ours (an inbound SMS): the engine ties it to the latest touch sent there, in the same transaction.
    conversation: str | None = None
    data: Mapping[str, object] = field(default_factory=dict)  # the raw payload, JSON-serializable
    # Set when the event counts only if it provably answers a touch of ours (it names one by touch id
    # or provider message id): otherwise the engine keeps it raw as unattributed, with this reason.
    requires_touch: str | None = None


# --- Webhooks ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class WebhookRequest:
    """What the route read of one provider request, before anything in it is trusted. `url` is the
    public URL the provider called (server.public_url, the path and the query string): what URL
    signatures cover. `fields` and `files` are filled only for handlers that read a form."""

    url: str
    headers: Mapping[str, str]  # case-insensitive
    query: Mapping[str, str]
    body: bytes
    received_at: datetime  # the clock, for providers that send no time of their own
    fields: Mapping[str, str] = field(default_factory=dict)
    files: Mapping[str, bytes] = field(default_factory=dict)


@dataclass(frozen=True)
class WebhookOutcome:
    """What recording a request's events did, for the answer."""

    received: int
    recorded: int
    duplicates: int
    unmatched: int


@dataclass(frozen=True)
class WebhookReply:
    """The answer to the provider: always 200 (a refusal is a WebhookRejected instead)."""

    body: str
    media_type: str


class WebhookHandler(ABC):
    """One provider endpoint. The route (outreach/web/webhooks.py) reads the body within `max_body`
    (and the form, when `reads_form`), calls `verify`, then `parse`, records every event in one
    transaction and answers with `respond`. `verify` raises WebhookRejected(403) and `parse`
    WebhookRejected(400): a refused request changes nothing.

    A provider that signs nothing and puts a secret in the URL instead (SendGrid Inbound Parse)
    sets `verifies_url_only`: `verify` then runs before the body is read, and sees no body."""

    max_body: ClassVar[int] = 5 * 1024 * 1024
    reads_form: ClassVar[bool] = False
    max_part_size: ClassVar[int] = 1024 * 1024  # one form field or file
    verifies_url_only: ClassVar[bool] = False

    @abstractmethod
    def verify(self, request: WebhookRequest) -> None:
        """Return quietly when the request comes from the provider; raise WebhookRejected(403)."""

    @abstractmethod
    def parse(self, request: WebhookRequest) -> list[NormalizedEvent]:
        """The events in a verified request; raise WebhookRejected(400) when it is malformed."""

    def respond(self, request: WebhookRequest, outcome: WebhookOutcome) -> WebhookReply:
        """The answer once the events are recorded: by default the counts, as JSON."""
        return WebhookReply(json.dumps(asdict(outcome), separators=(",", ":")), "application/json")


# The custom arg (SendGrid) and header that carry the engine's touch id through a provider.
TOUCH_ARG = "outreach_touch_id"
