"""The report's arithmetic and its options: Wilson intervals against published values, percentiles of a
histogram, the period from --since/--until, rates said to be too few to read."""

from __future__ import annotations

from datetime import date

import pytest

from outreach.analytics.model import period
from outreach.analytics.stats import percentile, wilson
from outreach.analytics.text import rate_text, rule_label
from outreach.errors import InvalidInput


@pytest.mark.parametrize(("k", "n", "low", "high"), [
    (0, 10, 0.0, 0.2775),  # Newcombe (1998), Statistics in Medicine 17, table I
    (5, 10, 0.2366, 0.7634),
    (10, 10, 0.7225, 1.0),
    (81, 263, 0.2553, 0.3662),
    (1, 1, 0.2065, 1.0),
])
def test_wilson_interval(k: int, n: int, low: float, high: float) -> None:
    rate, lo, hi = wilson(k, n)
    assert rate == pytest.approx(k / n)
    assert (lo, hi) == (pytest.approx(low, abs=1e-4), pytest.approx(high, abs=1e-4))


def test_no_cases_know_nothing() -> None:
    assert wilson(0, 0) == (0.0, 0.0, 1.0)


@pytest.mark.parametrize(("hist", "q", "expected"), [
    ([(1.0, 1), (2.0, 1), (3.0, 1), (4.0, 1)], 0.5, 2.5),
    ([(1.0, 1), (2.0, 1), (3.0, 1), (4.0, 1)], 0.8, 3.4),
    ([(5.0, 3)], 0.8, 5.0),
    ([(2.0, 1), (1.0, 3)], 0.5, 1.0),  # 1 1 1 2: unsorted input, counts
    ([(1.0, 0)], 0.5, None),
])
def test_percentile_of_a_histogram(hist: list[tuple[float, int]], q: float, expected: float | None) -> None:
    assert percentile(hist, q) == (None if expected is None else pytest.approx(expected))


def test_period_defaults_and_errors() -> None:
    today = date(2026, 12, 2)
    assert period(None, None, today) == (date(2026, 11, 3), today)
    assert period("2026-11-01", "2026-11-10", today) == (date(2026, 11, 1), date(2026, 11, 10))
    with pytest.raises(InvalidInput, match="--since '11/01/2026' is not a date"):
        period("11/01/2026", None, today)
    with pytest.raises(InvalidInput, match="after --until"):
        period("2026-11-10", "2026-11-01", today)
    with pytest.raises(InvalidInput, match="at most"):
        period("2000-01-01", None, today)


def test_a_rate_from_too_few_cases_says_so() -> None:
    assert rate_text(5, 19, 0.1, 0.5, 20) == "too few to read (5 of 19)"
    assert rate_text(5, 20, 0.1119, 0.4687, 20) == "25.0% (5 of 20, 95%: 11%-47%)"


def test_rules_in_words() -> None:
    assert rule_label("playbook:aware") == "aware playbook"
    assert rule_label("trigger:pricing-follow-up") == "trigger pricing-follow-up"
