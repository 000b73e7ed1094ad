"""Content in the simulated market: which variant moves which buyer, and how experiments judge them.

A fast path of its own (no database): the question is the choice of content and the statistics of
the verdict, which the engine computes with the same functions (outreach.experiments.assign and
.stats), so thousands of runs take seconds. Buyers arrive uniformly over the weeks (as in
outreach.simulator.market) with one of its four personas and a title that names the persona with
p=0.7 (else one of the four at random). Each content step (aware, interested, evaluating) touches a
buyer once on entering the stage; the chosen variant's hidden effect, which depends on the persona and
the stage, is the probability that the buyer advances to the next stage within 14 days (at a delay
drawn uniformly from 1 to 14 days). A buyer in the holdout would advance with the baseline alone.

Variants per stage (EFFECTS): one best for the technical evaluator (IT Director), one for the economic
buyer (VP Finance), a middling one, and an open-bait whose subject line is opened by most buyers and
which advances nobody beyond the baseline."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from outreach.experiments.assign import adaptive_choice, fixed_variant, unit
from outreach.experiments.stats import Arm, clearly_worse, verdict
from outreach.ruleset import Experiment
from outreach.simulator.market import TITLES, MarketSpec

STAGES = ("aware", "interested", "evaluating")  # each has a content step; evaluating leads to deciding
BASELINE = 0.03  # the chance of advancing within 14 days with no touch at all
OPEN_BAIT = "open-bait"
P_OPEN = {OPEN_BAIT: 0.8}  # opened by most (the rest: 0.4); opens are never a metric
# stage -> variant -> probability of advancing within 14 days, per persona (the order of TITLES:
# VP Finance (economic buyer), Head of Operations, IT Director (technical evaluator), Procurement)
EFFECTS: dict[str, dict[str, tuple[float, float, float, float]]] = {
    "aware": {"case-study": (0.20, 0.22, 0.16, 0.20), "roi": (0.34, 0.20, 0.08, 0.24),
              "tech-deep-dive": (0.08, 0.16, 0.36, 0.10), OPEN_BAIT: (BASELINE,) * 4},
    "interested": {"webinar": (0.18, 0.20, 0.18, 0.16), "business-case": (0.32, 0.18, 0.08, 0.26),
                   "architecture": (0.08, 0.18, 0.34, 0.08), OPEN_BAIT: (BASELINE,) * 4},
    "evaluating": {"customer-story": (0.16, 0.16, 0.14, 0.18), "pricing-guide": (0.30, 0.14, 0.08, 0.28),
                   "security-review": (0.08, 0.16, 0.30, 0.10), OPEN_BAIT: (BASELINE,) * 4},
}
WITHIN_DAYS = 14
POLICIES = ("adaptive", "uniform", "oracle")
MIN_SAMPLE = 100


@dataclass
class Buyer:
    persona: int
    title: int
    arrival: int  # the day


def buyers(spec: MarketSpec, seed: int) -> list[Buyer]:
    rng = random.Random(seed)
    days = spec.weeks * 7
    out = []
    for b in range(spec.buyers):
        persona = b % len(TITLES)
        title = persona if rng.random() < spec.typical_title else rng.randrange(len(TITLES))
        out.append(Buyer(persona, title, rng.randrange(days)))
    return out


Chooser = Callable[[str, Buyer, int], str]


@dataclass
class _Tally:
    """What the adaptive policy has seen: per (stage, title) and per stage, contacts and successes."""

    n: dict[tuple[str, int | None], dict[str, int]] = field(default_factory=dict)
    s: dict[tuple[str, int | None], dict[str, int]] = field(default_factory=dict)

    def arms(self, stage: str, title: int | None) -> list[Arm]:
        n, s = self.n.get((stage, title), {}), self.s.get((stage, title), {})
        return [Arm(v, n.get(v, 0), s.get(v, 0)) for v in EFFECTS[stage]]

    def add(self, table: dict[tuple[str, int | None], dict[str, int]], stage: str, title: int, variant: str) -> None:
        for key in ((stage, title), (stage, None)):
            row = table.setdefault(key, {})
            row[variant] = row.get(variant, 0) + 1


def run_market(policy: str, spec: MarketSpec, seed: int) -> dict[str, Any]:
    """One policy over the market: stage advances in weeks 5-8 per 100 buyers, and the cost per choice."""
    market = buyers(spec, seed)
    rng = random.Random(seed * 7919 + POLICIES.index(policy))
    tally = _Tally()
    days = spec.weeks * 7
    arrivals: dict[int, list[int]] = {}
    for i, b in enumerate(market):
        arrivals.setdefault(b.arrival, []).append(i)
    advances_at: dict[int, list[tuple[int, str, str]]] = {}  # day -> (buyer, stage left, variant)
    late = 0
    choose_seconds, choices = 0.0, 0

    def choose(stage: str, b: Buyer) -> str:
        if policy == "uniform":
            return rng.choice(list(EFFECTS[stage]))
        if policy == "oracle":
            return max(EFFECTS[stage], key=lambda v: EFFECTS[stage][v][b.persona])
        arms = tally.arms(stage, b.title)
        if sum(a.n for a in arms) < 20 * len(arms):  # a new segment learns from the stage as a whole
            arms = tally.arms(stage, None)
        return adaptive_choice(arms, rng)

    def touch(i: int, stage: str, day: int) -> None:
        nonlocal choose_seconds, choices
        b = market[i]
        started = time.perf_counter()
        variant = choose(stage, b)
        choose_seconds += time.perf_counter() - started
        choices += 1
        tally.add(tally.n, stage, b.title, variant)
        if rng.random() < EFFECTS[stage][variant][b.persona]:
            advances_at.setdefault(day + rng.randint(1, WITHIN_DAYS), []).append((i, stage, variant))

    for day in range(days):
        for i, stage, variant in advances_at.pop(day, []):
            tally.add(tally.s, stage, market[i].title, variant)  # seen as it happens
            if day >= 4 * 7:
                late += 1
            nxt = STAGES.index(stage) + 1
            if nxt < len(STAGES):
                touch(i, STAGES[nxt], day)
        for i in arrivals.get(day, []):
            touch(i, STAGES[0], day)
    # the engine's verdict on each step at the end, as a marketer would read it before promoting
    winners = {stage: verdict(tally.arms(stage, None), MIN_SAMPLE).winner for stage in STAGES}
    dropped = {stage: sorted(clearly_worse(tally.arms(stage, None))) for stage in STAGES}
    return {"stage_advances_weeks_5_8": round(100 * late / max(spec.buyers, 1), 2),
            "choice_microseconds": round(1e6 * choose_seconds / max(choices, 1), 2), "winners": winners,
            "clearly_worse": dropped}


def compare(spec: MarketSpec, seeds: tuple[int, ...]) -> dict[str, Any]:
    """Adaptive, uniform and oracle content choice over the same markets, the mean over the seeds."""
    out: dict[str, Any] = {}
    for policy in POLICIES:
        runs = [run_market(policy, spec, s) for s in seeds]
        out[policy] = {key: round(sum(r[key] for r in runs) / len(runs), 2) for key in runs[0]
                       if key not in ("winners", "clearly_worse")}
        out[policy]["winners"] = [r["winners"] for r in runs]
        out[policy]["clearly_worse"] = [r["clearly_worse"] for r in runs]
    out["open_bait_promoted"] = any(OPEN_BAIT in w.values() for p in ("adaptive", "uniform") for w in out[p]["winners"])
    low, high, ours = (out[p]["stage_advances_weeks_5_8"] for p in ("uniform", "oracle", "adaptive"))
    out["gap_closed"] = round((ours - low) / (high - low), 3) if high != low else None
    out["seeds"] = list(seeds)
    return out


def experiment(kind: str, lift: float, runs: int, spec: MarketSpec) -> dict[str, Any]:
    """A two-variant experiment on the aware step, `runs` times: A is the case study; B the same
    (aa) or with its effect raised by `lift` (lift). Fixed 50/50 split by the engine's hash, the
    engine's verdict after every simulated day (at least MIN_SAMPLE contacts per variant whose 14 days
    have passed); the experiment stops at the first winner. Counts the runs with a winner, and those
    whose winner is wrong (any winner in an A/A test; A when B is better)."""
    lift = 0.0 if kind == "aa" else lift
    base = EFFECTS["aware"]["case-study"]
    days = spec.weeks * 7
    called = wrong = 0
    for r in range(runs):
        exp = Experiment(id=f"{kind}-{r}", seed=spec.seed)
        market = buyers(spec, spec.seed * 1_000_003 + r)
        rng = random.Random(unit("outcomes", spec.seed, r))
        by_day: dict[int, list[tuple[str, int | None]]] = {}  # arrival day -> (variant, day it advanced)
        for i, b in enumerate(market):
            variant = fixed_variant(exp, ("A", "B"), i)
            p = base[b.persona] * (1 + lift if variant == "B" else 1)
            advanced = b.arrival + rng.randint(1, WITHIN_DAYS) if rng.random() < p else None
            by_day.setdefault(b.arrival, []).append((variant, advanced))
        n = {"A": 0, "B": 0}
        matured = {"A": 0, "B": 0}
        succeeded: dict[int, dict[str, int]] = {}
        s = {"A": 0, "B": 0}
        winner = None
        for day in range(days):
            for variant, advanced in by_day.get(day, []):
                n[variant] += 1
                if advanced is not None:
                    succeeded.setdefault(advanced, {"A": 0, "B": 0})[variant] += 1
            for variant, _ in by_day.get(day - WITHIN_DAYS, []):
                matured[variant] += 1
            for variant, k in succeeded.pop(day, {}).items():
                s[variant] += k
            if min(matured.values()) < MIN_SAMPLE:
                continue
            v = verdict([Arm("A", n["A"], s["A"]), Arm("B", n["B"], s["B"])], MIN_SAMPLE)
            if v.winner:
                winner = v.winner
                break
        called += winner is not None
        wrong += winner is not None and (kind == "aa" or winner == "A")
    return {"runs": runs, "lift": lift, "winner_called": called, "wrong_winner_called": wrong,
            "winner_called_share": round(called / runs, 4) if runs else None,
            "wrong_winner_called_share": round(wrong / runs, 4) if runs else None,
            "buyers": spec.buyers, "weeks": spec.weeks}


def experiment_text(found: dict[str, Any], kind: str) -> str:
    what = "two identical variants (A/A)" if kind == "aa" else f"B {found['lift']:.0%} better than A"
    return (f"{found['runs']} runs of an experiment with {what}, {found['buyers']} buyers over {found['weeks']} "
            f"weeks, the verdict checked daily:\n  a winner was called in {found['winner_called']} "
            f"({found['winner_called_share']:.1%}); the wrong one in {found['wrong_winner_called']} "
            f"({found['wrong_winner_called_share']:.1%})")


def content_text(found: dict[str, Any]) -> str:
    line = ", ".join(f"{p} {found[p]['stage_advances_weeks_5_8']}" for p in POLICIES)
    closed = f"; adaptive closes {found['gap_closed']:.0%} of the uniform -> oracle gap" \
        if found.get("gap_closed") is not None else ""
    return f"content choice, stage advances in weeks 5-8 per 100 buyers: {line}{closed}"
