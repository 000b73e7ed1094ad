"""Test doubles for your own tests of a project built on outreach: a provider that records instead of
sending, and a clock that stands still until you move it. The project's own tests use them too.

    from datetime import timedelta

    from outreach.engine import Engine
    from outreach.project import Project
    from outreach.testing import FixedClock, RecordingProvider

    def test_the_welcome_goes_out_once(tmp_path):
        provider = RecordingProvider()
        clock = FixedClock("2026-03-02 15:00")  # a Monday, in UTC
        engine = Engine(Project.open("my-project"), providers=provider.as_providers())
        ...  # import contacts
        engine.plan(clock())
        engine.dispatch(clock())
        assert [m.to_email for m in provider.sent] == ["ada@analytical.example"]

        provider.fail_next(1, "retryable")  # the next send raises a passing ProviderError
        clock.advance(timedelta(days=4))
        engine.plan(clock())
        assert engine.dispatch(clock()).retried == 1

`FixedClock` is a `Callable[[], datetime]`: pass `clock()` wherever outreach takes `now`
(`Engine.plan`, `Engine.record`, `Engine.dispatch`, `Engine.housekeeping`) and the clock itself
where it takes one (`Dispatcher.run_once(clock=clock)`). Nothing here touches the network or the
database."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Literal

from channels.base import OutgoingMessage, Provider, ProviderError, SendResult

__all__ = ["Clock", "FailureKind", "FixedClock", "RecordingProvider", "provider_error"]

Clock = Callable[[], datetime]
"""What outreach takes as a clock (`Dispatcher.run_once(clock=...)`); a FixedClock is one."""

FailureKind = Literal["retryable", "rate_limited", "permanent", "opted_out", "uncertain"]
"""How a failed send fails, as the dispatcher tells failures apart:

- `retryable`: a passing fault (a 503): the touch is retried later, up to `dispatch.max_attempts`;
- `rate_limited`: a 429: retried, and the sender is slowed down;
- `permanent`: a refusal (a 400, a bad address): the touch fails;
- `opted_out`: the address refuses us (Twilio 21610): the touch fails and the channel is suppressed;
- `uncertain`: the request went out and no answer came: the touch is `uncertain`, never re-sent by itself."""


def provider_error(kind: FailureKind, reason: str | None = None) -> ProviderError:
    """The ProviderError a real provider raises for a failure of this kind."""
    why = reason or f"recorded failure: {kind}"
    if kind == "retryable":
        return ProviderError(why, retryable=True, status=503)
    if kind == "rate_limited":
        return ProviderError(why, retryable=True, status=429)
    if kind == "permanent":
        return ProviderError(why, retryable=False, status=400)
    if kind == "opted_out":
        return ProviderError(why, retryable=False, code=21610, status=400, opted_out=True)
    if kind == "uncertain":
        return ProviderError(why, retryable=True, maybe_sent=True)  # as a read timeout: taken, maybe
    raise ValueError(f"unknown failure kind {kind!r}")


class RecordingProvider(Provider):
    """A provider that sends nothing and remembers everything.

    `requests` holds every message it was asked to send, failed or not, in order; `sent` the ones it
    accepted. Accepted sends get the ids `<name>-1`, `<name>-2`, ... in order, so a test can name
    them. `fail_next(n, kind)` makes the next `n` sends raise the ProviderError a real provider
    raises for that kind. Safe to share between the dispatcher's threads and between channels."""

    def __init__(self, name: str = "recording") -> None:
        self.name = name
        self.requests: list[OutgoingMessage] = []
        self.sent: list[OutgoingMessage] = []
        self.results: list[SendResult] = []
        self.failures: list[tuple[OutgoingMessage, ProviderError]] = []
        self.closed = False
        self._failing: list[ProviderError] = []
        self._lock = threading.Lock()

    def send(self, message: OutgoingMessage) -> SendResult:
        with self._lock:
            self.requests.append(message)
            if self._failing:
                error = self._failing.pop(0)
                self.failures.append((message, error))
                raise error
            self.sent.append(message)
            result = SendResult(self.name, f"{self.name}-{len(self.sent)}")
            self.results.append(result)
            return result

    def fail_next(self, count: int = 1, kind: FailureKind = "retryable", reason: str | None = None) -> None:
        """Make the next `count` sends fail with a ProviderError of this kind (after any queued before)."""
        if count < 0:
            raise ValueError("count must be 0 or more")
        with self._lock:  # one exception per send: a raised exception keeps its traceback
            self._failing.extend(provider_error(kind, reason) for _ in range(count))

    @property
    def pending_failures(self) -> int:
        """How many of the next sends will still fail."""
        with self._lock:
            return len(self._failing)

    def sent_to(self, address: str) -> list[OutgoingMessage]:
        """The accepted messages to this email address or phone number."""
        with self._lock:
            return [m for m in self.sent if address in (m.to_email, m.to_phone)]

    def for_touch(self, touch_id: int) -> list[OutgoingMessage]:
        """Every request made for this touch (a retried touch has several)."""
        with self._lock:
            return [m for m in self.requests if m.touch_id == touch_id]

    def as_providers(self) -> dict[str, Provider]:
        """This provider for every channel, as `Engine(project, providers=...)` takes them."""
        return {"email": self, "sms": self, "meeting": self}

    def reset(self) -> None:
        """Forget what was recorded and any failures still queued."""
        with self._lock:
            self.requests.clear()
            self.sent.clear()
            self.results.clear()
            self.failures.clear()
            self._failing.clear()

    def close(self) -> None:
        self.closed = True


class FixedClock:
    """A clock that returns the same aware datetime until told to move.

    `FixedClock("2026-03-02 15:00")` reads text without an offset as UTC; a datetime must be aware
    (outreach compares times across time zones). Call it for the time, `advance` to move it on.
    It is a `Callable[[], datetime]`, so it goes where outreach takes a clock."""

    def __init__(self, start: datetime | str) -> None:
        self._now = self._aware(start)

    @staticmethod
    def _aware(when: datetime | str) -> datetime:
        if isinstance(when, str):
            parsed = datetime.fromisoformat(when)
            return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
        if when.tzinfo is None or when.utcoffset() is None:
            raise ValueError(f"FixedClock needs an aware datetime, not {when!r}")
        return when

    def __call__(self) -> datetime:
        return self._now

    @property
    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> datetime:
        """Move the clock on (never back) by `delta`; return the new time."""
        if delta < timedelta(0):
            raise ValueError("a FixedClock does not run backwards; use set()")
        self._now += delta
        return self._now

    def set(self, when: datetime | str) -> datetime:
        """Put the clock at `when` (text without an offset is UTC); return it."""
        self._now = self._aware(when)
        return self._now

    def __repr__(self) -> str:
        return f"FixedClock({self._now.isoformat()!r})"
