"""The statistics of experiments, pure: intervals for a rate, and a verdict that stays valid when people
look every day.

The verdict compares variants with an always-valid confidence sequence for the difference of two
proportions (the normal-mixture sequential probability ratio test of Johari, Pekelis and Walsh,
"Always Valid Inference", 2017): with V the variance of the observed difference and a mixture N(0, TAU^2)
over the true difference, the interval

    difference +- sqrt(2 V (V + TAU^2) / TAU^2 * (log(1/alpha) + log((V + TAU^2) / V) / 2))

covers the true difference at every sample size at once with probability 1 - alpha, so looking after
every day's data (and stopping when it excludes 0) keeps the false-winner rate at alpha. A variant wins
only when it beats every other variant (alpha split over those comparisons) and every variant has its
minimum sample."""

from __future__ import annotations

import math
from dataclasses import dataclass

ALPHA = 0.05
# The mixture's scale: the size of difference in rates the test is most sensitive to (a few points,
# typical of content effects on stage advances and replies).
TAU = 0.03
Z95 = 1.959963984540054


@dataclass(frozen=True)
class Arm:
    """One variant's contacts and successes."""

    name: str
    n: int
    successes: int

    @property
    def rate(self) -> float | None:
        return self.successes / self.n if self.n else None


@dataclass(frozen=True)
class Verdict:
    kind: str  # too_early | no_difference | winner
    winner: str | None = None
    # for a winner, the smallest lower bound of its lead over another variant (rate points)
    lead: float | None = None

    @property
    def code(self) -> str:
        return f"winner:{self.winner}" if self.kind == "winner" else self.kind


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float | None, float | None]:
    """The Wilson 95% interval of a rate (fixed-sample; for display of one variant's rate)."""
    if n <= 0:
        return None, None
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def _variance(arm: Arm) -> float:
    # (s+1)/(n+2): a rate of 0 or 1 in a small sample must not make the difference look certain
    p = (arm.successes + 1) / (arm.n + 2)
    return p * (1 - p) / max(arm.n, 1)


def difference(a: Arm, b: Arm, alpha: float = ALPHA, tau: float = TAU) -> tuple[float, float, float]:
    """(rate of b - rate of a, low, high): the always-valid (1 - alpha) confidence sequence."""
    diff = (b.rate or 0.0) - (a.rate or 0.0)
    if a.n == 0 or b.n == 0:
        return diff, -1.0, 1.0
    v = _variance(a) + _variance(b)
    t2 = tau * tau
    half = math.sqrt(2 * v * (v + t2) / t2 * (math.log(1 / alpha) + 0.5 * math.log((v + t2) / v)))
    return diff, max(-1.0, diff - half), min(1.0, diff + half)


def verdict(arms: list[Arm], min_sample: int, alpha: float = ALPHA) -> Verdict:
    """too_early until every variant has `min_sample` contacts; then the variant whose lead over every
    other excludes 0 (alpha shared by the comparisons), else no_difference (so far)."""
    if len(arms) < 2 or any(a.n < min_sample for a in arms):
        return Verdict("too_early")
    each = alpha / (len(arms) - 1)
    for arm in sorted(arms, key=lambda a: -(a.rate or 0.0)):
        lows = [difference(other, arm, each)[1] for other in arms if other is not arm]
        if min(lows) > 0:
            return Verdict("winner", arm.name, min(lows))
        break  # only the best observed rate can beat all the others
    return Verdict("no_difference")


def clearly_worse(arms: list[Arm], alpha: float = ALPHA) -> set[str]:
    """The variants the best one beats beyond doubt: adaptive allocation stops sending them."""
    ranked = sorted((a for a in arms if a.n), key=lambda a: -(a.rate or 0.0))
    if len(ranked) < 2:
        return set()
    best = ranked[0]
    each = alpha / (len(arms) - 1)
    return {a.name for a in ranked[1:] if difference(a, best, each)[1] > 0}


def words(v: Verdict) -> str:
    """The verdict as a marketer reads it."""
    if v.kind == "too_early":
        return "Not enough data yet: every variant needs its minimum sample of contacts whose window has ended"
    if v.kind == "no_difference":
        return "No difference shown so far"
    lead = f"{100 * (v.lead or 0):.1f}" if v.lead is not None else "?"
    return f"{v.winner} is better: ahead of every other variant by at least {lead} points (95% sure)"
