"""Daily stage snapshots: the count per owner and stage at the end of each UTC day, kept so that the
history of a past day is what the engine knew then, even after stage changes are corrected, and so
that a long history is read from a few rows per day instead of rebuilt from every stage change.

The scheduler's job keeps them: yesterday from the live counts when the day ended less than
`LIVE_WITHIN` ago (exact), and every earlier day not kept yet (the days before snapshots began, or
missed while no engine ran) reconstructed from the stage changes and marked so."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import func, select
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col

from outreach.analytics import paths
from outreach.analytics.funnel import daily_counts, timeline
from outreach.analytics.model import Filters
from outreach.batch_loads import insert_ignore
from outreach.models import Contact, ContactPart, SnapshotDay, StageSnapshot, table_of

LIVE_WITHIN = timedelta(hours=1)


def _end_of(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), time.min, UTC)


def take_snapshots(session: Session, stage_ids: list[str], now: datetime) -> tuple[int, int]:
    """Keep every finished UTC day not kept yet; returns (days taken live, days reconstructed).
    Idempotent: a day already kept (by this or another worker) is left as it is. The kept stage paths
    are brought up to date first (every 10 minutes, so a report finds little to count)."""
    kept_paths = paths.refreshed(session, stage_ids)
    yesterday = now.astimezone(UTC).date() - timedelta(days=1)
    last = session.execute(select(func.max(col(SnapshotDay.day)))).scalar_one()
    if last is not None and last >= yesterday.isoformat():
        return 0, 0
    if last is not None:
        first = date.fromisoformat(last) + timedelta(days=1)
    else:
        earliest = session.execute(select(func.min(col(Contact.created_at)))).scalar_one()
        first = earliest.astimezone(UTC).date() if earliest is not None else yesterday
    first = min(first, yesterday)
    live = now - _end_of(yesterday) <= LIVE_WITHIN
    rebuild = [first + timedelta(days=i) for i in range((yesterday - first).days + (0 if live else 1))]
    rows: list[dict[str, object]] = []
    days: list[dict[str, object]] = []
    if rebuild:
        counts = paths.daily_counts(session, len(stage_ids), None, [], rebuild, by_owner=True) \
            if kept_paths else \
            daily_counts(session, len(stage_ids), timeline(stage_ids, None), rebuild, by_owner=True)
        rows += [{"day": d, "owner": o, "stage": stage_ids[i], "count": n}
                 for (d, o), c in counts.items() for i, n in enumerate(c) if n]
        days += [{"day": d.isoformat(), "reconstructed": True, "taken_at": now} for d in rebuild]
    if live:
        owner = func.coalesce(col(Contact.owner), "")
        for o, stage, n in session.execute(
                select(owner, col(Contact.stage), func.count()).where(col(Contact.created_at) < _end_of(yesterday))
                .group_by(owner, col(Contact.stage))):
            if stage in stage_ids:
                rows.append({"day": yesterday.isoformat(), "owner": o, "stage": stage, "count": n})
        days.append({"day": yesterday.isoformat(), "reconstructed": False, "taken_at": now})
    insert_ignore(session, table_of(StageSnapshot), rows, ["day", "owner", "stage"])
    insert_ignore(session, table_of(SnapshotDay), days, ["day"])
    return int(live), len(rebuild)


def live_counts(session: Session, stage_ids: list[str], owner: str | None,
                where: Sequence[ColumnElement[bool]] = (), part: str | None = None) -> list[int]:
    """Contacts per stage now (one group-by on the stage index), for one owner or everybody, and any
    further conditions on Contact (the report's filters); with a `part` other than everybody's (the kept
    counts just refreshed), the contacts ContactPart keeps in it instead."""
    query = select(col(Contact.stage), func.count()).group_by(col(Contact.stage))
    if part:
        query = query.join(ContactPart, col(ContactPart.contact_id) == col(Contact.id)).where(
            col(ContactPart.part) == part)
    else:
        query = query.where(*where, *([col(Contact.owner) == owner] if owner is not None else []))
    counts = dict(session.execute(query).all())
    return [int(counts.get(stage, 0)) for stage in stage_ids]


def kept(session: Session, stage_ids: list[str], f: Filters) -> dict[str, tuple[list[int], bool]]:
    """The period's kept days: day -> (count per stage, reconstructed?), for the filter's owner."""
    first, last = f.since.isoformat(), f.until.isoformat()
    out = {d: ([0] * len(stage_ids), bool(rec)) for d, rec in session.execute(
        select(col(SnapshotDay.day), col(SnapshotDay.reconstructed)).where(
            col(SnapshotDay.day) >= first, col(SnapshotDay.day) <= last))}
    if not out:
        return out
    query = select(col(StageSnapshot.day), col(StageSnapshot.stage), func.sum(col(StageSnapshot.count))).where(
        col(StageSnapshot.day) >= first, col(StageSnapshot.day) <= last)
    if f.owner is not None:
        query = query.where(col(StageSnapshot.owner) == f.owner)
    rank = {s: i for i, s in enumerate(stage_ids)}
    for d, stage, n in session.execute(query.group_by(col(StageSnapshot.day), col(StageSnapshot.stage))):
        if d in out and stage in rank:  # a stage the rules no longer name is left out, as in the funnel
            out[d][0][rank[stage]] += int(n)
    return out


def kept_days(session: Session, f: Filters) -> dict[str, bool]:
    """The period's kept days: day -> reconstructed? (a day not in it is rebuilt on each request)."""
    return {d: bool(rec) for d, rec in session.execute(
        select(col(SnapshotDay.day), col(SnapshotDay.reconstructed)).where(
            col(SnapshotDay.day) >= f.since.isoformat(), col(SnapshotDay.day) <= f.until.isoformat()))}
