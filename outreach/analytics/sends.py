"""What each sent touch brought, kept (SentTouch) with its daily counts (SentDay), so that the steps and
channels widgets over everybody read a few rows per day instead of every touch and its evidence; and
the providers' delivery events per day (EventDay) for the deliverability widget.

A touch is read again when database triggers mark it (sent, unsent, or changed while sent: TouchMark),
when evidence naming it arrives, or when its contact's stage changes (a change corrected after the fact
included): its old row's count is taken off SentDay and its new row's put on, in the refresh's
transaction (outreach.analytics.paths.refresh runs both under one lock). The hours to the contact's
next stage change are kept whole, so "advanced within `report.advance_within`" is exact for any whole
number of hours up to 92 days; another setting is counted from the touches as before. A day with new
delivery events is counted again whole from the evidence. SentDay and EventDay are counted per part of the
touch's or event's contact (outreach.analytics.parts: everybody's rows are the part ""), as ContactPart
has it; paths.refresh moves a changed contact's counts between its parts (count_contacts)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Integer, Select, Table, and_, case, cast, delete, exists, func, insert, literal, select, union
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col

from outreach.analytics.activity import DELIVERY, OPT_OUTS, Sent, literal_in
from outreach.analytics.model import DeliverabilityRow, Filters
from outreach.analytics.parts import PARTS, RULE, counted, part_of
from outreach.analytics.scope import contact_where
from outreach.analytics.sql import dialect, hours_between, utc_day
from outreach.batch_loads import chunks
from outreach.db import add_to_counters
from outreach.evidence import RESPONSES
from outreach.models import (
    DELIVERY_TYPES,
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
    """The SentTouch rows `where` keeps, counted per part of their contact (SentDay's rows: part, KEYS, n)."""
    keys = [PARTS.c.part, *(SENT.c[k] for k in KEYS)]
    return select(*keys, func.count()).select_from(SENT.join(PARTS, and_(*counted(SENT.c.contact_id, rules=False)))
                                                   ).where(*where).group_by(*keys)


def rebuild_sent(session: Session) -> None:
    """Every sent touch again (the counts are emptied: rebuild_counts makes them, once the parts are kept)."""
    for table in (SENT, DAY, EVENTS):
        session.execute(delete(table))
    session.execute(insert(SENT).from_select(["touch_id", "contact_id", *KEYS], _rows(session, None)))


def rebuild_counts(session: Session) -> None:
    """SentDay and EventDay from every kept sent touch and delivery event, per part (ContactPart written)."""
    session.execute(insert(DAY).from_select(["part", *KEYS, "n"], _grouped([])))
    session.execute(insert(EVENTS).from_select(["part", "day", "type", "n"], _events(session, [])))


def _events(session: Session, where: Sequence[ColumnElement[bool]]) -> Select[*tuple[Any, ...]]:
    """The delivery events `where` keeps, per part of their contact, UTC day and type (EventDay's rows)."""
    day = utc_day(col(Evidence.occurred_at), dialect(session))
    return select(PARTS.c.part, day, col(Evidence.type), func.count()).join(
        PARTS, and_(*counted(table_of(Evidence).c.contact_id))).where(
        literal_in(col(Evidence.type), DELIVERY_TYPES), *where).group_by(PARTS.c.part, day, col(Evidence.type))


def recount_days(session: Session, w_evidence: int, overlap: int) -> None:
    """EventDay's rows (every part's) of the UTC days of the delivery events that arrived since evidence
    `w_evidence` (less `overlap`), counted again from the evidence: idempotent, a day read twice is counted
    once. After the contacts' parts are written (paths.refresh): their events are counted on them."""
    days = sorted(set(session.execute(select(utc_day(col(Evidence.occurred_at), dialect(session))).where(
        col(Evidence.id) > w_evidence - overlap, col(Evidence.type).in_(sorted(DELIVERY))).distinct()).scalars()))
    session.execute(delete(EVENTS).where(EVENTS.c.day.in_(days)))
    for d in days:
        start = datetime.combine(date.fromisoformat(d), time.min, UTC)
        session.execute(insert(EVENTS).from_select(["part", "day", "type", "n"], _events(session, [
            col(Evidence.occurred_at) >= start, col(Evidence.occurred_at) < start + timedelta(days=1)])))


@dataclass
class Moved:
    """Deltas of SentDay's and EventDay's rows (part first) while contacts move between parts."""

    sent: Counter[tuple[str, *Key]] = field(default_factory=Counter)
    events: Counter[tuple[str, str, str]] = field(default_factory=Counter)


def count_contacts(session: Session, ids: Sequence[int], moved: Moved, sign: int) -> None:
    """Add (sign 1) or take off (-1) the counts of the contacts `ids`' sent touches and delivery events (every
    day's: a day with new events is counted again whole afterwards) on their parts as ContactPart has them."""
    for part, *key, n in session.execute(_grouped([SENT.c.contact_id.in_(ids)])):
        moved.sent[(part, *_key(key))] += sign * n
    for part, d, kind, n in session.execute(_events(session, [col(Evidence.contact_id).in_(ids)])):
        moved.events[(part, d, kind)] += sign * n


def add_moved(session: Session, moved: Moved) -> None:
    _add(session, DAY, ["part", *KEYS], moved.sent)
    _add(session, EVENTS, ["part", "day", "type"], moved.events)


def _add(session: Session, table: Table, keys: list[str], deltas: Counter[Any]) -> None:
    """n += delta per key, then the keys left at zero are dropped (sorted: rows lock in one order)."""
    rows = [dict(zip(keys, k, strict=True)) | {"n": n} for k, n in sorted(deltas.items()) if n]
    add_to_counters(session, table, keys, ["n"], rows, drop_zero=True)


def refresh(session: Session, w_change: int, w_evidence: int, w_mark: int, overlap: int
            ) -> tuple[int, int, int, list[int]]:
    """Read again the touches marked, answered, or whose contact's stage changed since the last refresh
    (ids above the watermarks, less `overlap`), their counts moved on the parts their contacts have in
    ContactPart; returns the new watermarks (stage change, evidence, mark) and the contacts of the touches
    read (before and after: a touch may change contact), whose rule parts may have changed."""
    last_change = session.execute(select(func.max(col(StageChange.id)))).scalar_one() or 0
    last_ev = session.execute(select(func.max(col(Evidence.id)))).scalar_one() or 0
    last_mark = session.execute(select(func.max(col(TouchMark.id)))).scalar_one() or 0
    if last_change <= w_change and last_ev <= w_evidence and last_mark <= w_mark:
        return w_change, w_evidence, w_mark, []
    kinds = sorted(RESPONSES | OPT_OUTS)
    moved = select(col(StageChange.contact_id)).where(col(StageChange.id) > w_change - overlap)
    ids = sorted(set(session.execute(union(
        select(col(TouchMark.touch_id)).where(col(TouchMark.id) > w_mark - overlap),
        select(col(Evidence.touch_id)).where(col(Evidence.id) > w_evidence - overlap,
                                              col(Evidence.touch_id).is_not(None), col(Evidence.type).in_(kinds)),
        select(col(Touch.id)).where(col(Touch.contact_id).in_(moved), col(Touch.status) == TouchStatus.SENT),
    )).scalars()))
    contacts: set[int] = set()
    for chunk in chunks(ids, 5000):
        contacts.update(_reread(session, chunk))
    # the newest mark stays: SQLite gives a new row the highest id + 1, which must stay above the watermark
    session.execute(delete(TouchMark).where(col(TouchMark.id) < last_mark - overlap))
    return last_change, last_ev, last_mark, sorted(contacts)


def _reread(session: Session, ids: Sequence[int]) -> set[int]:
    """The touches `ids` read again, their SentDay counts moved; returns their contacts, before and after."""
    mine = [SENT.c.touch_id.in_(ids)]
    contacts = set(session.execute(select(SENT.c.contact_id).where(*mine).distinct()).scalars())
    moved = Moved()
    for part, *key, n in session.execute(_grouped(mine)):
        moved.sent[(part, *_key(key))] -= n
    session.execute(delete(SENT).where(*mine))
    session.execute(insert(SENT).from_select(["touch_id", "contact_id", *KEYS], _rows(session, ids)))
    for part, *key, n in session.execute(_grouped(mine)):
        moved.sent[(part, *_key(key))] += n
    add_moved(session, moved)
    return contacts | set(session.execute(select(SENT.c.contact_id).where(*mine).distinct()).scalars())


def _key(values: Sequence[Any]) -> Key:
    day, rule, step, interaction, channel, responded, opted, adv = values
    return (day, rule, step, interaction, channel, bool(responded), bool(opted), int(adv))


def kept_answers(advance_within: timedelta) -> bool:
    """Whether SentTouch answers for this setting: a whole number of hours within 92 days."""
    hours = advance_within.total_seconds() / 3600
    return hours == int(hours) and 0 < hours <= MAX_HOURS


def sent_touches(session: Session, f: Filters, advance_within: timedelta) -> list[Sent]:
    """activity.sent_touches from the kept counts: when one part answers the filters (parts.part_of), from
    its SentDay rows, the period's days grouped (a playbook's touches: everybody's, by rule); for other
    combinations, from the SentTouch rows of the contacts kept (found by contact)."""
    within = int(advance_within.total_seconds() // 3600)
    part = part_of(f)
    where = contact_where(f, touched=False) if part is None else []
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
    else:  # a playbook's touches are everybody's of that rule; SentDay keeps no rule parts
        query = query.where(DAY.c.part == ("" if part is None or part.startswith(RULE) else part))
    return [Sent(rule, step, interaction, channel, int(total), int(resp or 0), int(a or 0), int(opt or 0))
            for rule, step, interaction, channel, total, resp, a, opt in session.execute(query)]


def deliverability(session: Session, f: Filters, part: str = "") -> list[DeliverabilityRow]:
    """activity.deliverability from EventDay's rows of `part` (parts.part_of; "" everybody's), the UTC
    week found from each day."""
    rows: dict[tuple[str, str], DeliverabilityRow] = {}
    for d, kind, n in session.execute(select(EVENTS.c.day, EVENTS.c.type, EVENTS.c.n).where(
            EVENTS.c.part == part, EVENTS.c.day >= f.since.isoformat(), EVENTS.c.day <= f.until.isoformat())):
        day = date.fromisoformat(d)
        week = (day - timedelta(days=day.weekday())).isoformat()
        channel, field_ = DELIVERY[kind]
        row = rows.setdefault((week, channel), {"week": week, "channel": channel, "delivered": 0, "bounced": 0,
                                                "complained": 0, "unsubscribed": 0, "opted_out": 0})
        row[field_] += int(n)  # type: ignore[literal-required]
    return [rows[k] for k in sorted(rows)]
