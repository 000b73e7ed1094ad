"""The whole report: every widget for one set of filters (what `outreach report` prints)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import exists, select
from sqlmodel import Session, col

from outreach.analytics import activity, funnel
from outreach.analytics.model import Filters, Report
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


def build_report(session: Session, rules: Ruleset, f: Filters, advance_within: timedelta = ADVANCE_WITHIN) -> Report:
    stage_ids = rules.stage_ids
    tl = funnel.timeline(stage_ids, f.owner)
    funnel_rows, history = funnel.history(session, stage_ids, f, tl)
    return {
        "period": {"since": f.since.isoformat(), "until": f.until.isoformat()},
        "funnel": funnel_rows,
        "conversion": funnel.conversion(session, stage_ids, f, tl),
        "velocity": funnel.velocity(session, stage_ids, f, tl),
        "steps": activity.steps(session, rules, f, advance_within),
        "channels": activity.channels(session, rules, f),
        "history": history,
        "queue": activity.queue(session, f),
    }
