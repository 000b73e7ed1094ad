"""Writing accounts: their stages recomputed from their members (set-based, in chunks of accounts),
the pause one member's answer puts on the others, and what the dispatcher needs to hold a touch."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlmodel import Session, col

from outreach.accounts.derive import Member, account_stage
from outreach.accounts.rules import AccountRules
from outreach.models import Account, Contact, Evidence, Touch

CHUNK = 900  # accounts per round trip: under SQLite's bound-parameter limit


@dataclass(frozen=True)
class Hold:
    """Why a touch to an account member waits, and until when."""

    until: datetime
    reason: str


@dataclass
class AccountState:
    """What the dispatcher needs about one contact's account: its pause, and its sends of the last day
    (shared by all members of the account, so a send to one counts for all)."""

    account: str
    name: str
    paused_until: datetime | None
    paused_by: int | None
    sent: list[datetime]

    def hold(self, contact_id: int, now: datetime, cap: int | None, pause_applies: bool) -> Hold | None:
        """Pure: the pause (unless the rule ignores it, or this member is the one who answered), then
        the account's daily cap."""
        if pause_applies and self.paused_until and self.paused_until > now and self.paused_by != contact_id:
            return Hold(self.paused_until, f"waiting: another member of {self.name} answered; automated "
                                           f"touches to the account pause until then")
        recent = sorted(t for t in self.sent if t > now - timedelta(days=1))
        if cap and len(recent) >= cap:
            return Hold(recent[-cap] + timedelta(days=1),
                        f"waiting: {self.name} had its {cap} touch(es) for the day (the account's cap)")
        return None


def refresh_stages(session: Session, rules: AccountRules, stage_ids: Sequence[str], account_ids: Iterable[str],
                   now: datetime, rule_at: Sequence[str] = ()) -> list[str]:
    """Recompute the stage of these accounts from their members; returns those that advanced. Two
    queries per chunk of accounts, one executemany for those that moved. `rule_at`: each account rule's
    FILE:LINE, kept in the proof."""
    if not rules.stages:
        return []
    ids = sorted(set(account_ids))
    moved: list[str] = []
    # only members at or beyond the lowest stage a rule asks for can count: the rest are never loaded
    lowest = min((stage_ids.index(r.when.need.stage) for r in rules.stages if r.when.need.stage in stage_ids),
                 default=len(stage_ids))
    counted = list(stage_ids[lowest:])
    for i in range(0, len(ids), CHUNK):
        part = ids[i:i + CHUNK]
        members: dict[str, list[Member]] = defaultdict(list)
        for aid, cid, email, role, stage in session.execute(
                select(col(Contact.account_id), col(Contact.id), col(Contact.email), col(Contact.role),
                       col(Contact.stage)).where(
                    # `stage || ''`: a filter on the rows the account index finds; SQLite would otherwise
                    # pick the stage index and scan every contact at those stages (measured: 2x slower)
                    col(Contact.account_id).in_(part), (col(Contact.stage) + "").in_(counted))):
            members[aid].append(Member(cid, email, role, stage))
        if not members:
            continue
        current: dict[str, str] = {aid: stage for aid, stage in session.execute(
            select(col(Account.id), col(Account.stage)).where(col(Account.id).in_(list(members))))}
        changes = []
        for aid, stage in current.items():
            advance = account_stage(rules, stage_ids, stage, members[aid])
            if advance is not None:
                changes.append({"id": aid, "stage": advance.stage, "stage_entered_at": now, "updated_at": now,
                                "stage_proof": advance.proof(rule_at[advance.index] if advance.index < len(rule_at)
                                                             else "") | {"at": now.isoformat()}})
        if changes:
            session.execute(update(Account), changes)
            moved += [str(c["id"]) for c in changes]
    return moved


def accounts_of(session: Session, contact_ids: Sequence[int]) -> dict[int, str]:
    """contact id -> account id, for those that have one."""
    out: dict[int, str] = {}
    for i in range(0, len(contact_ids), CHUNK):
        for cid, aid in session.execute(select(col(Contact.id), col(Contact.account_id)).where(
                col(Contact.id).in_(contact_ids[i:i + CHUNK]), col(Contact.account_id).is_not(None))):
            out[cid] = aid
    return out


