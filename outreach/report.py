"""Dashboards' numbers: the funnel, stage velocity, and response by channel and interaction type.
All group-by queries: the cost does not grow with a loop over contacts."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import distinct, func, select
from sqlmodel import Session, col

from outreach.evidence import RESPONSES
from outreach.models import Contact, Evidence, StageChange, Touch, TouchStatus
from outreach.ruleset import Ruleset


def report(session: Session, rules: Ruleset) -> dict[str, Any]:
    counts = dict(session.execute(select(col(Contact.stage), func.count()).group_by(col(Contact.stage))).all())
    funnel = []
    reached_at_least = 0
    for stage in reversed(rules.stage_ids):
        reached_at_least += counts.get(stage, 0)
        funnel.append({"stage": stage, "contacts": counts.get(stage, 0), "reached": reached_at_least})
    funnel.reverse()

    velocity = []
    rows = session.execute(select(col(StageChange.to_stage), func.count(), func.min(col(StageChange.at)),
                                  func.max(col(StageChange.at))).group_by(col(StageChange.to_stage))).all()
    durations: dict[str, list[float]] = defaultdict(list)
    # days from the previous stage change (or the contact's creation) to this one
    prev = select(col(StageChange.contact_id), col(StageChange.to_stage), col(StageChange.at),
                  col(Contact.created_at)).join(Contact, col(Contact.id) == col(StageChange.contact_id)).order_by(
        col(StageChange.contact_id), col(StageChange.at))
    last: dict[int, Any] = {}
    for cid, to_stage, at, created in session.execute(prev.execution_options(yield_per=5000)):
        start = last.get(cid, created)
        durations[to_stage].append(max((at - start).total_seconds(), 0) / 86400)
        last[cid] = at
    for to_stage, n, _first, _last in rows:
        days = durations.get(to_stage) or [0.0]
        velocity.append({"stage": to_stage, "entered": n, "avg_days_to_reach": round(sum(days) / len(days), 2)})

    sent = session.execute(select(col(Touch.channel), col(Touch.interaction), func.count()).where(
        col(Touch.status) == TouchStatus.SENT).group_by(col(Touch.channel), col(Touch.interaction))).all()
    responded = dict(((ch, it), n) for ch, it, n in session.execute(
        select(col(Evidence.channel), col(Evidence.interaction), func.count(distinct(col(Evidence.touch_id)))).where(
            col(Evidence.type).in_(RESPONSES), col(Evidence.touch_id).is_not(None))
        .group_by(col(Evidence.channel), col(Evidence.interaction))).all())
    response = [{"channel": ch, "interaction": it, "sent": n, "responded": responded.get((ch, it), 0),
                 "response_rate": round(responded.get((ch, it), 0) / n, 4) if n else 0.0}
                for ch, it, n in sorted(sent, key=lambda r: (r[0] or "", r[1] or ""))]
    statuses = dict(session.execute(select(col(Touch.status), func.count()).group_by(col(Touch.status))).all())
    return {"funnel": funnel, "velocity": velocity, "response": response, "touches": statuses}
