"""What each sent touch brought, kept (SentTouch) with its daily counts (SentDay), so that the steps and
channels widgets over everybody read a few rows per day instead of every touch and its evidence; and
the providers' delivery events per day (EventDay) for the deliverability widget.

A touch is read again when database triggers mark it (sent, unsent, or changed while sent: TouchMark),
when evidence naming it arrives, or when its contact's stage changes (a change corrected after the fact
included): its old row's count is taken off SentDay and its new row's put on, in the refresh's
transaction (outreach.analytics.paths.refresh runs both under one lock). The hours to the contact's
next stage change are kept whole, so "advanced within `report.advance_within`" is exact for any whole
number of hours up to 92 days; another setting is counted from the touches as before. A day with new
delivery events is counted again whole from the evidence."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Integer, Select, case, cast, delete, exists, func, insert, literal, select, union
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col

from outreach.analytics.activity import DELIVERY, OPT_OUTS, Sent
from outreach.analytics.model import DeliverabilityRow, Filters
from outreach.analytics.scope import contact_where
from outreach.analytics.sql import dialect, hours_between, utc_day
from outreach.batch_loads import chunks
from outreach.db import add_to_counters
from outreach.evidence import RESPONSES
from outreach.models import (
    Contact,
    EventDay,
    Evidence,
    SentDay,
    SentTouch,
    StageChange,
    Touch,
    TouchMark,
    TouchStatus,
    table_of,
)

MAX_HOURS = 92 * 24  # a stage change later than this after a touch is not kept as its advance
KEYS = ["day", "rule", "step", "interaction", "channel", "responded", "opted_out", "advance_h"]
SENT, DAY, EVENTS = table_of(SentTouch), table_of(SentDay), table_of(EventDay)
Key = tuple[str, str, str, str, str, bool, bool, int]


def _rows(session: Session, ids: Sequence[int] | None) -> Select[*tuple[Any, ...]]:
    """SentTouch's rows for the sent touches among `ids` (None: every sent touch)."""
    name = dialect(session)
    sc = aliased(StageChange)
    first = select(func.min(col(sc.at))).where(col(sc.contact_id) == col(Touch.contact_id),
                                               col(sc.at) > col(Touch.sent_at)).scalar_subquery()
    between = hours_between(col(Touch.sent_at), first, name)
    # whole hours, rounded up (SQLite may be built without ceil; PostgreSQL's cast rounds)
    hours = func.ceil(between) if name == "postgresql" else \
        cast(between, Integer) + case((between > cast(between, Integer), 1), else_=0)
    answered = exists().where(col(Evidence.touch_id) == col(Touch.id), col(Evidence.type).in_(sorted(RESPONSES)))
    opted = exists().where(col(Evidence.touch_id) == col(Touch.id), col(Evidence.type).in_(sorted(OPT_OUTS)))
    query = select(col(Touch.id), col(Touch.contact_id), utc_day(col(Touch.sent_at), name), col(Touch.rule),
                   col(Touch.step),
                   col(Touch.interaction), func.coalesce(col(Touch.channel), ""), case((answered, True), else_=False),
                   case((opted, True), else_=False),
                   func.coalesce(case((hours <= MAX_HOURS, cast(hours, Integer)), else_=None), -1)).where(
        col(Touch.status) == TouchStatus.SENT, col(Touch.sent_at).is_not(None))
    return query.where(col(Touch.id).in_(ids)) if ids is not None else query


def _grouped(where: Sequence[ColumnElement[bool]]) -> Select[*tuple[Any, ...]]:
    keys = [SENT.c[k] for k in KEYS]
    return select(*keys, func.count()).where(*where).group_by(*keys)


def rebuild_all(session: Session) -> None:
    """Every sent touch and delivery event again (the tables emptied first)."""
    for table in (SENT, DAY, EVENTS):
        session.execute(delete(table))
    session.execute(insert(SENT).from_select(["touch_id", "contact_id", *KEYS], _rows(session, None)))
    session.execute(insert(DAY).from_select([*KEYS, "n"], _grouped([])))
    session.execute(insert(EVENTS).from_select(["day", "type", "n"], _events(session, [])))


def _events(session: Session, where: Sequence[ColumnElement[bool]]) -> Select[*tuple[Any, ...]]:
    """The delivery events `where` keeps, per UTC day and type (EventDay's rows)."""
    day = utc_day(col(Evidence.occurred_at), dialect(session))
    return select(day, col(Evidence.type), func.count()).where(
        col(Evidence.type).in_(sorted(DELIVERY)), *where).group_by(day, col(Evidence.type))


def _recount_days(session: Session, days: Sequence[str]) -> None:
    """EventDay's rows of these UTC days counted again from the evidence (idempotent: a day read twice
    is counted once)."""
    session.execute(delete(EVENTS).where(EVENTS.c.day.in_(days)))
    for d in days:
        start = datetime.combine(date.fromisoformat(d), time.min, UTC)
        session.execute(insert(EVENTS).from_select(["day", "type", "n"], _events(session, [
            col(Evidence.occurred_at) >= start, col(Evidence.occurred_at) < start + timedelta(days=1)])))


