"""Dispatch pacing and retries, as decisions the dispatcher asks for: a sender's turn in its token
bucket, what a provider's refusal leads to (uncertain, a retry and when, or failed), how long a
sender pauses after a 429 (Retry-After honoured within bounds), and the backoff of giving touches
back to the queue. No database, no provider: the clock and the dice are passed in, or read through
this module's `time` so that a test can stand in for it."""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

from channels.base import ProviderError
from outreach.kinds import Channel, TouchStatus

# A 429 that names no Retry-After still slows its sender down this long.
SLOW_DOWN = 2.0
# A sender never pauses longer than this for one 429: the SMS thread waits that long in real time,
# and every number behind it with it. A longer Retry-After moves the touch's retry instead.
MAX_SLOW_DOWN = 60.0
# A Retry-After beyond an hour is taken as an hour: the touch waits in the queue, not forever.
MAX_RETRY_AFTER = 3600.0
RELEASE_BACKOFF_CAP = 10.0  # seconds between tries to give untried touches back to the queue


def next_turn(next_at: float, now: float, interval: float) -> tuple[float, float]:
    """A token bucket of one token: the start of the turn a sender takes at `now` (now, or the
    moment its last turn ends) and when the turn after it may start."""
    at = max(now, next_at)
    return at, at + interval


class RateLimiter:
    """A token bucket per sender within one process: Twilio long codes take about one message a
    second. (Sending numbers share theirs across processes: dispatcher.SharedRateLimiter.)"""

    def __init__(self, per_second: float) -> None:
        self.interval = 1.0 / per_second
        self.next_at = 0.0
        self.lock = threading.Lock()

    def wait(self) -> None:
        with self.lock:
            now = time.monotonic()
            at, self.next_at = next_turn(self.next_at, now, self.interval)
        if at > now:
            time.sleep(at - now)

    def slow_down(self, seconds: float) -> None:
        with self.lock:
            self.next_at = max(self.next_at, time.monotonic() + seconds)


def limiter_key(channel: str, sms_from: str) -> str:
    """Whose pace a message keeps: its sending number for an SMS, its channel otherwise."""
    return sms_from if channel == Channel.SMS else channel


def shares_its_rate(key: str) -> bool:
    """A sending number (E.164, `+...`) keeps its rate across processes, in the database."""
    return key.startswith("+")


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """A Retry-After header (RFC 9110: delay-seconds or an HTTP-date) as seconds from `now`, at
    most MAX_RETRY_AFTER; a date already past is 0; None when it is missing or unreadable."""
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():  # ("²".isdigit() holds too)
        return min(float(text), MAX_RETRY_AFTER)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an HTTP-date is always GMT
        return None
    return min(max((when - now).total_seconds(), 0.0), MAX_RETRY_AFTER)


def jitter() -> float:
    """The spread of a retry's delay, so that touches refused together do not come back together."""
    return random.uniform(0.5, 1.5)


@dataclass(frozen=True)
class AfterFailure:
    """What a refused or failed send leads to: `status` is UNCERTAIN (a person checks with the
    provider), APPROVED (a retry, `delay` from now) or FAILED; `slow_down` is how long the sender
    pauses (the provider said 429), in seconds."""

    status: TouchStatus
    reason: str
    delay: timedelta | None = None
    slow_down: float | None = None


def after_failure(exc: ProviderError, attempts: int, max_attempts: int, retry_base: timedelta,
                  spread: float, now: datetime) -> AfterFailure:
    """The decision on a send the provider refused, after `attempts` attempts (this one included):
    never re-sent blindly when it may have gone out; retried with exponential backoff (times
    `spread`, never sooner than a Retry-After) while it is a passing fault and attempts remain."""
    if exc.maybe_sent:
        return AfterFailure(TouchStatus.UNCERTAIN, f"no answer from the provider: {exc.reason}")
    if exc.retryable and attempts < max_attempts:
        delay = retry_base.total_seconds() * 2 ** (attempts - 1) * spread
        wait = retry_after_seconds(exc.retry_after, now)
        if wait is not None:
            delay = max(delay, wait)
        slow = None
        if exc.status == 429:
            slow = SLOW_DOWN if wait is None else min(max(SLOW_DOWN, wait), MAX_SLOW_DOWN)
        return AfterFailure(TouchStatus.APPROVED, f"retrying after: {exc.reason}", timedelta(seconds=delay), slow)
    if exc.retryable:
        return AfterFailure(TouchStatus.FAILED, f"gave up after {attempts} attempts: {exc.reason}")
    return AfterFailure(TouchStatus.FAILED, exc.reason)


def release_backoff(attempt: int) -> float:
    """Seconds before the next try to give untried touches back to a database that went away:
    1, 2, 4, 8, then 10 each."""
    return min(2.0 ** attempt, RELEASE_BACKOFF_CAP)
