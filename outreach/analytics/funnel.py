"""The buying funnel through time: where contacts are on any day, who moved on, and how fast.

Each contact's path is read as "the first time they reached stage k or beyond" (t_k), from their stage
changes and their creation (at the stage they came in on). A buyer is at the furthest stage they have
proven, so a stage proven late by backdated evidence counts from the day the evidence says, and a
contact that skips a stage reaches it when they reach the one after it. On day D a contact is at
the highest k with t_k before the end of D. One window query gives, per contact and stage they
reached, t_k and the time they left for a later stage; every widget groups that."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import CompoundSelect, Select, Subquery, and_, case, func, literal, or_, select, union, union_all
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col
from sqlmodel.sql.sqltypes import UTCDateTime

from outreach.analytics.model import ConversionRow, Filters, FunnelRow, HistoryRow, VelocityRow
from outreach.analytics.sql import dialect, stage_rank, utc_day, whole_hours
from outreach.analytics.stats import percentile, wilson
from outreach.models import Contact, StageChange


def timeline(stage_ids: list[str], owner: str | None, active_since: datetime | None = None,
             where: Sequence[ColumnElement[bool]] = (), ids: Sequence[int] | None = None) -> Subquery:
    """(cid, owner, idx, prev, t, t_next): per contact and stage index it reached, when it first got
    there or beyond (t), the stage it came from (prev) and when it first got beyond it (t_next, NULL
    while it is still there). `where`: further conditions on Contact (the report's filters).
    With `active_since`, only the contacts created or moved since then
    (each with its whole path): every t or t_next from then on is one of theirs. With `ids`, only
    those contacts (read by their ids, not from every stage change)."""
    mine = [col(StageChange.contact_id).in_(ids)] if ids is not None else []
    first = select(col(StageChange.contact_id).label("cid"), func.min(col(StageChange.id)).label("fid")).where(
        *mine).group_by(col(StageChange.contact_id)).subquery()
    sc0 = aliased(StageChange)
    # the stage a contact came in on: the one its first change left, or where it still is
    came_in: Select[*tuple[Any, ...]] = (
        select(col(Contact.id).label("cid"), col(Contact.owner).label("owner"),
               stage_rank(func.coalesce(sc0.from_stage, col(Contact.stage)), stage_ids).label("idx"),
               col(Contact.created_at).label("at"))
        .outerjoin(first, first.c.cid == col(Contact.id)).outerjoin(sc0, col(sc0.id) == first.c.fid))
    moved: Select[*tuple[Any, ...]] = (
        select(col(StageChange.contact_id).label("cid"), col(Contact.owner).label("owner"),
               stage_rank(col(StageChange.to_stage), stage_ids).label("idx"), col(StageChange.at).label("at"))
        .join(Contact, col(Contact.id) == col(StageChange.contact_id)))
    if owner is not None:
        came_in = came_in.where(col(Contact.owner) == owner)
        moved = moved.where(col(Contact.owner) == owner)
    if where:
        came_in = came_in.where(*where)
        moved = moved.where(*where)
    if ids is not None:
        came_in = came_in.where(col(Contact.id).in_(ids))
        moved = moved.where(*mine)
    if active_since is not None:
        active: CompoundSelect[*tuple[Any, ...]] = union(
            select(col(StageChange.contact_id)).where(col(StageChange.at) >= active_since),
            select(col(Contact.id)).where(col(Contact.created_at) >= active_since))
        came_in = came_in.where(col(Contact.id).in_(active))
        moved = moved.where(col(StageChange.contact_id).in_(active))
    entries = union_all(came_in, moved).subquery()
    # a stage entered twice counts from the first time
    e = select(entries.c.cid, entries.c.owner, entries.c.idx, func.min(entries.c.at).label("at")).where(
        entries.c.idx >= 0).group_by(entries.c.cid, entries.c.owner, entries.c.idx).subquery()
    # t: the earliest time at this stage or beyond (a backdated later stage pulls it earlier)
    w = select(e.c.cid, e.c.owner, e.c.idx,
               func.min(e.c.at).over(partition_by=e.c.cid, order_by=e.c.idx.desc(), rows=(None, 0)).label("t"),
               func.lag(e.c.idx).over(partition_by=e.c.cid, order_by=e.c.idx).label("prev")).subquery()
    return select(w.c.cid, w.c.owner, w.c.idx, w.c.prev, w.c.t,
                  func.lead(w.c.t, type_=UTCDateTime()).over(partition_by=w.c.cid, order_by=w.c.idx).label("t_next")
                  ).subquery("timeline")


def daily_counts(session: Session, n_stages: int, tl: Subquery, days: list[date], by_owner: bool = False
                 ) -> dict[tuple[str, str], list[int]]:
    """Contacts per stage at the end of each of `days` (consecutive UTC days), keyed by (day, owner)
    (owner "" for nobody's, and for everybody's unless `by_owner`). Counts come from each day's arrivals
    (+1 at the stage reached) and departures (-1 at the one left), summed from the beginning: a few rows
    per day and stage come back, whatever the number of contacts."""
    day = utc_day(tl.c.t, dialect(session))
    owner = func.coalesce(tl.c.owner, "") if by_owner else literal("")
    rows = session.execute(select(day.label("d"), owner.label("o"), tl.c.idx, tl.c.prev, func.count()).group_by(
        day, owner, tl.c.idx, tl.c.prev))
    return counts_from_moves(((d, o, idx, prev, n) for d, o, idx, prev, n in rows), n_stages, days, by_owner)


def counts_from_moves(rows: Iterable[tuple[str, str, int, int | None, int]], n_stages: int, days: list[date],
                      by_owner: bool = False) -> dict[tuple[str, str], list[int]]:
    """daily_counts from its grouped rows (day, owner, stage reached, stage left or None, contacts)."""
    last = days[-1].isoformat()
    deltas: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0] * n_stages))
    # one pass: each row arrives at idx and leaves prev (if any) on day d
    for d, o, idx, prev, n in rows:
        if d <= last:
            deltas[d][o][idx] += n
            if prev is not None:
                deltas[d][o][prev] -= n
    counts: dict[str, list[int]] = defaultdict(lambda: [0] * n_stages)
    first = days[0].isoformat()

    def apply(d: str) -> None:
        for o, delta in deltas[d].items():
            counts[o] = [a + b for a, b in zip(counts[o], delta, strict=True)]

    for d in sorted(x for x in deltas if x < first):  # everything before the days asked: their starting point
        apply(d)
    out: dict[tuple[str, str], list[int]] = {}
    for day_ in days:
        key = day_.isoformat()
        if key in deltas:
            apply(key)
        for o, c in counts.items():
            out[(key, o)] = list(c)
        if not by_owner and (key, "") not in out:
            out[(key, "")] = [0] * n_stages
    return out


def funnel_of(stage_ids: list[str], counts: list[int]) -> list[FunnelRow]:
    """The funnel from the counts per stage: how many are at each, and at it or beyond."""
    rows: list[FunnelRow] = []
    reached = 0
    for i in reversed(range(len(stage_ids))):
        reached += counts[i]
        rows.append({"stage": stage_ids[i], "now": counts[i], "reached": reached})
    rows.reverse()
    return rows


def history_rows(stage_ids: list[str], per_day: dict[str, list[int]]) -> list[HistoryRow]:
    return [{"date": d, "stage": s, "count": per_day[d][i]} for d in sorted(per_day) for i, s in enumerate(stage_ids)]


def moves(session: Session, stage_ids: list[str], f: Filters, tl: Subquery, by_time: bool = True
          ) -> tuple[list[ConversionRow], list[VelocityRow]]:
    """Conversion and velocity from one pass over the paths.

    Conversion: of the contacts who entered a stage in the period, how many went on to a later one by
    its end (a contact that skips the next stage still advanced; one that skipped this stage never
    entered it, and one that went through it in the instant it reached the next never stood there).
    Velocity: the days spent in each stage by the contacts who left it in the period, median and 80th
    percentile, kept to the hour (a histogram per stage comes back, not one row per contact). `by_time=False`
    leaves out the condition on the times, for paths already narrowed to a few contacts (SQLite would
    otherwise read a year of every contact's paths by time and drop all but those contacts')."""
    entered_in = and_(tl.c.t >= f.start, tl.c.t < f.end)
    left_in = and_(tl.c.t_next >= f.start, tl.c.t_next < f.end, tl.c.t_next > tl.c.t)
    entered = case((entered_in, case((tl.c.t_next == tl.c.t, 0), else_=1)), else_=0)
    advanced = case((and_(entered_in, tl.c.t_next < f.end, tl.c.t_next > tl.c.t), 1), else_=0)
    hours = case((left_in, whole_hours(tl.c.t, tl.c.t_next, dialect(session))), else_=None)
    got: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    hist: dict[int, list[tuple[float, int]]] = defaultdict(list)
    query = select(tl.c.idx, entered.label("e"), advanced.label("a"), hours.label("h"), func.count())
    if by_time:  # only narrows: a path outside the period counts nothing. Without it, the contacts lead
        query = query.where(or_(entered_in, left_in))
    for idx, ent, adv, h, n in session.execute(query.group_by(tl.c.idx, entered, advanced, hours)):
        got[idx][0] += ent * n
        got[idx][1] += adv * n
        if h is not None:
            hist[idx].append((float(h) / 24, int(n)))
    return rates(stage_ids, got, hist)


def rates(stage_ids: list[str], got: dict[int, list[int]], hist: dict[int, list[tuple[float, int]]]
          ) -> tuple[list[ConversionRow], list[VelocityRow]]:
    """Conversion and velocity rows from the counts per stage index: got[idx] = [entered, advanced],
    hist[idx] = [(days spent, contacts), ...] of those who left it."""
    conversion: list[ConversionRow] = []
    for i in range(len(stage_ids) - 1):
        went_in, went_on = got.get(i, [0, 0])
        rate, low, high = wilson(went_on, went_in)
        conversion.append({"from": stage_ids[i], "to": stage_ids[i + 1], "entered": went_in, "advanced": went_on,
                           "rate": round(rate, 4), "low": round(low, 4), "high": round(high, 4)})
    velocity: list[VelocityRow] = []
    for i, stage in enumerate(stage_ids[:-1]):  # nobody leaves the last stage
        days = hist.get(i, [])
        med, p80 = percentile(days, 0.5), percentile(days, 0.8)
        velocity.append({"stage": stage, "n": sum(n for _, n in days),
                         "median_days": None if med is None else round(med, 2),
                         "p80_days": None if p80 is None else round(p80, 2)})
    return conversion, velocity