def refresh(session: Session, w_change: int, w_evidence: int, w_mark: int, overlap: int) -> tuple[int, int, int]:
    """Read again the touches marked, answered, or whose contact's stage changed since the last refresh
    (ids above the watermarks, less `overlap`); returns the new watermarks (stage change, evidence, mark)."""
    last_change = session.execute(select(func.max(col(StageChange.id)))).scalar_one() or 0
    last_ev = session.execute(select(func.max(col(Evidence.id)))).scalar_one() or 0
    last_mark = session.execute(select(func.max(col(TouchMark.id)))).scalar_one() or 0
    if last_change <= w_change and last_ev <= w_evidence and last_mark <= w_mark:
        return w_change, w_evidence, w_mark
    kinds = sorted(RESPONSES | OPT_OUTS)
    moved = select(col(StageChange.contact_id)).where(col(StageChange.id) > w_change - overlap)
    ids = sorted(set(session.execute(union(
        select(col(TouchMark.touch_id)).where(col(TouchMark.id) > w_mark - overlap),
        select(col(Evidence.touch_id)).where(col(Evidence.id) > w_evidence - overlap,
                                              col(Evidence.touch_id).is_not(None), col(Evidence.type).in_(kinds)),
        select(col(Touch.id)).where(col(Touch.contact_id).in_(moved), col(Touch.status) == TouchStatus.SENT),
    )).scalars()))
    for part in chunks(ids, 5000):
        _reread(session, part)
    # the days of the delivery events that arrived: counted again
    _recount_days(session, sorted(set(session.execute(select(utc_day(col(Evidence.occurred_at), dialect(session)))
                                                      .where(col(Evidence.id) > w_evidence - overlap,
                                                             col(Evidence.type).in_(sorted(DELIVERY)))
                                                      .distinct()).scalars())))
    # the newest mark stays: SQLite gives a new row the highest id + 1, which must stay above the watermark
    session.execute(delete(TouchMark).where(col(TouchMark.id) < last_mark - overlap))
    return last_change, last_ev, last_mark


def _reread(session: Session, ids: Sequence[int]) -> None:
    mine = [SENT.c.touch_id.in_(ids)]
    delta: Counter[Key] = Counter()
    for *key, n in session.execute(_grouped(mine)):
        delta[_key(key)] -= n
    session.execute(delete(SENT).where(*mine))
    session.execute(insert(SENT).from_select(["touch_id", "contact_id", *KEYS], _rows(session, ids)))
    for *key, n in session.execute(_grouped(mine)):
        delta[_key(key)] += n
    rows = [dict(zip(KEYS, k, strict=True)) | {"n": n} for k, n in delta.items() if n]
    add_to_counters(session, DAY, KEYS, ["n"], rows, drop_zero=True)


def _key(values: Sequence[Any]) -> Key:
    day, rule, step, interaction, channel, responded, opted, adv = values
    return (day, rule, step, interaction, channel, bool(responded), bool(opted), int(adv))


def kept_answers(advance_within: timedelta) -> bool:
    """Whether SentTouch answers for this setting: a whole number of hours within 92 days."""
    hours = advance_within.total_seconds() / 3600
    return hours == int(hours) and 0 < hours <= MAX_HOURS


def sent_touches(session: Session, f: Filters, advance_within: timedelta) -> list[Sent]:
    """activity.sent_touches from the kept counts: over everybody (or one playbook's touches) from SentDay,
    the period's days grouped; narrowed to some contacts, from their SentTouch rows (found by contact)."""
    within = int(advance_within.total_seconds() // 3600)
    where = contact_where(f, touched=False)
    d = SENT.c if where else DAY.c
    n = literal(1) if where else DAY.c.n
    adv = case(((d.advance_h >= 0) & (d.advance_h <= within), n), else_=0)
    keys = (d.rule, d.step, d.interaction, d.channel)
    query = select(*keys, func.sum(n), func.sum(case((d.responded, n), else_=0)), func.sum(adv),
                   func.sum(case((d.opted_out, n), else_=0))).where(
        d.day >= f.since.isoformat(), d.day <= f.until.isoformat()).group_by(*keys)
    if f.playbook is not None:  # the playbook's touches: kept by rule, on either table
        query = query.where(d.rule == f.playbook)
    if where:
        query = query.join(Contact, col(Contact.id) == SENT.c.contact_id).where(*where)
    return [Sent(rule, step, interaction, channel, int(total), int(resp or 0), int(a or 0), int(opt or 0))
            for rule, step, interaction, channel, total, resp, a, opt in session.execute(query)]


def deliverability(session: Session, f: Filters) -> list[DeliverabilityRow]:
    """activity.deliverability over everybody, from EventDay (the UTC week found from each day)."""
    rows: dict[tuple[str, str], DeliverabilityRow] = {}
    for d, kind, n in session.execute(select(EVENTS.c.day, EVENTS.c.type, EVENTS.c.n).where(
            EVENTS.c.day >= f.since.isoformat(), EVENTS.c.day <= f.until.isoformat())):
        day = date.fromisoformat(d)
        week = (day - timedelta(days=day.weekday())).isoformat()
        channel, field = DELIVERY[kind]
        row = rows.setdefault((week, channel), {"week": week, "channel": channel, "delivered": 0, "bounced": 0,
                                                "complained": 0, "unsubscribed": 0, "opted_out": 0})
        row[field] += int(n)  # type: ignore[literal-required]
    return [rows[k] for k in sorted(rows)]