def pause_for_answers(session: Session, rules: AccountRules, recorded: Sequence[Evidence], now: datetime) -> int:
    """A member's answer (`accounts.pause.after`) pauses automated touches to the other members of the
    account for `accounts.pause.for`; a later answer extends the pause. Returns the accounts paused."""
    answers = [ev for ev in recorded if ev.type in rules.pause.after]
    if not answers or rules.pause.for_ <= timedelta(0):
        return 0
    account = accounts_of(session, sorted({ev.contact_id for ev in answers}))
    latest: dict[str, tuple[datetime, int]] = {}
    for ev in answers:
        aid = account.get(ev.contact_id)
        if aid is not None and (aid not in latest or ev.occurred_at > latest[aid][0]):
            latest[aid] = (ev.occurred_at, ev.contact_id)
    if not latest:
        return 0
    until: dict[str, datetime | None] = {aid: at for aid, at in session.execute(
        select(col(Account.id), col(Account.paused_until)).where(col(Account.id).in_(list(latest))))}
    rows = [{"id": aid, "paused_until": at + rules.pause.for_, "paused_by": cid, "updated_at": now}
            for aid, (at, cid) in latest.items()
            if aid in until and ((before := until[aid]) is None or before < at + rules.pause.for_)]
    if rows:
        session.execute(update(Account), rows)
    return len(rows)


def states(session: Session, rules: AccountRules, contact_ids: Sequence[int], now: datetime
           ) -> dict[int, AccountState]:
    """contact id -> its account's state (one object per account, shared by its members in the batch):
    two queries per chunk of accounts; none when the rules pause nothing and cap nothing."""
    if not rules.daily_cap and (not rules.pause.after or rules.pause.for_ <= timedelta(0)):
        return {}
    account = accounts_of(session, list(contact_ids))
    aids = sorted(set(account.values()))
    by_id: dict[str, AccountState] = {}
    for i in range(0, len(aids), CHUNK):
        part = aids[i:i + CHUNK]
        for aid, until, by, name in session.execute(select(
                col(Account.id), col(Account.paused_until), col(Account.paused_by), col(Account.name)).where(
                col(Account.id).in_(part))):
            by_id[aid] = AccountState(aid, name or aid, until, by, [])
        if rules.daily_cap:
            for aid, at in session.execute(select(col(Contact.account_id), col(Touch.sent_at)).join(
                    Contact, col(Contact.id) == col(Touch.contact_id)).where(
                    col(Contact.account_id).in_(part), col(Touch.sent_at) > now - timedelta(days=1))):
                if aid in by_id and at is not None:
                    by_id[aid].sent.append(at)
    return {cid: by_id[aid] for cid, aid in account.items() if aid in by_id}


def committee(session: Session, contact_id: int, account_id: str | None) -> dict[str, Any]:
    """What templates see as `account`: the contact's account and the *other* members of it (first
    name, last name, title, role, stage), so content can name the rest of the committee."""
    if not account_id:
        return {"id": None, "name": None, "domain": None, "stage": None, "members": []}
    acc = session.get(Account, account_id)
    members = [{"first_name": c.first_name, "last_name": c.last_name, "title": c.title, "role": c.role,
                "stage": c.stage, "email": c.email}
               for c in session.execute(select(Contact).where(
                   col(Contact.account_id) == account_id, col(Contact.id) != contact_id).order_by(
                   col(Contact.id)).limit(50)).scalars()]
    return {"id": account_id, "name": acc.name if acc else None, "domain": acc.domain if acc else None,
            "stage": acc.stage if acc else None, "members": members}


def member_ids(session: Session, account_ids: Sequence[str]) -> list[int]:
    out: list[int] = []
    for i in range(0, len(account_ids), CHUNK):
        out += session.execute(select(col(Contact.id)).where(
            col(Contact.account_id).in_(account_ids[i:i + CHUNK]))).scalars().all()
    return out
