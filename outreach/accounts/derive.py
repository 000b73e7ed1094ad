"""Members' stages -> the account's stage, with the members that prove it. Pure.

An account is at the furthest stage (in the order of the buying stages) whose `accounts.stages` rule
holds for its members; a member counts as having reached a stage when they are at it or beyond. Like
a contact's, an account's stage is kept once reached."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from outreach.accounts.rules import AccountRules, AccountStage


@dataclass(frozen=True)
class Member:
    id: int
    email: str | None
    role: str | None
    stage: str


@dataclass(frozen=True)
class AccountAdvance:
    stage: str
    rule: AccountStage
    index: int  # the rule's place in accounts.stages
    members: tuple[Member, ...]  # the members that made it hold

    def proof(self, where: str = "") -> dict[str, Any]:
        """What the account page and `accounts show` print as the proof."""
        return {"rule": self.rule.when.describe(), "where": where,
                "members": [{"id": m.id, "email": m.email, "role": m.role, "stage": m.stage} for m in self.members]}


def holds(rule: AccountStage, members: Sequence[Member], rank: dict[str, int]) -> tuple[Member, ...] | None:
    """The members that satisfy `rule` (as many as it needs), or None when it does not hold."""
    need = rule.when.need
    floor = rank.get(need.stage)
    if floor is None:
        return None
    fit = [m for m in members if rank.get(m.stage, -1) >= floor and (need.role is None or m.role == need.role)]
    if len(fit) < need.count:
        return None
    fit.sort(key=lambda m: (-rank.get(m.stage, -1), m.id))  # the strongest evidence first
    return tuple(fit[:need.count])


def account_stage(rules: AccountRules, stage_ids: Sequence[str], current: str,
                  members: Sequence[Member]) -> AccountAdvance | None:
    """The furthest stage beyond `current` the members prove, or None (the account stays where it is)."""
    rank = {s: i for i, s in enumerate(stage_ids)}
    best: AccountAdvance | None = None
    for i, rule in enumerate(rules.stages):
        target = rank.get(rule.stage)
        if target is None or target <= rank.get(current, -1):
            continue
        if best is not None and target <= rank[best.stage]:
            continue
        found = holds(rule, members, rank)
        if found is not None:
            best = AccountAdvance(rule.stage, rule, i, found)
    return best
