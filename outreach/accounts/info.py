"""Accounts as people read them: the list, and one account with its members, stage and proof, its
timeline and who on the seller's side has been in touch. The CLI and the pages call the same
functions; `owner` limits what a rep sees to accounts where they own a member."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any, TypedDict

from sqlalchemy import ColumnElement, exists, func, or_, select
from sqlalchemy.orm import aliased
from sqlmodel import Session, col

from outreach.errors import NotFound
from outreach.models import Account, Contact, Evidence, Preference, StageChange, Touch, TouchStatus

TIMELINE_LIMIT = 200


class AccountRef(TypedDict):
    id: str
    name: str | None
    domain: str | None


class MemberJson(TypedDict):
    id: int
    email: str | None
    role: str | None
    stage: str


class AccountJson(TypedDict):
    """SPEC section 11: `outreach accounts show --json`."""

    account: AccountRef
    stage: str
    proof: dict[str, Any] | None
    members: list[MemberJson]
    paused_until: str | None


def iso(dt: datetime | None) -> str | None:
    return dt.isoformat().replace("+00:00", "Z") if dt else None


def _owned_by(owner: str) -> ColumnElement[bool]:
    member = aliased(Contact)  # apart from the Contact the list joins for its counts
    return exists().where(col(member.account_id) == col(Account.id), col(member.owner) == owner.lower())


def list_accounts(session: Session, *, owner: str | None = None, text: str | None = None,
                  stage: str | None = None, limit: int | None = None, offset: int = 0
                  ) -> tuple[list[dict[str, Any]], int]:
    """Accounts (furthest stage first is for the reader to sort): each with its member count; and the
    total that match. Two queries for the page, one for the count."""
    conds: list[ColumnElement[bool]] = []
    if owner:
        conds.append(_owned_by(owner))
    if text:
        like = f"%{text.strip().lower()}%"
        conds.append(or_(func.lower(col(Account.id)).like(like), func.lower(col(Account.name)).like(like),
                         func.lower(col(Account.domain)).like(like)))
    if stage is not None:
        conds.append(col(Account.stage) == stage)
    total = session.execute(select(func.count()).select_from(Account).where(*conds)).scalar_one()
    # one query with the member counts: PostgreSQL groups by the primary key and may select its columns
    q = (select(Account, func.count(col(Contact.id))).outerjoin(Contact, col(Contact.account_id) == col(Account.id))
         .where(*conds).group_by(col(Account.id)).order_by(col(Account.name), col(Account.id)).offset(offset))
    rows = session.execute(q.limit(limit) if limit else q).all()
    return [{"account": {"id": a.id, "name": a.name, "domain": a.domain}, "stage": a.stage,
             "member_count": n, "paused_until": iso(a.paused_until)} for a, n in rows], total


def find_account(session: Session, ref: str, owner: str | None = None) -> Account:
    """An account by id or domain; NotFound (also for a rep who owns none of its members)."""
    text = ref.strip()
    q = select(Account).where(or_(col(Account.id) == text, col(Account.domain) == text.lower()))
    if owner:
        q = q.where(_owned_by(owner))
    found = session.execute(q.order_by(col(Account.id)).limit(1)).scalar_one_or_none()
    if not isinstance(found, Account):
        raise NotFound(f"no account '{text}' (give an account id or a domain; `outreach accounts list` "
                       "shows them)")
    return found


def members_of(session: Session, account_id: str) -> list[Contact]:
    return list(session.execute(select(Contact).where(col(Contact.account_id) == account_id).order_by(
        col(Contact.id))).scalars())


def account_json(session: Session, ref: str, now: datetime, owner: str | None = None) -> AccountJson:
    acc = find_account(session, ref, owner)
    members = members_of(session, acc.id)
    return _shape(acc, members, now)


def _shape(acc: Account, members: list[Contact], now: datetime) -> AccountJson:
    paused = acc.paused_until if acc.paused_until and acc.paused_until > now else None
    return {"account": {"id": acc.id, "name": acc.name, "domain": acc.domain}, "stage": acc.stage,
            "proof": dict(acc.stage_proof) or None,
            "members": [{"id": c.id or 0, "email": c.email, "role": c.role, "stage": c.stage} for c in members],
            "paused_until": iso(paused)}


def account_page(session: Session, ref: str, now: datetime, owner: str | None = None,
                 sender: str = "") -> dict[str, Any]:
    """What `/accounts/{id}` shows: the JSON shape, plus each member's name, title, owner and stated
    channels, the account's timeline (stage moves, evidence, touches of all members, newest first) and
    the seller's people who have been in touch (by touches sent; `sender` for unowned members)."""
    acc = find_account(session, ref, owner)
    members = members_of(session, acc.id)
    ids = [c.id or 0 for c in members]
    by_id = {c.id: c for c in members}
    stated: dict[int, dict[str, str]] = {}
    for cid, inter, channel in session.execute(select(
            col(Preference.contact_id), col(Preference.interaction), col(Preference.channel)).where(
            col(Preference.contact_id).in_(ids))):
        stated.setdefault(cid, {})[inter] = channel
    events: list[dict[str, Any]] = []
    for ev in session.execute(select(Evidence).where(col(Evidence.contact_id).in_(ids)).order_by(
            col(Evidence.occurred_at).desc()).limit(TIMELINE_LIMIT)).scalars():
        events.append({"at": ev.occurred_at, "kind": "evidence", "title": ev.type,
                       "who": by_id[ev.contact_id], "detail": ev.source})
    for ch in session.execute(select(StageChange).where(col(StageChange.contact_id).in_(ids)).order_by(
            col(StageChange.at).desc()).limit(TIMELINE_LIMIT)).scalars():
        events.append({"at": ch.at, "kind": "stage", "title": f"{ch.from_stage} → {ch.to_stage}",
                       "who": by_id[ch.contact_id], "detail": "stage"})
    sellers: Counter[str] = Counter()
    for t in session.execute(select(Touch).where(col(Touch.contact_id).in_(ids)).order_by(
            col(Touch.due_at).desc()).limit(TIMELINE_LIMIT)).scalars():
        who = by_id[t.contact_id]
        events.append({"at": t.sent_at or t.due_at, "kind": "touch", "title": f"{t.step} ({t.channel or 'no channel'})",
                       "who": who, "detail": t.reason or "", "status": t.status, "link": f"/queue/{t.id}"})
        if t.status == TouchStatus.SENT:
            sellers[who.owner or sender] += 1
    for c in members:  # the owners are in touch too, whether or not a touch went out yet
        sellers.setdefault(c.owner or sender, 0)
    events.sort(key=lambda e: e["at"], reverse=True)
    return {"json": _shape(acc, members, now), "account": acc, "members": members, "stated": stated,
            "timeline": events[:TIMELINE_LIMIT],
            "sellers": [{"email": e, "sent": n} for e, n in sorted(sellers.items(), key=lambda kv: (-kv[1], kv[0]))
                        if e]}
