"""The `experiment.concluded` outbound webhook: told once when a marketer stops an experiment, and once
for each verdict it first reaches (`no_difference`, `winner:CONTENT`), in the transaction that makes
the change (the stop) or notices it (the scheduled verdict check). `ExperimentNews` remembers what was
told, so checking every few minutes never tells it twice."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from outreach.config import OutboundWebhook
from outreach.experiments.results import as_json, results
from outreach.kinds import OutboundEvent
from outreach.models import ExperimentNews, ExperimentStop
from outreach.outbound import Outgoing, enqueue
from outreach.ruleset import Ruleset

CONCLUSIVE = ("no_difference", "winner")


def _told(session: Session, exp_ids: Sequence[str]) -> set[tuple[str, str]]:
    if not exp_ids:
        return set()
    rows = session.execute(select(col(ExperimentNews.experiment_id), col(ExperimentNews.news)).where(
        col(ExperimentNews.experiment_id).in_(list(exp_ids)))).all()
    return {(r[0], r[1]) for r in rows}


def _event(figures: dict[str, Any], reason: str, now: datetime, stop: ExperimentStop | None) -> Outgoing:
    data: dict[str, Any] = {"experiment": figures, "verdict": figures["verdict"], "reason": reason,
                            "promoted": figures.get("promoted")}
    if stop is not None:
        data["stopped_by"], data["stopped_at"] = stop.stopped_by, stop.stopped_at
    return Outgoing(OutboundEvent.EXPERIMENT_CONCLUDED, None, data, now)


def _wanted(receivers: Sequence[OutboundWebhook]) -> bool:
    return any(OutboundEvent.EXPERIMENT_CONCLUDED in r.events for r in receivers)


def announce_stop(session: Session, rules: Ruleset, receivers: Sequence[OutboundWebhook], stop: ExperimentStop,
                  now: datetime) -> int:
    """Queue the news of `stop` (already flushed in `session`) with the figures at the stop; once per
    experiment and promoted variant. Returns the deliveries queued."""
    if not _wanted(receivers):
        return 0
    news = f"stopped:{stop.promoted or ''}"
    if (stop.id, news) in _told(session, [stop.id]):
        return 0
    res = next((r for r in results(session, rules, now) if r.declared.id == stop.id), None)
    if res is None:
        return 0
    session.add(ExperimentNews(experiment_id=stop.id, news=news, at=now))
    return enqueue(session, receivers, [_event(as_json(res), "stopped", now, stop)])


def announce_verdicts(session: Session, rules: Ruleset, receivers: Sequence[OutboundWebhook],
                      now: datetime) -> int:
    """Queue the news of every running experiment whose verdict is conclusive and not yet told.
    Returns the deliveries queued (the scheduler's verdict check calls it)."""
    if not _wanted(receivers):
        return 0
    figures = [as_json(r) for r in results(session, rules, now) if r.status == "running"]
    told = _told(session, [f["id"] for f in figures])
    fresh = [f for f in figures if f["verdict"].split(":")[0] in CONCLUSIVE and (f["id"], f["verdict"]) not in told]
    for f in fresh:
        session.add(ExperimentNews(experiment_id=f["id"], news=f["verdict"], at=now))
    return enqueue(session, receivers, [_event(f, "verdict", now, None) for f in fresh])
