"""What the touches did: results per playbook step and trigger, response per interaction type and
channel, and the reps' approval queue. Each is one grouped query over the period's touches; whether a
touch was answered is an EXISTS on the evidence that names it (indexed by touch id)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from sqlalchemy import Select, bindparam, case, exists, func, select
from sqlalchemy.sql.elements import ColumnElement, SQLCoreOperations
from sqlmodel import Session, col

from outreach.analytics.model import ChannelRow, DeliverabilityRow, Filters, QueueRow, StepRow
from outreach.analytics.scope import contact_where, touch_where
from outreach.analytics.sql import dialect, hours_between, utc_week
from outreach.analytics.stats import wilson
from outreach.evidence import RESPONSES
from outreach.models import DELIVERY_TYPES, Contact, Evidence, StageChange, Touch, TouchStatus
from outreach.ruleset import Ruleset

OPT_OUTS = frozenset({"email.unsubscribed", "email.complained", "sms.opted_out"})
UNAPPROVED = "nobody approved it in time"  # the reason the dispatcher gives a touch that went stale


Q = TypeVar("Q", bound=Select[*tuple[Any, ...]])
QUEUED = (TouchStatus.EXPIRED.value, TouchStatus.PENDING.value)  # ix_touch_queue holds these touches


def literal_in(expr: SQLCoreOperations[Any], values: tuple[str, ...]) -> ColumnElement[bool]:
    """`expr IN ('a', 'b')` with the values written into the SQL: SQLite uses a partial index only when
    the query has its condition's very text (with parameters it cannot tell), PostgreSQL when it can
    prove it (a generic plan cannot)."""
    return expr.in_(bindparam(f"in_{abs(hash(values))}", list(values), expanding=True, literal_execute=True))


def _owned(query: Q, f: Filters) -> Q:
    """The touches the filters keep: their playbook's, of the contacts they keep (joined only when needed)."""
    query = query.where(*touch_where(f))
    where = contact_where(f, touched=False)
    if not where:
        return query
    return query.join(Contact, col(Contact.id) == col(Touch.contact_id)).where(*where)


def _sent_in(f: Filters) -> list[ColumnElement[bool]]:
    return [col(Touch.status) == TouchStatus.SENT, col(Touch.sent_at) >= f.start, col(Touch.sent_at) < f.end]


@dataclass(frozen=True)
class Sent:
    """Touches sent in the period, per rule, step, interaction type and channel: what both the steps and
    the channels widgets group (one pass over the period's touches serves both)."""

    rule: str
    step: str
    interaction: str
    channel: str
    sent: int
    responses: int
    advanced: int
    opt_outs: int


def sent_touches(session: Session, f: Filters, advance_within: timedelta) -> list[Sent]:
    within = advance_within.total_seconds() / 3600
    advanced = case((exists().where(
        col(StageChange.contact_id) == col(Touch.contact_id), col(StageChange.at) > col(Touch.sent_at),
        hours_between(col(Touch.sent_at), col(StageChange.at), dialect(session)) <= within), 1), else_=0)
    # what each touch brought back, one row per touch that brought anything: joined, not probed per touch
    kinds = sorted(RESPONSES | OPT_OUTS)
    back = (select(col(Evidence.touch_id).label("tid"),
                   func.max(case((col(Evidence.type).in_(sorted(RESPONSES)), 1), else_=0)).label("resp"),
                   func.max(case((col(Evidence.type).in_(sorted(OPT_OUTS)), 1), else_=0)).label("opt"))
            .where(col(Evidence.touch_id).is_not(None), col(Evidence.type).in_(kinds),
                   col(Evidence.occurred_at) >= f.start)  # an answer comes after its touch
            .group_by(col(Evidence.touch_id)).subquery())
    keys = (col(Touch.rule), col(Touch.step), col(Touch.interaction), col(Touch.channel))
    query = (select(*keys, func.count(), func.sum(func.coalesce(back.c.resp, 0)), func.sum(advanced),
                    func.sum(func.coalesce(back.c.opt, 0)))
             .outerjoin(back, back.c.tid == col(Touch.id)).where(*_sent_in(f)))
    return [Sent(rule, step, interaction, channel or "", n, int(resp or 0), int(adv or 0), int(opt or 0))
            for rule, step, interaction, channel, n, resp, adv, opt in session.execute(
                _owned(query, f).group_by(*keys))]


def steps(session: Session, rules: Ruleset, f: Filters, sent: list[Sent]) -> list[StepRow]:
    """Per playbook step and trigger: touches sent in the period, those answered, those followed by a
    stage advance within `report.advance_within`, those that brought an opt-out, and touches that expired."""
    found: dict[tuple[str, str], StepRow] = {}
    for t in sent:
        row = found.setdefault((t.rule, t.step), {"rule": t.rule, "step": t.step, "sent": 0, "responses": 0,
                                                  "advanced": 0, "opt_outs": 0, "expired": 0})
        row["sent"] += t.sent
        row["responses"] += t.responses
        row["advanced"] += t.advanced
        row["opt_outs"] += t.opt_outs
    expired = [col(Touch.status) == TouchStatus.EXPIRED, col(Touch.updated_at) >= f.start,
               col(Touch.updated_at) < f.end]
    if dialect(session) == "sqlite":  # ix_touch_queue's condition in its text; PostgreSQL proves it from the
        # status, and would take the two conditions as independent (a fiftieth of the rows it reads)
        expired.append(literal_in(col(Touch.status), QUEUED))
    for rule, step, n in session.execute(_owned(
            select(col(Touch.rule), col(Touch.step), func.count()).where(*expired), f).group_by(
                col(Touch.rule), col(Touch.step))):
        row = found.setdefault((rule, step), {"rule": rule, "step": step, "sent": 0, "responses": 0, "advanced": 0,
                                              "opt_outs": 0, "expired": 0})
        row["expired"] = n
    return sorted(found.values(), key=lambda r: _step_order(rules, r["rule"], r["step"]))


