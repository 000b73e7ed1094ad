"""A provider's passing fault through the dispatcher: when the touch comes back (the backoff, or the
provider's Retry-After when it asks for longer), and that the touch is retried then, not before; and
the stop flag, which lets the batch in hand finish and claims no other."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from channels.base import OutgoingMessage, ProviderError, SendResult
from outreach.engine import Engine
from outreach.project import Project
from outreach.testing import FixedClock, RecordingProvider
from tests.integration.test_loop import MONDAY, load, touches
from tests.support import make_project


class _Refusing(RecordingProvider):
    """Refuses its first send with the given error, then records like RecordingProvider."""

    def __init__(self, error: ProviderError) -> None:
        super().__init__()
        self.error: ProviderError | None = error

    def send(self, message: OutgoingMessage) -> SendResult:
        error, self.error = self.error, None
        if error is not None:
            self.requests.append(message)
            self.failures.append((message, error))
            raise error
        return super().send(message)


@pytest.mark.parametrize(("status", "retry_after", "low", "high"), [
    (429, None, 15, 45),  # the first backoff: 30 s, spread by half either way
    (429, "600", 600, 600),  # the provider asks for ten minutes: not sooner
    (503, "Mon, 02 Mar 2026 15:20:00 GMT", 1200, 1200),  # an HTTP-date, 20 minutes on
    (503, "86400", 3600, 3600),  # a day: an hour at most
])
def test_a_retry_waits_for_the_backoff_or_the_retry_after(engine: Engine, status: int, retry_after: str | None,
                                                          low: int, high: int) -> None:
    provider = _Refusing(ProviderError("slow down", retryable=True, status=status, retry_after=retry_after))
    engine = Engine(engine.project, providers=provider.as_providers())
    clock = FixedClock(MONDAY)
    load(engine)
    engine.plan(clock())
    assert engine.dispatch(clock()).retried == 1
    ((message, _),) = provider.failures
    (touch,) = touches(engine, id=message.touch_id)
    assert touch.status == "approved" and touch.reason == "retrying after: slow down"
    assert touch.due_at is not None
    wait = (touch.due_at.replace(tzinfo=MONDAY.tzinfo) - MONDAY).total_seconds()
    assert low <= wait <= high
    clock.advance(timedelta(seconds=low - 1))
    engine.dispatch(clock())
    assert len(provider.for_touch(message.touch_id)) == 1  # not yet
    clock.advance(timedelta(seconds=high - low + 1))
    engine.dispatch(clock())
    assert len(provider.for_touch(message.touch_id)) == 2
    (touch,) = touches(engine, id=message.touch_id)
    assert touch.status == "sent"


def test_a_stop_during_a_batch_claims_no_further_batch(tmp_path: Path, database: str) -> None:
    provider = RecordingProvider()
    engine = Engine(Project.open(make_project(tmp_path / "p", database, **{"dispatch.batch_size": 1})),
                    providers=provider.as_providers())
    load(engine)
    engine.plan(MONDAY)
    dispatcher = engine.dispatcher()
    send = provider.send

    def send_then_stop(message: OutgoingMessage) -> SendResult:
        dispatcher.stop.set()  # a shutdown asked for while this batch is being sent
        return send(message)

    provider.send = send_then_stop  # type: ignore[method-assign]
    result = dispatcher.run_once(MONDAY)
    # Ada's touch (Los Angeles, still asleep) is the first batch and waits; the second is sent, and
    # stops the run: the batch in hand finishes, no other is claimed
    assert (result.claimed, result.sent, result.waiting) == (2, 1, 1)
    assert len(touches(engine, status="sent")) == 1 and len(touches(engine, status="approved")) == 5
