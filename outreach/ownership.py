"""Contacts nobody can act for: their owner has no user account that can sign in, or they have no
owner while the playbooks have steps a rep approves. `contacts import` warns of them per owner, and the
admin's queue lists them (docs/REPS_DAY.md, "Who may approve")."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlmodel import Session, col

from outreach.models import Contact, User
from outreach.ruleset import Ruleset


@dataclass(frozen=True)
class OwnerFlag:
    owner: str | None  # None: contacts without an owner
    contacts: int


def approval_steps(rules: Ruleset) -> list[str]:
    """The playbook steps (stage/step) a rep approves."""
    return [f"{stage}/{step.id}" for stage, steps in rules.playbooks.items() for step in steps
            if step.approval == "rep"]


def _signable(session: Session, owners: list[str]) -> set[str]:
    found: set[str] = set()
    for i in range(0, len(owners), 900):
        found.update(session.execute(select(col(User.email)).where(
            col(User.email).in_(owners[i:i + 900]), col(User.disabled_at).is_(None))).scalars())
    return found


def flags_for(session: Session, owners: Counter[str | None], rules: Ruleset) -> list[OwnerFlag]:
    """Of `owners` (owner -> how many contacts), those nobody can act for, most contacts first."""
    named = sorted(o for o in owners if o)
    users = _signable(session, named)
    out = [OwnerFlag(o, owners[o]) for o in named if o not in users]
    if owners.get(None) and approval_steps(rules):
        out.append(OwnerFlag(None, owners[None]))
    return sorted(out, key=lambda f: (-f.contacts, f.owner or ""))


def all_flags(session: Session, rules: Ruleset) -> list[OwnerFlag]:
    """Every contact's owner nobody can act for (one GROUP BY over the contacts)."""
    owners: Counter[str | None] = Counter({owner: n for owner, n in session.execute(
        select(col(Contact.owner), func.count()).group_by(col(Contact.owner)))})
    return flags_for(session, owners, rules)


def warning(flag: OwnerFlag, steps: list[str]) -> str:
    """The line `contacts import` prints for one flag."""
    if flag.owner is None:
        return (f"warning: {flag.contacts} contact(s) have no owner, and steps a rep approves "
                f"({', '.join(steps[:3])}{', ...' if len(steps) > 3 else ''}) will wait for nobody: give them an "
                "owner column, or hand them to a rep")
    return (f"warning: {flag.contacts} contact(s) are owned by {flag.owner}, who has no user account that can "
            f"sign in: nobody can approve their touches (outreach users add {flag.owner} --role rep)")