def _step_order(rules: Ruleset, rule: str, step: str) -> tuple[int, int, str, str]:
    """Playbooks in funnel order and their steps as written; triggers after them, by name."""
    kind, _, name = rule.partition(":")
    if kind == "playbook" and name in rules.stage_ids:
        ids = [s.id for s in rules.playbooks.get(name, [])]
        return 0, rules.stage_rank(name) * 1000 + (ids.index(step) if step in ids else 999), rule, step
    return 1, 0, rule, step


def channels(rules: Ruleset, sent: list[Sent]) -> list[ChannelRow]:
    """Response rate (a click, a reply, an accepted meeting; not an open) per interaction type and
    channel, with its 95% interval: in the rules' order of interaction types and their channels."""
    totals: dict[tuple[str, str], list[int]] = {}
    for t in sent:
        got = totals.setdefault((t.interaction, t.channel), [0, 0])
        got[0] += t.sent
        got[1] += t.responses
    rows: list[ChannelRow] = []
    for (interaction, channel), (n, resp) in totals.items():
        rate, low, high = wilson(resp, n)
        rows.append({"interaction": interaction, "channel": channel, "sent": n, "responses": resp,
                     "rate": round(rate, 4), "low": round(low, 4), "high": round(high, 4)})
    order = list(rules.interactions)

    def key(r: ChannelRow) -> tuple[int, int, str, str]:
        it = rules.interactions.get(r["interaction"])
        chans: list[str] = list(it.channels) if it else []
        return (order.index(r["interaction"]) if r["interaction"] in order else len(order),
                chans.index(r["channel"]) if r["channel"] in chans else len(chans), r["interaction"], r["channel"])

    return sorted(rows, key=key)


# what the providers report about reaching the buyer, per column of the deliverability widget
DELIVERY = {"email.delivered": ("email", "delivered"), "sms.delivered": ("sms", "delivered"),
            "email.bounced": ("email", "bounced"), "sms.failed": ("sms", "bounced"),
            "email.complained": ("email", "complained"), "email.unsubscribed": ("email", "unsubscribed"),
            "sms.opted_out": ("sms", "opted_out")}


def deliverability(session: Session, f: Filters) -> list[DeliverabilityRow]:
    """Per UTC week and channel: delivered, bounced (an SMS that failed), complained, unsubscribed,
    opted out, from the providers' events in the period."""
    week = utc_week(col(Evidence.occurred_at), dialect(session))
    query = select(week.label("w"), col(Evidence.type), func.count()).where(
        literal_in(col(Evidence.type), DELIVERY_TYPES), col(Evidence.occurred_at) >= f.start,
        col(Evidence.occurred_at) < f.end)
    where = contact_where(f)
    if where:  # the contacts kept, then their delivery events from ix_evidence_delivery (contact, time, type):
        # as a list the database makes first (joined, SQLite may start from the events by type and time)
        query = query.where(col(Evidence.contact_id).in_(select(col(Contact.id)).where(*where)))
    rows: dict[tuple[str, str], DeliverabilityRow] = {}
    for w, kind, n in session.execute(query.group_by(week, col(Evidence.type))):
        channel, field = DELIVERY[kind]
        row = rows.setdefault((w, channel), {"week": w, "channel": channel, "delivered": 0, "bounced": 0,
                                             "complained": 0, "unsubscribed": 0, "opted_out": 0})
        row[field] += n  # type: ignore[literal-required]
    return [rows[k] for k in sorted(rows)]


def queue(session: Session, f: Filters) -> list[QueueRow]:
    """Per owner: touches waiting for approval now, and touches that expired unapproved in the period."""
    owner = col(Contact.owner)
    waiting = case((col(Touch.status) == TouchStatus.PENDING, 1), else_=0)
    expired = case(((col(Touch.status) == TouchStatus.EXPIRED) & (col(Touch.reason) == UNAPPROVED)
                    & (col(Touch.updated_at) >= f.start) & (col(Touch.updated_at) < f.end), 1), else_=0)
    query = (select(owner, func.sum(waiting), func.sum(expired))
             .join(Contact, col(Contact.id) == col(Touch.contact_id))
             .where(literal_in(col(Touch.status), QUEUED),  # the touches from ix_touch_queue, then their contacts
                    *touch_where(f), *contact_where(f, touched=False)).group_by(owner))
    rows: list[QueueRow] = [{"owner": o, "waiting": int(w or 0), "expired": int(e or 0)}
                            for o, w, e in session.execute(query) if (w or e)]
    return sorted(rows, key=lambda r: (r["owner"] is None, r["owner"] or ""))
