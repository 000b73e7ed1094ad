"""Each person's own dashboards: the widgets they picked, in their order, with the filters they saved.
A rep's dashboard covers their own contacts; an admin's or a marketer's covers everyone's or one rep's.
Anyone signed in to the project may open one by its link; only the person who made it changes it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select
from sqlmodel import Session, col

from outreach.analytics.build import check_owner
from outreach.analytics.html import WIDGETS
from outreach.analytics.model import MAX_DAYS, Filters, narrowing
from outreach.errors import InvalidInput, NotFound
from outreach.models import SavedDashboard, User
from outreach.ruleset import Ruleset

TITLES = {"funnel": "Buying funnel", "conversion": "Conversion", "history": "Stages over time",
          "velocity": "Days in each stage", "channels": "Answered per interaction and channel",
          "steps": "Results per step", "queue": "Approval queue", "deliverability": "Deliverability per week"}


@dataclass(frozen=True)
class Choice:
    """What a person asks to save: the checked form, before it is checked against the rules."""

    name: str
    widgets: list[str]
    days: int = 30
    contacts_of: str | None = None
    stage: str | None = None
    playbook: str | None = None
    attrs: list[tuple[str, str]] = field(default_factory=list)


def save(session: Session, rules: Ruleset, user: User, choice: Choice, dashboard_id: int | None = None
         ) -> SavedDashboard:
    """Create (no id) or change a dashboard of `user`'s; bad input raises InvalidInput naming the field."""
    name = choice.name.strip()
    if not name:
        raise InvalidInput("name: give the dashboard a name")
    widgets = list(dict.fromkeys(w for w in choice.widgets if w))
    unknown = [w for w in widgets if w not in WIDGETS]
    if unknown:
        raise InvalidInput(f"widgets: no widget is called {', '.join(unknown)} (there are {', '.join(WIDGETS)})")
    if not widgets:
        raise InvalidInput("widgets: pick at least one widget")
    if not 1 <= choice.days <= MAX_DAYS:
        raise InvalidInput(f"days: a dashboard covers 1 to {MAX_DAYS} days, not {choice.days}")
    contacts_of = (choice.contacts_of or "").strip().lower() or None
    if user.role == "rep":  # a rep's dashboards are about their own contacts
        contacts_of = user.email
    elif contacts_of is not None:
        check_owner(session, contacts_of)
    today = datetime.now(UTC).date()
    narrowed = narrowing(Filters(today, today), rules, choice.stage, choice.playbook, choice.attrs)
    if dashboard_id is None:
        d = SavedDashboard(owner=user.email, name=name)
    else:
        d = get(session, dashboard_id)
        if d.owner != user.email:
            raise InvalidInput(f"dashboard {dashboard_id} is {d.owner}'s: only they change it (save a copy instead)")
    d.name, d.widgets, d.days, d.contacts_of = name[:200], widgets, choice.days, contacts_of
    d.stage, d.playbook, d.attrs = narrowed.stage, narrowed.playbook, dict(narrowed.attrs)
    d.updated_at = datetime.now(UTC)
    session.add(d)
    session.flush()
    return d


def get(session: Session, dashboard_id: int) -> SavedDashboard:
    d = session.get(SavedDashboard, dashboard_id)
    if d is None:
        raise NotFound(f"no dashboard {dashboard_id}")
    return d


def delete(session: Session, user: User, dashboard_id: int) -> None:
    d = get(session, dashboard_id)
    if d.owner != user.email:
        raise InvalidInput(f"dashboard {dashboard_id} is {d.owner}'s: only they delete it")
    session.delete(d)


def listed(session: Session, user: User) -> tuple[list[SavedDashboard], list[SavedDashboard]]:
    """(the user's own, everyone else's in the project), by name."""
    rows = list(session.execute(select(SavedDashboard).order_by(col(SavedDashboard.name), col(SavedDashboard.id)))
                .scalars())
    return [d for d in rows if d.owner == user.email], [d for d in rows if d.owner != user.email]


def filters_of(d: SavedDashboard, viewer: User, today: date) -> Filters:
    """The dashboard's filters for who opens it today: its last `days` days; a rep sees only their own
    contacts whoever made it."""
    owner = viewer.email if viewer.role == "rep" else d.contacts_of
    return Filters(today - timedelta(days=d.days - 1), today, owner, d.stage, d.playbook,
                   tuple(sorted(d.attrs.items())))
