"""The dispatcher's pacing and retry decisions, as tables at their edges: a sender's turn in its
token bucket, Retry-After in each of its forms, what each kind of refusal leads to and when a retry
comes, the pause after a 429, and the backoff of giving touches back to a database that went away."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from channels.base import ProviderError
from outreach import pacing
from outreach.kinds import TouchStatus
from outreach.pacing import AfterFailure, after_failure, next_turn, retry_after_seconds

NOW = datetime(2026, 12, 2, 10, 0, 0, tzinfo=UTC)
BASE = timedelta(seconds=30)


@pytest.mark.parametrize(("next_at", "now", "interval", "expected"), [
    (0.0, 100.0, 1.0, (100.0, 101.0)),  # an idle bucket: the turn is now
    (99.5, 100.0, 1.0, (100.0, 101.0)),  # the last turn ended before now
    (100.0, 100.0, 1.0, (100.0, 101.0)),  # it ends exactly now: no wait
    (100.25, 100.0, 1.0, (100.25, 101.25)),  # a quarter of a second still to wait
    (103.0, 100.0, 0.5, (103.0, 103.5)),  # three turns taken ahead: the fourth starts after them
    (100.0, 100.0, 0.01, (100.0, 100.01)),  # a short code: a hundred a second
])
def test_next_turn(next_at: float, now: float, interval: float, expected: tuple[float, float]) -> None:
    assert next_turn(next_at, now, interval) == pytest.approx(expected)


@pytest.mark.parametrize(("channel", "sms_from", "key"), [
    ("sms", "+15550001111", "+15550001111"),  # an SMS keeps its number's pace
    ("email", "+15550001111", "email"),  # an email's sms_from means nothing
    ("meeting", "", "meeting"),
])
def test_whose_pace_a_message_keeps(channel: str, sms_from: str, key: str) -> None:
    assert pacing.limiter_key(channel, sms_from) == key


@pytest.mark.parametrize(("key", "shared"), [
    ("+15550001111", True), ("email", False), ("15550001111", False), ("1555+", False), ("", False)])
def test_only_a_sending_number_shares_its_rate_across_processes(key: str, shared: bool) -> None:
    assert pacing.shares_its_rate(key) is shared


@pytest.mark.parametrize(("value", "seconds"), [
    (None, None),  # missing
    ("", None),
    ("   ", None),
    ("0", 0.0),
    ("7", 7.0),
    (" 120 ", 120.0),  # spaces around it
    ("3600", 3600.0),  # an hour: kept
    ("3601", 3600.0),  # beyond an hour: an hour
    ("99999999999", 3600.0),  # huge
    ("-5", None),  # not a delay-seconds, not a date
    ("1.5", None),  # delay-seconds is whole seconds
    ("²", None),  # a digit to str.isdigit, not to RFC 9110
    ("soon", None),
    ("Wed, 02 Dec 2026 10:00:30 GMT", 30.0),  # an HTTP-date, 30 s from now
    ("Wed, 02 Dec 2026 10:00:00 GMT", 0.0),  # exactly now
    ("Wed, 02 Dec 2026 09:59:00 GMT", 0.0),  # already past
    ("Wed, 02 Dec 2026 11:00:00 GMT", 3600.0),  # exactly an hour ahead
    ("Thu, 03 Dec 2026 10:00:00 GMT", 3600.0),  # a day ahead: an hour
    ("Wed, 02 Dec 2026 10:00:30 -0000", None),  # no zone known: unreadable, not guessed
    ("Wed, 02 Dec 2026 10:00:30", None),
])
def test_retry_after(value: str | None, seconds: float | None) -> None:
    assert retry_after_seconds(value, NOW) == seconds


def _error(*, retryable: bool = True, status: int | None = 503, maybe_sent: bool = False,
           retry_after: str | None = None) -> ProviderError:
    return ProviderError("busy", retryable=retryable, status=status, maybe_sent=maybe_sent, retry_after=retry_after)


R, F, U = TouchStatus.APPROVED, TouchStatus.FAILED, TouchStatus.UNCERTAIN


@pytest.mark.parametrize(("error", "attempts", "spread", "expected"), [
    # it may have gone out: a person checks, whatever else is true of it
    (_error(maybe_sent=True), 1, 1.0, AfterFailure(U, "no answer from the provider: busy")),
    (_error(maybe_sent=True, retryable=False), 1, 1.0, AfterFailure(U, "no answer from the provider: busy")),
    (_error(maybe_sent=True, status=429), 5, 1.0, AfterFailure(U, "no answer from the provider: busy")),
    # a passing fault: 30 s, 60 s, 120 s, 240 s after attempts 1 to 4, times the spread
    (_error(), 1, 1.0, AfterFailure(R, "retrying after: busy", timedelta(seconds=30))),
    (_error(), 2, 1.0, AfterFailure(R, "retrying after: busy", timedelta(seconds=60))),
    (_error(), 4, 1.0, AfterFailure(R, "retrying after: busy", timedelta(seconds=240))),
    (_error(), 3, 0.5, AfterFailure(R, "retrying after: busy", timedelta(seconds=60))),
    (_error(), 1, 1.5, AfterFailure(R, "retrying after: busy", timedelta(seconds=45))),
    # the last attempt allowed was this one: give up, and say after how many
    (_error(), 5, 1.0, AfterFailure(F, "gave up after 5 attempts: busy")),
    (_error(), 6, 1.0, AfterFailure(F, "gave up after 6 attempts: busy")),
    (_error(status=429), 5, 1.0, AfterFailure(F, "gave up after 5 attempts: busy")),  # no pause either
    # a refusal: failed at once, with the provider's reason as it is
    (_error(retryable=False, status=400), 1, 1.0, AfterFailure(F, "busy")),
    (_error(retryable=False, status=429), 1, 1.0, AfterFailure(F, "busy")),
    # a 429 slows the sender down: 2 s, or the Retry-After up to a minute; the retry waits the longer
    (_error(status=429), 1, 1.0, AfterFailure(R, "retrying after: busy", timedelta(seconds=30), 2.0)),
    (_error(status=429, retry_after="1"), 1, 1.0, AfterFailure(R, "retrying after: busy", timedelta(seconds=30), 2.0)),
    (_error(status=429, retry_after="10"), 1, 1.0,
     AfterFailure(R, "retrying after: busy", timedelta(seconds=30), 10.0)),
    (_error(status=429, retry_after="60"), 1, 1.0,
     AfterFailure(R, "retrying after: busy", timedelta(seconds=60), 60.0)),
    (_error(status=429, retry_after="61"), 1, 1.0,
     AfterFailure(R, "retrying after: busy", timedelta(seconds=61), 60.0)),
    (_error(status=429, retry_after="Wed, 02 Dec 2026 10:10:00 GMT"), 1, 1.0,
     AfterFailure(R, "retrying after: busy", timedelta(seconds=600), 60.0)),
    (_error(status=429, retry_after="garbage"), 1, 1.0,
     AfterFailure(R, "retrying after: busy", timedelta(seconds=30), 2.0)),
    # any other passing fault: no pause, but a Retry-After still moves the retry
    (_error(status=503, retry_after="600"), 1, 1.0, AfterFailure(R, "retrying after: busy", timedelta(seconds=600))),
    (_error(status=503, retry_after="5"), 2, 1.0, AfterFailure(R, "retrying after: busy", timedelta(seconds=60))),
    (_error(status=None), 1, 1.0, AfterFailure(R, "retrying after: busy", timedelta(seconds=30))),
    (_error(status=430), 1, 1.0, AfterFailure(R, "retrying after: busy", timedelta(seconds=30))),
])
def test_after_failure(error: ProviderError, attempts: int, spread: float, expected: AfterFailure) -> None:
    assert after_failure(error, attempts, 5, BASE, spread, NOW) == expected


def test_one_attempt_allowed_never_retries() -> None:
    assert after_failure(_error(), 1, 1, BASE, 1.0, NOW).status == TouchStatus.FAILED


def test_the_spread_covers_half_to_one_and_a_half() -> None:
    draws = [pacing.jitter() for _ in range(2000)]
    assert 0.5 <= min(draws) < 0.55 and 1.45 < max(draws) <= 1.5


@pytest.mark.parametrize(("attempt", "seconds"), [(0, 1.0), (1, 2.0), (2, 4.0), (3, 8.0), (4, 10.0), (9, 10.0)])
def test_giving_touches_back_backs_off_up_to_ten_seconds(attempt: int, seconds: float) -> None:
    assert pacing.release_backoff(attempt) == seconds


@pytest.mark.parametrize(("retry_after", "seconds"), [(None, 0.0), ("0", 0.0), ("1", 1.0), ("x", 0.0)])
def test_with_no_backoff_the_retry_after_alone_sets_the_delay(retry_after: str | None, seconds: float) -> None:
    decision = after_failure(_error(retry_after=retry_after), 1, 5, timedelta(0), 1.0, NOW)
    assert decision.delay == timedelta(seconds=seconds)
