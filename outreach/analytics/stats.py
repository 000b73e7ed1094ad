"""Pure arithmetic for honest figures: the Wilson interval of a rate, percentiles of a histogram."""

from __future__ import annotations

import math
from collections.abc import Iterable

Z95 = 1.959963984540054  # the normal quantile of a two-sided 95% interval


def wilson(successes: int, trials: int, z: float = Z95) -> tuple[float, float, float]:
    """(rate, low, high): the share and its Wilson score interval. Unlike rate +/- 2 standard errors it
    stays inside [0, 1] and is honest at 0/n and n/n and for small n. No trials: (0, 0, 1), knowing nothing."""
    if trials <= 0:
        return 0.0, 0.0, 1.0
    p = successes / trials
    z2 = z * z
    denom = 1 + z2 / trials
    centre = (p + z2 / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials)) / denom
    return p, max(0.0, centre - half), min(1.0, centre + half)


def percentile(histogram: Iterable[tuple[float, int]], q: float) -> float | None:
    """The q-quantile (0..1) of values given as (value, how many), interpolating linearly between the
    two nearest ranks (numpy's default). None for no values."""
    items = sorted((v, n) for v, n in histogram if n > 0)
    total = sum(n for _, n in items)
    if not total:
        return None
    pos = q * (total - 1)
    lo_rank, frac = math.floor(pos), pos - math.floor(pos)

    def at_rank(rank: int) -> float:
        seen = 0
        for value, n in items:
            seen += n
            if rank < seen:
                return value
        return items[-1][0]

    low = at_rank(lo_rank)
    return low if frac == 0 else low + (at_rank(lo_rank + 1) - low) * frac
