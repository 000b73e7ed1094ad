"""Each experiment's figures from the database, in one grouped query per experiment: per variant (and
the holdout) the contacts assigned, the touches sent and the contacts who succeeded within the window."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, distinct, exists, func, select
from sqlmodel import Session, col

from outreach.experiments.stats import Arm, Verdict, difference, verdict, wilson, words
from outreach.models import Contact, Evidence, ExperimentStop, StageChange, Touch, TouchStatus, utcnow
from outreach.ruleset import Ruleset

HOLDOUT = "holdout"
# the buyer's own next step; opens and clicks never count (an open-bait subject would win on them)
RESPONSE_EVENTS = ("email.replied", "sms.replied", "meeting.accepted")
SEGMENT_COLUMNS = {"title": Contact.title, "company": Contact.company, "owner": Contact.owner,
                   "timezone": Contact.timezone}


@dataclass(frozen=True)
class Declared:
    """An experiment as the rules declare it (or as it was when stopped)."""

    id: str
    stage: str
    step: str
    metric: str
    within: timedelta
    allocation: str
    variants: tuple[str, ...]
    min_sample: int = 100
    segment_by: str | None = None

    @property
    def rule(self) -> str:
        return f"playbook:{self.stage}"


@dataclass
class Counts:
    contacts: int = 0
    touches: int = 0
    successes: int = 0
    matured: int = 0  # contacts whose window has ended (their outcome is final)


@dataclass
class Result:
    declared: Declared
    status: str  # running | stopped
    promoted: str | None
    counts: dict[str, Counts] = field(default_factory=dict)  # variant (or "holdout") -> counts

    def arms(self) -> list[Arm]:
        return [Arm(v, c.contacts, c.successes) for v in self.declared.variants
                for c in [self.counts.get(v, Counts())]]


def declared(rules: Ruleset) -> list[Declared]:
    return [Declared(st.experiment.id, stage, st.id, st.experiment.metric, st.experiment.within,
                     st.experiment.allocation, st.variants, st.experiment.min_sample, st.experiment.segment_by)
            for stage, steps in rules.playbooks.items() for st in steps if st.experiment and st.variants]


def stops(session: Session) -> dict[str, ExperimentStop]:
    return {s.id: s for s in session.execute(select(ExperimentStop)).scalars()}


def shifted(session: Session, column: Any, delta: timedelta) -> ColumnElement[Any]:
    """column + delta in SQL, on SQLite (text timestamps) and PostgreSQL (intervals) alike."""
    if session.get_bind().dialect.name == "sqlite":
        return func.strftime("%Y-%m-%d %H:%M:%f", column, f"+{int(delta.total_seconds())} seconds")
    result: ColumnElement[Any] = column + delta
    return result


def assigned_at(session: Session) -> ColumnElement[Any]:
    """When a touch's contact was assigned: its due time (due, not sent: the holdout is never sent, and
    both sides must start the clock alike), or its planning time when that is earlier (a cadence
    variant planned now, due days later: every variant's clock starts at the assignment)."""
    least = func.min if session.get_bind().dialect.name == "sqlite" else func.least
    result: ColumnElement[Any] = least(col(Touch.due_at), col(Touch.created_at))
    return result


def success(session: Session, exp: Declared) -> ColumnElement[bool]:
    """A touch's contact did the metric's thing within the window from its assignment."""
    start = assigned_at(session)
    end = shifted(session, start, exp.within)
    if exp.metric == "response":
        return exists().where(col(Evidence.contact_id) == col(Touch.contact_id),
                              col(Evidence.type).in_(RESPONSE_EVENTS),
                              col(Evidence.occurred_at) >= start, col(Evidence.occurred_at) < end)
    return exists().where(col(StageChange.contact_id) == col(Touch.contact_id),
                          col(StageChange.from_stage) == col(Touch.stage),
                          col(StageChange.at) >= start, col(StageChange.at) < end)


def counts(session: Session, exp: Declared, segment: bool = False,
           now: datetime | None = None) -> dict[tuple[str, str | None], Counts]:
    """(variant, segment value) -> counts, in one grouped query."""
    seg: Any = SEGMENT_COLUMNS[exp.segment_by] if segment and exp.segment_by in SEGMENT_COLUMNS else None
    ok = success(session, exp)
    query = select(col(Touch.variant), *([seg] if seg is not None else []),
                   func.count(distinct(col(Touch.contact_id))),
                   func.count(distinct(case((col(Touch.status) == TouchStatus.SENT, col(Touch.id))))),
                   func.count(distinct(case((ok, col(Touch.contact_id))))),
                   func.count(distinct(case((shifted(session, assigned_at(session), exp.within) <= (now or utcnow()),
                                             col(Touch.contact_id)))))
                   ).where(col(Touch.experiment_id) == exp.id)
    if seg is not None:
        query = query.join(Contact, and_(col(Contact.id) == col(Touch.contact_id)))
        query = query.group_by(col(Touch.variant), seg)
    else:
        query = query.group_by(col(Touch.variant))
    out: dict[tuple[str, str | None], Counts] = {}
    for row in session.execute(query).all():
        variant, key, rest = (row[0], row[1], row[2:]) if seg is not None else (row[0], None, row[1:])
        out[(variant, key)] = Counts(*(int(x) for x in rest))
    return out


def results(session: Session, rules: Ruleset, now: datetime | None = None) -> list[Result]:
    """Every experiment of the rules, and those stopped and since removed from them."""
    stopped = stops(session)
    exps = declared(rules)
    exps += [Declared(s.id, s.rule.removeprefix("playbook:"), s.step, s.metric, timedelta(seconds=s.within_seconds),
                      s.allocation, tuple(s.variants), s.min_sample)
             for s in stopped.values() if s.id not in {e.id for e in exps}]
    out = []
    for exp in exps:
        stop = stopped.get(exp.id)
        res = Result(exp, "stopped" if stop else "running", stop.promoted if stop else None)
        res.counts = {variant: c for (variant, _), c in counts(session, exp, now=now).items() if variant}
        out.append(res)
    return out


def _rate(c: Counts) -> float | None:
    return round(c.successes / c.contacts, 4) if c.contacts else None


def as_json(res: Result) -> dict[str, Any]:
    """SPEC section 11's shape, plus the verdict in words and each variant's lift over the control and
    over the holdout (always-valid 95% intervals, in rate points)."""
    exp = res.declared
    arms = res.arms()
    # no verdict before every variant has min_sample contacts whose window has ended
    matured = min((res.counts.get(a.name, Counts()).matured for a in arms), default=0)
    v = verdict(arms, exp.min_sample) if matured >= exp.min_sample else Verdict("too_early")
    hold = res.counts.get(HOLDOUT, Counts())
    hold_arm = Arm(HOLDOUT, hold.contacts, hold.successes)
    variants = []
    for arm in arms:
        c = res.counts.get(arm.name, Counts())
        low, high = wilson(c.successes, c.contacts)
        item: dict[str, Any] = {"content": arm.name, "contacts": c.contacts, "touches": c.touches,
                                "successes": c.successes, "rate": _rate(c), "matured": c.matured,
                                "low": None if low is None else round(low, 4),
                                "high": None if high is None else round(high, 4)}
        for name, base in (("vs_control", arms[0]), ("vs_holdout", hold_arm)):
            if base is arm or not base.n or not arm.n:
                item[name] = None
                continue
            d, lo, hi = difference(base, arm)
            item[name] = {"difference": round(d, 4), "low": round(lo, 4), "high": round(hi, 4)}
        variants.append(item)
    return {"id": exp.id, "rule": exp.rule, "step": exp.step, "metric": exp.metric, "allocation": exp.allocation,
            "status": res.status, "verdict": v.code, "verdict_text": words(v), "promoted": res.promoted,
            "min_sample": exp.min_sample, "variants": variants,
            "holdout": {"contacts": hold.contacts, "successes": hold.successes, "rate": _rate(hold)}}


def report(session: Session, rules: Ruleset, now: datetime | None = None) -> list[dict[str, Any]]:
    return [as_json(r) for r in results(session, rules, now)]
