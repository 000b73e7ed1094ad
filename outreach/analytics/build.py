"""The whole report: every widget for one set of filters (what `outreach report` prints)."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import exists, select
from sqlmodel import Session, col

from outreach.analytics import activity, funnel, paths, sends, snapshots
from outreach.analytics.activity import Sent
from outreach.analytics.model import DeliverabilityRow, Filters, Report
from outreach.analytics.parts import part_of
from outreach.analytics.scope import contact_where
from outreach.errors import InvalidInput
from outreach.models import Contact, User
from outreach.ruleset import Ruleset

ADVANCE_WITHIN = timedelta(days=14)


def check_owner(session: Session, owner: str) -> None:
    """An owner nobody has (no user, no contact) is a typo, not an empty report."""
    known = session.execute(select(exists().where(col(Contact.owner) == owner))).scalar_one() or \
        session.execute(select(exists().where(col(User.email) == owner))).scalar_one()
    if not known:
        raise InvalidInput(f"--owner '{owner}': no user has this email and no contact is owned by it")


def build_report(session: Session, rules: Ruleset, f: Filters, advance_within: timedelta = ADVANCE_WITHIN,
                 today: date | None = None) -> Report:
    """Every widget for the filters. `today` (the current UTC day) is counted from the contacts' stages
    as they are now, a plain group-by, rather than rebuilt from every stage change."""
    stage_ids = rules.stage_ids
    where = contact_where(f, owner=False)
    kept_paths = paths.refreshed(session, stage_ids)
    part = part_of(f) if kept_paths else None  # one filter value: its kept counts answer
    # the snapshots are kept per owner and stage: a narrower filter is counted from the stage changes
    per_day = {} if f.narrowed else {d: counts for d, (counts, _) in snapshots.kept(session, stage_ids, f).items()}
    if today is not None and f.since <= today <= f.until and today.isoformat() not in per_day:
        per_day[today.isoformat()] = snapshots.live_counts(session, stage_ids, f.owner, where, part)
    missing = [d for d in f.days() if d.isoformat() not in per_day]
    if missing:  # days not kept (before the snapshot job first ran): rebuilt from the stage changes
        computed = paths.daily_counts(session, len(stage_ids), f.owner, where, f.days(), part=part) if kept_paths else \
            funnel.daily_counts(session, len(stage_ids), funnel.timeline(stage_ids, f.owner, where=where), f.days())
        per_day.update({d.isoformat(): computed[(d.isoformat(), "")] for d in missing})
    # conversion and velocity look at moves in the period: read from the kept paths, or (the database busy)
    # from the paths of the contacts that moved or came in since it began
    conversion, velocity = paths.moves(session, stage_ids, f) if kept_paths else funnel.moves(
        session, stage_ids, f, funnel.timeline(stage_ids, f.owner, active_since=f.start, where=where))
    sent = sends.sent_touches(session, f, advance_within) if kept_paths and sends.kept_answers(advance_within) \
        else activity.sent_touches(session, f, advance_within)
    history = funnel.history_rows(stage_ids, per_day)
    return {
        "period": {"since": f.since.isoformat(), "until": f.until.isoformat()},
        "funnel": funnel.funnel_of(stage_ids, per_day[f.until.isoformat()]),
        "conversion": conversion,
        "velocity": velocity,
        "steps": activity.steps(session, rules, f, sent),
        "channels": activity.channels(rules, sent),
        "history": history,
        "queue": activity.queue(session, f),
    }


def sent_touches(session: Session, rules: Ruleset, f: Filters, advance_within: timedelta = ADVANCE_WITHIN
                 ) -> list[Sent]:
    """The period's sent touches as the steps and channels widgets group them: from the kept counts when
    they answer the filters, else counted from the touches."""
    if sends.kept_answers(advance_within) and paths.refreshed(session, rules.stage_ids):
        return sends.sent_touches(session, f, advance_within)
    return activity.sent_touches(session, f, advance_within)


def deliverability(session: Session, rules: Ruleset, f: Filters) -> list[DeliverabilityRow]:
    """The deliverability widget: from the kept daily counts when one part answers the filters (everybody,
    or one filter value), else from the evidence."""
    part = part_of(f)
    if part is not None and paths.refreshed(session, rules.stage_ids):
        return sends.deliverability(session, f, part)
    return activity.deliverability(session, f)
