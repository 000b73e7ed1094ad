"""Each contact's path through the stages, kept in the database with its counts, so that conversion,
velocity and the history answer from a few rows per day instead of rebuilding every path.

StagePath holds funnel.timeline's rows (per contact and stage reached: t, prev, t_next); StageFlow
and StageStay count them per UTC day. `refresh` brings them up to date: the contacts that came in or
whose stage changes were recorded since the last refresh get their path rebuilt (by the same
timeline query, so a change corrected after the fact, dated earlier, rewrites that contact's path),
and their old rows' counts are taken off the daily counts and their new rows' put on, in the same
transaction. Reports and the snapshot job call it first; with nothing new it costs two index lookups.
Counted this way, every figure is the one the timeline gives, on any day boundary (the counts are per
UTC day, and the periods are whole UTC days). The counts are kept per part (outreach.analytics.parts:
everybody's, and each single filter value's): a contact whose parts may have changed (marked by the
triggers on contact, or given or denied a rule part by its touches) is counted again the same way, its old
rows' counts taken off the parts it had and its new rows' put on the parts it has."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import Select, Subquery, Table, and_, case, delete, func, insert, literal, select, text, union, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col

from outreach.analytics import funnel, parts, sends
from outreach.analytics.model import ConversionRow, Filters, VelocityRow
from outreach.analytics.scope import contact_where
from outreach.analytics.sql import dialect, utc_day, whole_hours
from outreach.batch_loads import chunks, insert_ignore
from outreach.db import add_to_counters, read_only
from outreach.models import (
    Contact,
    ContactMark,
    ContactPart,
    Evidence,
    PathState,
    StageChange,
    StageFlow,
    StagePath,
    StageStay,
    TouchMark,
    table_of,
    utcnow,
)

log = logging.getLogger(__name__)
# Ids below the last counted that are read again on each refresh: on PostgreSQL a transaction that took
# an id earlier may commit after one that took a later id, and must not be skipped for good.
OVERLAP = 1000
PATH, FLOW, STAY = table_of(StagePath), table_of(StageFlow), table_of(StageStay)
FlowKey = tuple[str, str, int, int, str, bool]  # part first
StayKey = tuple[str, str, int, int]


def refresh(session: Session, stage_ids: list[str], checked: bool = False) -> int:
    """Bring the kept paths, the sent touches and their counts (everybody's and each part's) up to date;
    returns how many contacts were counted again. One refresher at a time: the PathState row is locked (a
    write lock on SQLite) before anything is read. `checked`: the caller has seen there is something new
    (its first statement is then the lock)."""
    order = ",".join(stage_ids)
    if not checked and not stale(session, stage_ids):
        return 0
    insert_ignore(session, table_of(PathState), [{"id": 1, "stages": "", "change_id": 0, "contact_id": 0,
                                                   "evidence_id": 0, "mark_id": 0, "contact_mark_id": 0,
                                                   "refreshed_at": utcnow()}], ["id"])
    session.execute(update(PathState).where(col(PathState.id) == 1).values(refreshed_at=utcnow()))  # the lock
    stages, w_change, w_contact, w_evidence, w_mark, w_cmark = session.execute(select(
        col(PathState.stages), col(PathState.change_id), col(PathState.contact_id), col(PathState.evidence_id),
        col(PathState.mark_id), col(PathState.contact_mark_id)).where(col(PathState.id) == 1)).one()
    last_change, last_contact, last_evidence, last_mark, last_cmark = _last(session)
    done = 0
    if stages != order:  # another order of stages (or the first run): everything again
        for table in (PATH, FLOW, STAY, table_of(ContactPart)):
            session.execute(delete(table))
        sends.rebuild_sent(session)
        parts.rewrite(session, None)  # the rule parts read the sent touches just kept
        _rebuild(session, stage_ids, None)
        sends.rebuild_counts(session)
        session.execute(delete(TouchMark).where(col(TouchMark.id) < last_mark))  # the newest stays: see sends
        session.execute(delete(ContactMark).where(col(ContactMark.id) < last_cmark))
        for name in ("stagepath", "senttouch", "contactpart"):  # the planner's statistics
            session.execute(text(f"ANALYZE {name}"))
        done = last_contact
    else:
        ids: set[int] = set()
        if w_change < last_change or w_contact < last_contact:
            ids.update(session.execute(union(
                select(col(StageChange.contact_id)).where(col(StageChange.id) > w_change - OVERLAP),
                select(col(Contact.id)).where(col(Contact.id) > w_contact - OVERLAP))).scalars())
        # the touches first (their counts moved on the parts their contacts had), then the contacts
        last_change, last_evidence, last_mark, touched = sends.refresh(session, w_change, w_evidence, w_mark,
                                                                       OVERLAP)
        if w_cmark < last_cmark:
            ids.update(parts.marked(session, w_cmark - OVERLAP))
        ids.update(parts.rules_moved(session, touched))
        for chunk in chunks(sorted(ids), 5000):
            _rebuild(session, stage_ids, chunk)
        if (last_change, last_evidence, last_mark) != (w_change, w_evidence, w_mark):  # as sends.refresh reads
            sends.recount_days(session, w_evidence, OVERLAP)  # after the contacts' parts are written
        # the newest mark stays, as touchmark's (see sends.refresh)
        session.execute(delete(ContactMark).where(col(ContactMark.id) < last_cmark - OVERLAP))
        done = len(ids)
    session.execute(update(PathState).where(col(PathState.id) == 1).values(
        stages=order, change_id=last_change, contact_id=last_contact, evidence_id=last_evidence, mark_id=last_mark,
        contact_mark_id=last_cmark))
    return done


def _last(session: Session) -> tuple[int, int, int, int, int]:
    """The newest stage change, contact, evidence, touch mark and contact mark (0: none)."""
    return tuple(session.execute(select(func.max(c))).scalar_one() or 0  # type: ignore[return-value]
                 for c in (col(StageChange.id), col(Contact.id), col(Evidence.id), col(TouchMark.id),
                           col(ContactMark.id)))


def stale(session: Session, stage_ids: list[str]) -> bool:
    """Whether anything was added since the last refresh (or the stages' order changed)."""
    state = session.execute(select(col(PathState.stages), col(PathState.change_id), col(PathState.contact_id),
                                   col(PathState.evidence_id), col(PathState.mark_id),
                                   col(PathState.contact_mark_id))
                            .where(col(PathState.id) == 1)).first()
    return state is None or state[0] != ",".join(stage_ids) or any(
        w < m for w, m in zip(state[1:], _last(session), strict=True))


def refreshed(session: Session, stage_ids: list[str]) -> bool:
    """refresh, for a reader: True when the kept paths are up to date. If the database is busy (another
    writer holds SQLite), False, and the caller counts from the stage changes instead.

    A session with nothing begun yet refreshes in a transaction of its own, committed: on SQLite the
    check's read must end before the write, or a writer committing in between makes the write (and
    every later one in that transaction) fail rather than wait. Inside a caller's transaction, a savepoint.

    On a replica's read-only session (Engine.reading, which refreshed them on the primary first): True
    when they were ever built for these stages, and nothing is written."""
    if read_only(session):
        stages = session.execute(select(col(PathState.stages)).where(col(PathState.id) == 1)).scalar()
        return stages == ",".join(stage_ids)
    if session.in_transaction():
        try:
            with session.begin_nested():
                refresh(session, stage_ids)
            return True
        except OperationalError:
            return _busy()
    try:
        needed = stale(session, stage_ids)
        session.rollback()
        if needed:
            refresh(session, stage_ids, checked=True)
            session.commit()
        return True
    except OperationalError:
        session.rollback()
        return _busy()


def _busy() -> bool:
    log.warning("the kept stage paths could not be refreshed now (the database is busy): counted afresh")
    return False


def _rebuild(session: Session, stage_ids: list[str], ids: Sequence[int] | None) -> None:
    """Rebuild the paths and parts of the contacts `ids` (None: every contact, the count tables being
    empty and ContactPart written), moving the daily counts from their old rows and parts to their new
    ones: their flows and stays, their sent touches' and their delivery events'."""
    tl = funnel.timeline(stage_ids, None, ids=ids)
    new_paths = insert(PATH).from_select(["contact_id", "idx", "prev", "t", "t_next"], select(
        tl.c.cid, tl.c.idx, tl.c.prev, tl.c.t, tl.c.t_next))
    if ids is None:  # everything: counted in the database, one INSERT ... SELECT per table
        session.execute(new_paths)
        flow, stay = _grouped(session, [])
        session.execute(insert(FLOW).from_select(["part", "day_in", "idx", "prev", "day_out", "same", "n"], flow))
        session.execute(insert(STAY).from_select(["part", "day_out", "idx", "hours", "n"], stay))
        return
    mine = [col(StagePath.contact_id).in_(ids)]
    flows: Counter[FlowKey] = Counter()
    stays: Counter[StayKey] = Counter()
    moved = sends.Moved()
    _count(session, mine, flows, stays, -1)
    sends.count_contacts(session, ids, moved, -1)
    session.execute(delete(StagePath).where(*mine))
    session.execute(new_paths)
    parts.rewrite(session, ids)
    _count(session, mine, flows, stays, 1)
    sends.count_contacts(session, ids, moved, 1)
    _add(session, FLOW, ["part", "day_in", "idx", "prev", "day_out", "same"], flows)
    _add(session, STAY, ["part", "day_out", "idx", "hours"], stays)
    sends.add_moved(session, moved)


def _grouped(session: Session, where: Sequence[ColumnElement[bool]]
             ) -> tuple[Select[*tuple[Any, ...]], Select[*tuple[Any, ...]]]:
    """StagePath rows `where` keeps, counted per part of their contacts as StageFlow's and StageStay's rows
    (part, key columns, then n)."""
    name = dialect(session)
    p, part = PATH.c, parts.PARTS.c.part
    day_in, day_out = utc_day(p.t, name), func.coalesce(utc_day(p.t_next, name), "")
    same = case((p.t_next == p.t, True), else_=False)
    prev = func.coalesce(p.prev, -1)
    joined = PATH.join(parts.PARTS, and_(*parts.counted(p.contact_id)))
    flow = select(part, day_in, p.idx, prev, day_out, same, func.count()).select_from(joined).where(*where).group_by(
        part, day_in, p.idx, prev, day_out, same)
    out_day, hours = utc_day(p.t_next, name), whole_hours(p.t, p.t_next, name)
    stay = select(part, out_day, p.idx, hours, func.count()).select_from(joined).where(
        *where, p.t_next > p.t).group_by(part, out_day, p.idx, hours)
    return flow, stay


def _count(session: Session, where: Sequence[ColumnElement[bool]], flow: Counter[FlowKey], stay: Counter[StayKey],
           sign: int) -> None:
    """Add (sign 1) or take off (-1) the counts of the StagePath rows `where` keeps, on their contacts' parts
    as ContactPart has them now."""
    flows, stays = _grouped(session, where)
    for pt, d, idx, pr, out, sm, n in session.execute(flows):
        flow[(pt, d, idx, pr, out, bool(sm))] += sign * n
    for pt, d, idx, h, n in session.execute(stays):
        stay[(pt, d, idx, int(h))] += sign * n


def _add(session: Session, table: Table, keys: list[str], deltas: Counter[FlowKey] | Counter[StayKey]) -> None:
    """n += delta per key, then the keys left at zero are dropped."""
    rows = [dict(zip(keys, k, strict=True)) | {"n": n} for k, n in sorted(deltas.items()) if n]
    add_to_counters(session, table, keys, ["n"], rows, drop_zero=True)


def timeline(owner: str | None, where: Sequence[ColumnElement[bool]] = ()) -> Subquery:
    """funnel.timeline's columns (cid, owner, idx, prev, t, t_next) read from the kept paths, for the
    contacts of `owner` and `where` (the report's filters)."""
    query: Select[*tuple[Any, ...]] = select(col(StagePath.contact_id).label("cid"), col(Contact.owner).label("owner"),
                   col(StagePath.idx), col(StagePath.prev), col(StagePath.t), col(StagePath.t_next)).join(
        Contact, col(Contact.id) == col(StagePath.contact_id)).where(*where)
    if owner is not None:
        query = query.where(col(Contact.owner) == owner)
    return query.subquery("kept")


def daily_counts(session: Session, n_stages: int, owner: str | None, where: Sequence[ColumnElement[bool]],
                 days: list[date], by_owner: bool = False, part: str | None = None
                 ) -> dict[tuple[str, str], list[int]]:
    """funnel.daily_counts from the kept paths: from StageFlow's few rows per day of the `part` (see
    parts.part_of; "" everybody's) when it is given, or when nothing narrows; else from the paths of the
    contacts of `owner` and `where`."""
    if (part is None and (owner is not None or where)) or by_owner:
        return funnel.daily_counts(session, n_stages, timeline(owner, where), days, by_owner)
    f = FLOW.c
    rows = session.execute(select(f.day_in, literal(""), f.idx, f.prev, func.sum(f.n)).where(
        f.part == (part or ""), f.day_in <= days[-1].isoformat()).group_by(f.day_in, f.idx, f.prev))
    return funnel.counts_from_moves(((d, o, idx, None if prev < 0 else prev, int(n)) for d, o, idx, prev, n in rows),
                                    n_stages, days)


def moves(session: Session, stage_ids: list[str], f: Filters, where: Sequence[ColumnElement[bool]] | None = None
          ) -> tuple[list[ConversionRow], list[VelocityRow]]:
    """funnel.moves from the kept paths: when one part answers the filters (parts.part_of), from its
    StageFlow and StageStay rows (a few per day of the period); else, or with `where` given (conditions on
    Contact), from the paths of the contacts kept, found by their contacts."""
    part = parts.part_of(f) if where is None else None
    if part is None:
        return funnel.moves(session, stage_ids, f, timeline(
            f.owner, contact_where(f, owner=False) if where is None else where), by_time=False)
    first, last = f.since.isoformat(), f.until.isoformat()
    fl = FLOW.c
    went_in = case((fl.same, 0), else_=fl.n)
    went_on = case((and_(~fl.same, fl.day_out != "", fl.day_out <= last), fl.n), else_=0)
    got: dict[int, list[int]] = {}
    for idx, e, a in session.execute(select(fl.idx, func.sum(went_in), func.sum(went_on)).where(
            fl.part == part, fl.day_in >= first, fl.day_in <= last).group_by(fl.idx)):
        got[idx] = [int(e or 0), int(a or 0)]
    hist: dict[int, list[tuple[float, int]]] = {}
    st = STAY.c
    for idx, h, n in session.execute(select(st.idx, st.hours, func.sum(st.n)).where(
            st.part == part, st.day_out >= first, st.day_out <= last).group_by(st.idx, st.hours)):
        hist.setdefault(idx, []).append((float(h) / 24, int(n)))
    return funnel.rates(stage_ids, got, hist)
