"""Rules x contacts -> touches. Set-based: for each playbook step one query finds the contacts in
that stage whose step came due and has no touch yet; channels are picked in batches; touches are
inserted in bulk, and the unique dedupe key makes a second planner (or a second run) a no-op.

Where SQL alone knows the channel (no suppression, no stated preference, nothing learned about the
contact, no holdout or experiment on the step) a step's touches are one INSERT ... SELECT: the channel
then depends only on the contact's addresses and consent, so its choice is computed once per
combination in Python (by pick_channel itself, reasons and all) and written as a CASE. Only the other
contacts go through the per-contact path."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import ColumnElement, Row, and_, case, cast, exists, func, literal, literal_column, select, text
from sqlalchemy import String as SqlString
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col

from outreach import batch_loads, conditions
from outreach.config import Policy
from outreach.content import available_channels
from outreach.experiments.assign import Allocator, in_holdout
from outreach.kinds import TASK_CHANNELS
from outreach.models import Contact, Evidence, Preference, Suppression, Touch, TouchStatus, table_of
from outreach.policy import Reach, decide
from outreach.preferences import ChannelLearning, Learner, QuietLearning, pick_channel
from outreach.ruleset import Ruleset, Step, Trigger

BATCH = 1000


@dataclass
class PlanResult:
    queued: int = 0
    by_status: Counter[str] = field(default_factory=Counter)
    by_step: Counter[str] = field(default_factory=Counter)
    by_channel: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    variants: dict[str, Counter[str]] = field(default_factory=dict)  # step -> experiment variant -> touches
    # dry runs only: (contact id, email or phone, "playbook:<stage>/<step>", channel, status) per touch
    rows: list[tuple[int, str | None, str, str | None, str]] = field(default_factory=list)


@dataclass
class Planner:
    rules: Ruleset
    content_dir: Path
    email_consent: str = "opt_out"
    approval_expires_after: timedelta | None = None
    learner_for: ChannelLearning | None = None  # set by channel learning
    holdout: float = 0.0  # policy.holdout: the share of contacts no automated touch goes to
    policy: Policy | None = None  # a task's (call, social) due time follows its window and the caps
    timezone: str = "UTC"  # the project's: a buyer's zone when theirs is unknown
    _conditions: conditions.TriggerConditions = field(default_factory=conditions.TriggerConditions)

    def plan(self, session: Session, now: datetime, contact_ids: list[int] | None = None,
             dry_run: bool = False) -> PlanResult:
        """Queue every playbook step that is due now. `contact_ids` limits it to some contacts
        (re-planning one buyer after new evidence); dry_run computes without writing."""
        result = PlanResult()
        templates: dict[tuple[str, ...], set[str]] = {}
        postgres = session.get_bind().dialect.name == "postgresql"
        allocator = Allocator(self.holdout)
        # a few contacts (a re-plan after new evidence) cost less through the per-contact path, and
        # only the steps of the stages they are in need a query
        few = contact_ids is not None and len(contact_ids) < BATCH
        stages = set(session.execute(select(col(Contact.stage)).where(col(Contact.id).in_(contact_ids or [])
                                                                      ).distinct()).scalars()) if few else None
        for stage, steps in self.rules.playbooks.items():
            if stages is not None and stage not in stages:
                continue
            for step in steps:
                if step.contents not in templates:  # with variants: the channels every variant has
                    templates[step.contents] = set.intersection(*(available_channels(self.content_dir, c)
                                                                  for c in step.contents))
                before = result.queued
                quiet = None if dry_run or few else self._set_based(session, step)
                only: ColumnElement[bool] | None = None
                if quiet is not None:
                    result.queued += self._insert_select(session, result, stage, step, now, contact_ids,
                                                         templates[step.contents], quiet)
                    only = ~quiet  # the rest need the per-contact choice
                for batch in self._due(session, stage, step, now, contact_ids, only):
                    rows = self._touches(session, batch, stage, step, now, templates[step.contents])
                    allocator.apply(session, stage, step, rows)
                    if dry_run:
                        self._count(result, stage, step, rows, batch)
                        result.rows += [(r.id, r.email or r.phone, f"playbook:{stage}/{step.id}", row["channel"],
                                         row["status"]) for row, r in zip(rows, batch, strict=True)]
                        result.queued += len(rows)
                        continue
                    inserted = batch_loads.insert_ignore(session, table_of(Touch), rows, ["dedupe_key"])
                    if inserted:
                        self._count(result, stage, step, rows, batch)
                        result.queued += inserted
                if postgres and not dry_run and result.queued - before >= BATCH:
                    # Stale statistics make PostgreSQL estimate the next step's (rule, step) match at one
                    # row and run the anti-join as a nested loop over the whole touch table: quadratic.
                    # ANALYZE sees this transaction's own rows; a role that does not own the table only
                    # gets a warning.
                    session.execute(text("ANALYZE touch"))
        return result

    def _set_based(self, session: Session, step: Step) -> ColumnElement[bool] | None:
        """The condition on `contact` under which this step's channel is known in SQL, or None if the
        step needs the per-contact path for everyone (holdout and experiments hash each contact id)."""
        # (a task's due time is its window's, worked out per contact)
        if self.holdout > 0 or step.variants or step.after.microseconds or step.channel in TASK_CHANNELS:
            return None
        conds: list[ColumnElement[bool]] = [
            ~exists().where(col(Suppression.contact_id) == col(Contact.id)),
            ~exists().where(col(Preference.contact_id) == col(Contact.id),
                            col(Preference.interaction) == step.interaction)]
        if self.learner_for is not None:
            if not isinstance(self.learner_for, QuietLearning):
                return None
            learner_quiet = self.learner_for.quiet(session, step.interaction)
            if learner_quiet is None:
                return None
            conds.append(learner_quiet)
        return and_(*conds)

    def _insert_select(self, session: Session, result: PlanResult, stage: str, step: Step, now: datetime,
                       contact_ids: list[int] | None, templates: set[str], quiet: ColumnElement[bool]) -> int:
        """One INSERT ... SELECT of the step's touches for the contacts `quiet` holds for; counted into
        `result` from the rows it wrote (ids above the largest before it)."""
        postgres = session.get_bind().dialect.name == "postgresql"
        # (has email, has phone, consent_email, consent_sms) -> the pick, encoded as one small integer
        has_email = case((func.coalesce(col(Contact.email), "") != "", 1), else_=0)
        has_phone = case((func.coalesce(col(Contact.phone), "") != "", 2), else_=0)
        ce = case((col(Contact.consent_email).is_(None), 0), (col(Contact.consent_email).is_(True), 4), else_=8)
        cs = case((col(Contact.consent_sms).is_(None), 0), (col(Contact.consent_sms).is_(True), 12), else_=24)
        order = self.rules.interactions[step.interaction].channels
        channel_of: dict[int, str | None] = {}
        reason_of: dict[int, str | None] = {}
        for key in range(36):
            consent: list[bool | None] = [None, True, False]
            reach = Reach("x" if key & 1 else None, "x" if key & 2 else None, consent[(key >> 2) % 3],
                          consent[key // 12])
            pick = pick_channel(order=order, reach=reach, fixed=step.channel, templates=templates,
                                email_consent=self.email_consent)
            channel_of[key], reason_of[key] = (str(pick.channel) if pick.channel else None), pick.reason
        inner = select(col(Contact.id).label("cid"), col(Contact.stage_entry).label("entry"),
                       col(Contact.stage_entered_at).label("entered"),
                       (has_email + has_phone + ce + cs).label("k")
                       ).where(*conditions.step_due(stage, step, now, contact_ids), quiet).subquery()

        def by_key(values: dict[int, str | None]) -> Any:
            # inline literals: 36 bound parameters per column would make a long statement to bind per step
            return case({k: literal_column(_quoted(v)) for k, v in values.items()}, value=inner.c.k)

        status_of: dict[int, str | None] = {k: conditions.new_status(c, step.approval).value
                                             for k, c in channel_of.items()}
        if postgres:
            due = inner.c.entered + step.after
        else:  # SQLite keeps 'YYYY-MM-DD HH:MM:SS.ffffff': shift the seconds, keep the fraction as it was
            due = func.datetime(func.substr(inner.c.entered, 1, 19), f"+{int(step.after.total_seconds())} seconds"
                                ).concat(func.substr(inner.c.entered, 20))
        pending_by = now + self.approval_expires_after if self.approval_expires_after else None
        approve_by = case((by_key(status_of) == TouchStatus.PENDING.value, literal(pending_by)), else_=None) \
            if pending_by is not None else literal(None)
        minutes = int(step.meeting.duration.total_seconds() // 60) if step.meeting else None
        cols = {"contact_id": inner.c.cid,
                "dedupe_key": cast(inner.c.cid, SqlString).concat(f":{stage}:").concat(
                    cast(inner.c.entry, SqlString)).concat(f":{step.id}"),
                "stage": literal(stage), "stage_entry": inner.c.entry, "rule": literal(f"playbook:{stage}"),
                "step": literal(step.id), "interaction": literal(step.interaction), "content": literal(step.content),
                "channel": by_key(channel_of), "channel_reason": by_key(reason_of),
                "channel_fixed": literal(step.channel is not None), "status": by_key(status_of),
                "reason": by_key({k: reason_of[k] if c is None else None for k, c in channel_of.items()}),
                "due_at": due, "approve_by": approve_by, "meeting_minutes": literal(minutes),
                "attempts": literal(0), "meeting_sequence": literal(0), "created_at": literal(now),
                "updated_at": literal(now)}
        touch = table_of(Touch)
        mod: Any = postgresql if postgres else sqlite
        # the WHERE keeps SQLite from reading ON CONFLICT as a join's ON
        stmt = mod.insert(touch).from_select(list(cols), select(*cols.values()).select_from(inner).where(
            inner.c.cid.is_not(None))).on_conflict_do_nothing(index_elements=["dedupe_key"])
        last = session.execute(select(func.max(col(Touch.id)))).scalar() or 0
        session.execute(stmt)
        # what went in is counted from the rows (ids above the largest before): rowcount of an
        # INSERT ... SELECT ... ON CONFLICT is not reliable across drivers
        step_key = f"playbook:{stage}/{step.id}"
        mine = [col(Touch.id) > last, col(Touch.rule) == f"playbook:{stage}", col(Touch.step) == step.id]
        counts: Any = session.execute(select(col(Touch.channel), col(Touch.status), func.count())
                                      .where(*mine).group_by(col(Touch.channel), col(Touch.status)))
        inserted = 0
        for channel, status, n in counts:
            result.by_status[status] += n
            result.by_channel[channel or "none"] += n
            result.by_step[step_key] += n
            inserted += n
        examples = result.examples.setdefault(step_key, []) if inserted else []
        if inserted and len(examples) < 3:
            for who, channel, status, reason in session.execute(
                    select(func.coalesce(col(Contact.email), col(Contact.phone)), col(Touch.channel),
                           col(Touch.status), col(Touch.channel_reason)).join(
                        Contact, col(Contact.id) == col(Touch.contact_id)).where(*mine).order_by(col(Touch.id))
                    .limit(3 - len(examples))):
                examples.append({"contact": who, "channel": channel, "status": status, "reason": reason})
        return inserted

    def _due(self, session: Session, stage: str, step: Step, now: datetime,
             contact_ids: list[int] | None, only: ColumnElement[bool] | None = None) -> Iterator[Sequence[Row[Any]]]:
        conds = conditions.step_due(stage, step, now, contact_ids)
        if only is not None:
            conds.append(only)
        # a task's due time needs the buyer's zone and country; a message's is the dispatcher's business
        where = (col(Contact.timezone), col(Contact.attributes)) if step.channel in TASK_CHANNELS else ()
        query = select(col(Contact.id), col(Contact.email), col(Contact.phone), col(Contact.consent_email),
                       col(Contact.consent_sms), col(Contact.stage_entry), col(Contact.stage_entered_at), *where
                       ).where(and_(*conds)).order_by(col(Contact.id))
        rows = session.execute(query.execution_options(yield_per=BATCH))
        while chunk := rows.fetchmany(BATCH):
            yield chunk

    def _touches(self, session: Session, batch: Sequence[Row[Any]], stage: str, step: Step, now: datetime,
                 templates: set[str]) -> list[dict[str, Any]]:
        ids = [r.id for r in batch]
        suppressed = batch_loads.suppressions(session, ids)
        stated = batch_loads.stated_preferences(session, ids)
        if self.learner_for is not None:  # the learner loads the batch's counts in one go
            self.learner_for.prepare(session, ids)
        order = self.rules.interactions[step.interaction].channels
        # the caps count a task too: the buyer's sends of the last week, loaded for the batch at once
        sends = batch_loads.recent_sends(session, ids, now - timedelta(days=8)) \
            if step.channel in TASK_CHANNELS else {}
        rows = []
        for r in batch:
            learner: Learner | None = self.learner_for(r, step.interaction) if self.learner_for else None
            pick = pick_channel(order=order, reach=batch_loads.reach_of(r, suppressed.get(r.id)),
                                stated=stated.get(r.id, {}).get(step.interaction), fixed=step.channel,
                                templates=templates, email_consent=self.email_consent, learner=learner)
            status = conditions.new_status(pick.channel, step.approval)
            due = r.stage_entered_at + step.after
            if pick.channel in TASK_CHANNELS:  # a rep's task waits for them; it is due inside its window
                status = TouchStatus.PENDING
                due = self._task_due(session, r, pick.channel, max(due, now), sends)
            approve_by = conditions.approve_by(status, now, self.approval_expires_after)
            rows.append({
                "contact_id": r.id, "dedupe_key": f"{r.id}:{stage}:{r.stage_entry}:{step.id}",
                "stage": stage, "stage_entry": r.stage_entry, "rule": f"playbook:{stage}", "step": step.id,
                "interaction": step.interaction, "content": step.content, "channel": pick.channel,
                "channel_reason": pick.reason, "channel_fixed": step.channel is not None,
                "status": status, "reason": pick.reason if pick.channel is None else None,
                "due_at": due,
                "expires_at": None, "approve_by": approve_by,
                "meeting_minutes": int(step.meeting.duration.total_seconds() // 60) if step.meeting else None,
                "attempts": 0, "created_at": now, "updated_at": now,
            })
        return rows

    def _task_due(self, session: Session, r: Row[Any], channel: str, at: datetime,
                  sends: dict[int, list[tuple[str, datetime]]]) -> datetime:
        """When a task is due: the first moment from `at` inside its window in the buyer's zone, not on
        a holiday, and under the caps."""
        if self.policy is None:
            return at
        policy = self.policy
        if channel not in policy.send_windows:  # a config that lists its own windows keeps the task's default
            defaults = Policy().send_windows
            policy = policy.model_copy(update={"send_windows": {**defaults, **policy.send_windows}})
        verdict = decide(at, _zone(r.timezone, self.timezone), channel, sends.get(r.id, []), policy,
                         (r.attributes or {}).get("country"))
        return verdict.until if not verdict.send and verdict.until is not None else at

    @staticmethod
    def _count(result: PlanResult, stage: str, step: Step, rows: list[dict[str, Any]], batch: Any) -> None:
        key = f"playbook:{stage}/{step.id}"
        for row in rows:
            result.by_status[row["status"]] += 1
            result.by_step[key] += 1
            result.by_channel[row["channel"] or "none"] += 1
            if row["variant"]:
                result.variants.setdefault(key, Counter())[row["variant"]] += 1
        examples = result.examples.setdefault(key, [])
        for row, r in zip(rows, batch, strict=True):
            if len(examples) < 3:
                examples.append({"contact": r.email or r.phone, "channel": row["channel"],
                                 "status": row["status"], "reason": row["channel_reason"]})

    def fire_triggers(self, session: Session, recorded: list[Evidence], now: datetime) -> int:
        """Queue the touches of triggers whose `on` matches new evidence and whose `if` holds;
        at most one per trigger per piece of evidence (the dedupe key says so)."""
        by_event: dict[str, list[Trigger]] = {}
        for tr in self.rules.triggers:
            by_event.setdefault(tr.on, []).append(tr)
        hits = [ev for ev in recorded if ev.type in by_event and not in_holdout(ev.contact_id, self.holdout)]
        if not hits:
            return 0
        contacts = batch_loads.contacts_by_id(session, sorted({ev.contact_id for ev in hits}))
        ids = list(contacts)
        suppressed = batch_loads.suppressions(session, ids)
        stated = batch_loads.stated_preferences(session, ids)
        if self.learner_for is not None:
            self.learner_for.prepare(session, ids)
        rows = []
        for ev in hits:
            contact = contacts[ev.contact_id]
            for tr in by_event[ev.type]:
                if not self._conditions.holds(tr, contact, ev, now):
                    continue
                templates = available_channels(self.content_dir, tr.content)
                pick = pick_channel(order=self.rules.interactions[tr.interaction].channels,
                                    reach=batch_loads.reach_of(contact, suppressed.get(contact.id or 0)),
                                    stated=stated.get(contact.id or 0, {}).get(tr.interaction), fixed=tr.channel,
                                    templates=templates, email_consent=self.email_consent,
                                    learner=self.learner_for(contact, tr.interaction) if self.learner_for else None)
                due = ev.occurred_at + tr.after
                queued = conditions.trigger_touch(tr, pick.channel, pick.reason, ev.occurred_at, now)
                rows.append({
                    "contact_id": contact.id, "dedupe_key": f"trigger:{tr.id}:{ev.id}", "stage": contact.stage,
                    "stage_entry": contact.stage_entry, "rule": f"trigger:{tr.id}", "step": tr.id,
                    "interaction": tr.interaction, "content": tr.content, "channel": pick.channel,
                    "channel_reason": pick.reason, "channel_fixed": tr.channel is not None, "status": queued.status,
                    "reason": queued.reason, "due_at": due, "expires_at": queued.expires_at,
                    "approve_by": conditions.approve_by(queued.status, now, self.approval_expires_after),
                    "evidence_id": ev.id,
                    "meeting_minutes": int(tr.meeting.duration.total_seconds() // 60) if tr.meeting else None,
                    "attempts": 0, "created_at": now, "updated_at": now,
                })
        return batch_loads.insert_ignore(session, table_of(Touch), rows, ["dedupe_key"])


def _quoted(value: str | None) -> str:
    return "NULL" if value is None else "'" + value.replace("'", "''") + "'"


def _zone(name: str | None, default: str) -> ZoneInfo:
    try:
        return ZoneInfo(name or default)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(default)
