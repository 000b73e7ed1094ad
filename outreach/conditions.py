"""Which contacts a rule applies to, and what a new touch starts as: a playbook step's conditions as
SQL (its stage, its time since stage entry, no touch yet for this entry, no `skip_if` evidence since
the stage began, its committee roles and account stages), a trigger's `if:` on the evidence and the
contact, and a new touch's status (suppressed, waiting for a rep, approved, or expired before it
could be queued). The planner runs the queries and writes the touches; this module decides."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, exists
from sqlmodel import col

from outreach import batch_loads
from outreach.context import contact_context, evidence_context
from outreach.models import Account, Contact, Evidence, Touch, TouchStatus
from outreach.ruleset import Approval, Step, Trigger
from outreach.templating import Condition, compile_condition, eval_condition


def skip_if(step: Step) -> ColumnElement[bool] | None:
    """The contact has evidence of one of the step's `skip_if` types since it entered its stage
    (from the moment of entry on); None when the step names none."""
    if not step.skip_if:
        return None
    return exists().where(col(Evidence.contact_id) == col(Contact.id), col(Evidence.type).in_(step.skip_if),
                          col(Evidence.occurred_at) >= col(Contact.stage_entered_at))


def step_due(stage: str, step: Step, now: datetime, contact_ids: list[int] | None) -> list[ColumnElement[bool]]:
    """Contacts in `stage` whose step came due by `now` (stage entered `earliest` ago or more), with
    no touch of it for this stage entry yet, no `skip_if` evidence, in one of its roles and account
    stages (when it names some); only `contact_ids` when given."""
    rule = f"playbook:{stage}"
    already = exists().where(col(Touch.contact_id) == col(Contact.id), col(Touch.rule) == rule,
                             col(Touch.step) == step.id, col(Touch.stage_entry) == col(Contact.stage_entry))
    conds = [col(Contact.stage) == stage, col(Contact.stage_entered_at) <= now - step.earliest, ~already]
    skipped = skip_if(step)
    if skipped is not None:
        conds.append(~skipped)
    if step.role:  # a step for some committee roles only
        conds.append(col(Contact.role).in_(step.role))
    if step.account_stage:  # a step only while the contact's account is at one of these stages
        conds.append(exists().where(col(Account.id) == col(Contact.account_id),
                                    col(Account.stage).in_(step.account_stage)))
    if contact_ids is not None:  # one expanding parameter: `in_(list)` coerced each id on every call
        conds.append(col(Contact.id).in_(batch_loads.expanding(contact_ids, "plan_ids")))
    return conds


@dataclass
class TriggerConditions:
    """Each trigger's `if:` compiled once (a rule reload makes a new planner, and a new cache)."""

    _compiled: dict[str, Condition] = field(default_factory=dict)

    def holds(self, trigger: Trigger, contact: Contact, evidence: Evidence, now: datetime) -> bool:
        """Whether the trigger's `if:` holds for this contact and evidence at `now`; no `if:` holds."""
        if not trigger.if_:
            return True
        if trigger.if_ not in self._compiled:
            self._compiled[trigger.if_] = compile_condition(trigger.if_)
        return eval_condition(self._compiled[trigger.if_], {
            "contact": contact_context(contact), "evidence": evidence_context(evidence), "now": now})


def new_status(channel: str | None, approval: Approval) -> TouchStatus:
    """A new touch's status: no channel reaches the contact, a rep approves it, or it goes when due."""
    if channel is None:
        return TouchStatus.SUPPRESSED
    return TouchStatus.PENDING if approval == "rep" else TouchStatus.APPROVED


@dataclass(frozen=True)
class TriggerTouch:
    """A trigger's touch as it is queued: its status, the reason when it will not go, and when its
    `within` ends (None: no limit)."""

    status: TouchStatus
    reason: str | None
    expires_at: datetime | None


def trigger_touch(trigger: Trigger, channel: str | None, why: str, occurred_at: datetime,
                  now: datetime) -> TriggerTouch:
    """The touch a trigger queues for evidence that occurred at `occurred_at`: suppressed (with the
    channel choice's `why`) when no channel reaches the contact, expired when its `within` ended by
    `now` (evidence recorded late), else as its approval says."""
    expires = occurred_at + trigger.within if trigger.within else None
    status = new_status(channel, trigger.approval)
    reason = why if channel is None else None
    if expires is not None and expires <= now and status != TouchStatus.SUPPRESSED:
        status, reason = TouchStatus.EXPIRED, f"its within ({trigger.within}) passed before it could be queued"
    return TriggerTouch(status, reason, expires)


def approve_by(status: TouchStatus, now: datetime, expires_after: timedelta | None) -> datetime | None:
    """When a touch waiting for a rep expires unapproved (policy.approval_expires_after), or None."""
    return now + expires_after if status == TouchStatus.PENDING and expires_after else None
