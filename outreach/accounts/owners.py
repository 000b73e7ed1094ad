"""Owners: who a contact belongs to on the seller's side, besides the `owner` column of an import.
By rule (`accounts: owners:`): the unowned contacts of an import go to a rep of their territory's
round robin, the one with the fewest accounts (then the first listed), and a whole account goes to one
rep (an account that already has an owner gives them its new members). A rep may claim an unowned
contact on its page. Every change is kept (OwnerChange) and shown on the contact's timeline.

Set-based: a few queries per 900 contacts, one UPDATE per rep and chunk, one INSERT per chunk."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import func, insert, select, update
from sqlmodel import Session, col

from outreach import batch_loads
from outreach.accounts.rules import Owners
from outreach.errors import InvalidInput, InvalidTransition
from outreach.models import Contact, OwnerChange, User


def _loads(session: Session, reps: Sequence[str]) -> dict[str, int]:
    """Accounts (a contact without an account counts as one) each rep owns now."""
    load = dict.fromkeys(reps, 0)
    q = (select(col(Contact.owner), func.count(func.distinct(col(Contact.account_id))))
         .where(col(Contact.owner).in_(list(reps)), col(Contact.account_id).is_not(None)).group_by(col(Contact.owner)))
    lone = (select(col(Contact.owner), func.count()).where(col(Contact.owner).in_(list(reps)),
                                                          col(Contact.account_id).is_(None))
            .group_by(col(Contact.owner)))
    for query in (q, lone):
        for owner, n in session.execute(query):
            if owner in load:
                load[owner] += int(n)
    return load


def assign_owners(session: Session, rules: Owners | None, now: datetime,
                  contact_ids: Sequence[int] | None = None) -> int:
    """Give the unowned (among `contact_ids`, else everybody) their owner by the rules; returns how
    many got one."""
    if rules is None or (contact_ids is not None and not contact_ids):
        return 0
    base = select(col(Contact.id), col(Contact.account_id), col(Contact.attributes)).where(col(Contact.owner).is_(None))
    queries = ([base.where(col(Contact.id).in_(list(part))) for part in batch_loads.chunks(sorted(set(contact_ids)))]
               if contact_ids is not None else [base])
    unowned: list[tuple[int, str | None, str | None]] = []  # (contact, account, territory)
    for query in queries:
        for cid, account, attrs in session.execute(query):
            if cid is not None:
                value = (attrs or {}).get(rules.by) if rules.by else None
                unowned.append((cid, account, str(value).strip() if value not in (None, "") else None))
    if not unowned:
        return 0
    accounts = sorted({a for _c, a, _t in unowned if a})
    owned: dict[str, str] = {}  # an account that already has an owner keeps them for its new members
    for i in range(0, len(accounts), 900):
        for account, owner in session.execute(
                select(col(Contact.account_id), func.min(col(Contact.owner)))
                .where(col(Contact.account_id).in_(accounts[i:i + 900]), col(Contact.owner).is_not(None))
                .group_by(col(Contact.account_id))):
            if account and owner:
                owned[account] = owner
    units: dict[str, list[tuple[int, str | None]]] = defaultdict(list)  # account (or "#id") -> members
    for cid, account, territory in unowned:
        units[account or f"#{cid}"].append((cid, territory))
    reps = sorted({r for pool in rules.round_robin.values() for r in pool})
    load = _loads(session, reps)
    chosen: dict[str, list[int]] = defaultdict(list)
    for unit, members in sorted(units.items(), key=lambda kv: kv[1][0][0]):  # oldest contact first
        owner = owned.get(unit)
        if owner is None:
            territory = next((t for _c, t in members if t), None)
            pool = rules.pool(territory)
            if not pool:
                continue  # no rep for this territory: stays unowned, for a rep to claim
            owner = min(pool, key=lambda r: (load[r], pool.index(r)))
            load[owner] += 1
        chosen[owner].extend(c for c, _t in members)
    done = 0
    for owner, ids in chosen.items():
        for part in batch_loads.chunks(ids):
            session.execute(update(Contact).where(col(Contact.id).in_(list(part)), col(Contact.owner).is_(None))
                            .values(owner=owner))
            session.execute(insert(OwnerChange), [{"contact_id": c, "from_owner": None, "to_owner": owner,
                                                   "how": "rule", "actor": "rule", "at": now} for c in part])
            done += len(part)
    return done


def owner_changes(session: Session, contact_id: int) -> list[dict[str, str | None]]:
    """The contact's owner changes, oldest first, for its timeline."""
    rows = session.execute(select(OwnerChange).where(col(OwnerChange.contact_id) == contact_id)
                           .order_by(col(OwnerChange.at), col(OwnerChange.id))).scalars().all()
    return [{"from": r.from_owner, "to": r.to_owner, "how": r.how, "actor": r.actor,
             "at": (r.at if r.at.tzinfo else r.at.replace(tzinfo=UTC)).isoformat()} for r in rows]


def claim(session: Session, contact: Contact, user: User, now: datetime) -> Contact:
    """`user` (a rep or admin) takes an unowned contact; InvalidTransition when someone owns it."""
    if user.role not in ("rep", "admin"):
        raise InvalidInput(f"{user.email} is a {user.role}: only reps and admins own contacts")
    if contact.owner:
        raise InvalidTransition(f"{contact.owner} owns this contact already: they can hand it over")
    # the UPDATE's own condition keeps two reps claiming at once from both winning
    won = session.execute(update(Contact).where(col(Contact.id) == contact.id, col(Contact.owner).is_(None))
                          .values(owner=user.email))
    if not getattr(won, "rowcount", 0):
        raise InvalidTransition("someone claimed this contact a moment ago")
    session.add(OwnerChange(contact_id=contact.id or 0, from_owner=None, to_owner=user.email, how="claimed",
                            actor=user.email, at=now))
    session.flush()
    session.refresh(contact)
    return contact
