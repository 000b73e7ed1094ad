"""outreach.testing: the recording provider and the fixed clock that users' tests import."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from channels.base import OutgoingMessage, Provider, ProviderError
from outreach.config import Policy
from outreach.policy import decide
from outreach.testing import FixedClock, RecordingProvider, provider_error


def email(touch_id: int = 1, to: str = "ada@analytical.example") -> OutgoingMessage:
    return OutgoingMessage(touch_id=touch_id, channel="email", to_email=to, subject="Hi", text="Hello")


def test_records_every_send_with_ids_in_order() -> None:
    provider = RecordingProvider()
    assert isinstance(provider, Provider)
    results = [provider.send(email(i)) for i in (7, 8)]
    assert [(r.provider, r.provider_message_id) for r in results] == [("recording", "recording-1"),
                                                                       ("recording", "recording-2")]
    assert [m.touch_id for m in provider.sent] == [7, 8] and provider.requests == provider.sent
    assert provider.results == results
    sms = OutgoingMessage(touch_id=9, channel="sms", to_phone="+14155550101", text="Hi")
    assert RecordingProvider("sms-box").send(sms).provider_message_id == "sms-box-1"


@pytest.mark.parametrize(("kind", "retryable", "status", "opted_out", "maybe_sent"), [
    ("retryable", True, 503, False, False),
    ("rate_limited", True, 429, False, False),
    ("permanent", False, 400, False, False),
    ("opted_out", False, 400, True, False),
    ("uncertain", True, None, False, True),
])
def test_fails_the_next_sends_as_asked(kind: str, retryable: bool, status: int | None, opted_out: bool,
                                       maybe_sent: bool) -> None:
    provider = RecordingProvider()
    provider.fail_next(2, kind, reason="no luck")  # type: ignore[arg-type]
    for i in (1, 2):
        with pytest.raises(ProviderError) as err:
            provider.send(email(i))
        assert (err.value.reason, err.value.retryable, err.value.status) == ("no luck", retryable, status)
        assert (err.value.opted_out, err.value.maybe_sent) == (opted_out, maybe_sent)
    assert provider.pending_failures == 0
    assert provider.send(email(3)).provider_message_id == "recording-1"  # failures take no id
    assert [m.touch_id for m in provider.requests] == [1, 2, 3] and [m.touch_id for m in provider.sent] == [3]
    assert [m.touch_id for m, _ in provider.failures] == [1, 2]


def test_failures_queue_in_order_and_reset_forgets() -> None:
    provider = RecordingProvider()
    provider.fail_next(1, "permanent")
    provider.fail_next(1, "opted_out")
    with pytest.raises(ProviderError) as first:
        provider.send(email())
    with pytest.raises(ProviderError) as second:
        provider.send(email())
    assert not first.value.opted_out and second.value.opted_out
    provider.send(email(2, "grace@cobol.example"))
    provider.send(email(2, "grace@cobol.example"))
    assert len(provider.sent_to("grace@cobol.example")) == 2 and len(provider.for_touch(1)) == 2
    provider.fail_next(3)
    provider.reset()
    assert (provider.requests, provider.sent, provider.failures, provider.pending_failures) == ([], [], [], 0)
    assert provider.as_providers() == {"email": provider, "sms": provider, "meeting": provider}
    with pytest.raises(ValueError):
        provider.fail_next(-1)
    with pytest.raises(ValueError):
        provider_error("flaky")  # type: ignore[arg-type]


def test_ids_stay_unique_across_threads() -> None:
    provider = RecordingProvider()
    provider.fail_next(10)
    ids: list[str] = []

    def send(n: int) -> None:
        for i in range(50):
            try:
                ids.append(provider.send(email(n * 100 + i)).provider_message_id)
            except ProviderError:
                pass

    threads = [threading.Thread(target=send, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(provider.requests) == 400 and len(provider.failures) == 10
    assert sorted(ids) == sorted(f"recording-{i}" for i in range(1, 391))


def test_fixed_clock_stands_still_until_moved() -> None:
    clock = FixedClock("2026-03-02 15:00")
    assert clock() == clock.now == datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    assert clock() == clock()
    assert clock.advance(timedelta(hours=2)) == clock() == datetime(2026, 3, 2, 17, 0, tzinfo=UTC)
    assert clock.set("2026-03-09 08:30+01:00") == datetime(2026, 3, 9, 7, 30, tzinfo=UTC)
    berlin = datetime(2026, 3, 2, 9, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    assert FixedClock(berlin)() is berlin
    assert repr(FixedClock("2026-03-02 15:00")) == "FixedClock('2026-03-02T15:00:00+00:00')"
    with pytest.raises(ValueError, match="aware"):
        FixedClock(datetime(2026, 3, 2, 15, 0))
    with pytest.raises(ValueError, match="backwards"):
        clock.advance(timedelta(seconds=-1))
    assert FixedClock(datetime(2026, 3, 2, tzinfo=timezone(timedelta(hours=-5))))().utcoffset() == timedelta(hours=-5)


def test_fixed_clock_goes_where_outreach_takes_now() -> None:
    clock = FixedClock("2026-03-06 18:30")  # a Friday, after hours in UTC
    policy = Policy()
    assert not decide(clock(), ZoneInfo("UTC"), "email", [], policy).send
    clock.advance(timedelta(days=2, hours=15))  # Monday 09:30
    assert decide(clock(), ZoneInfo("UTC"), "email", [], policy).send
