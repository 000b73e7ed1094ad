"""Evidence -> buying stage. Pure: a buyer is at the furthest stage whose `reached_by` they met,
and a stage once reached is kept (evidence is never taken back)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from outreach.ruleset import Condition, Ruleset


@dataclass(frozen=True)
class Advance:
    stage: str
    condition: Condition
    at: datetime  # when the condition was met: the moment of its last needed event


def condition_met(cond: Condition, events: Iterable[tuple[str, datetime]]) -> datetime | None:
    """The time `cond` was first met by these (type, time) events, or None."""
    times = sorted(t for kind, t in events if kind == cond.event)
    if len(times) < cond.count:
        return None
    if cond.within is None:
        return times[cond.count - 1]
    for i in range(cond.count - 1, len(times)):
        if times[i] - times[i - cond.count + 1] <= cond.within:
            return times[i]
    return None


def relevant_events(rules: Ruleset) -> set[str]:
    return {c.event for s in rules.stages for c in s.reached_by}


def next_stage(rules: Ruleset, current: str, events: list[tuple[str, datetime]]) -> Advance | None:
    """The furthest stage beyond `current` that the events prove, with the condition that proved it."""
    rank = rules.stage_rank(current)
    for stage in reversed(rules.stages[rank + 1:]):
        met = [(at, cond) for cond in stage.reached_by if (at := condition_met(cond, events)) is not None]
        if met:
            at, cond = min(met, key=lambda m: m[0])
            return Advance(stage.id, cond, at)
    return None
