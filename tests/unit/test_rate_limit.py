"""Per-sender pacing: Twilio long codes take about one message a second; a 429 slows the sender."""

from __future__ import annotations

import time
from typing import Any

import pytest

from outreach import pacing
from outreach.pacing import RateLimiter


class FakeClock:
    """Stands in for the `time` module inside outreach.pacing only: patching time.monotonic and
    time.sleep themselves also fed the fake every sleep of threads an earlier test left running
    (mutmut's clean run saw 424.6 s on the clock instead of 102)."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def __getattr__(self, name: str) -> Any:  # anything else the module uses is the real thing
        return getattr(time, name)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(pacing, "time", fake)
    return fake


def test_one_message_a_second_for_a_long_code(clock: FakeClock) -> None:
    limiter = RateLimiter(1.0)
    for _ in range(5):
        limiter.wait()
    assert clock.now == pytest.approx(104.0)  # the first goes at once, then one a second


def test_a_short_code_goes_faster(clock: FakeClock) -> None:
    limiter = RateLimiter(100.0)
    for _ in range(101):
        limiter.wait()
    assert clock.now == pytest.approx(101.0)


def test_a_429_pushes_the_next_send_back(clock: FakeClock) -> None:
    limiter = RateLimiter(10.0)
    limiter.wait()
    limiter.slow_down(2.0)
    limiter.wait()
    assert clock.now == pytest.approx(102.0)


def test_a_turn_that_is_free_now_does_not_sleep(clock: FakeClock) -> None:
    RateLimiter(1.0).wait()
    assert clock.slept == [] and clock.now == 100.0


def test_a_shorter_slow_down_does_not_bring_the_next_turn_forward(clock: FakeClock) -> None:
    limiter = RateLimiter(0.25)  # one turn every 4 s
    limiter.wait()
    limiter.slow_down(1.0)
    limiter.wait()
    assert clock.now == pytest.approx(104.0)
