"""Keeping channel learning's counts (outreach.learning.learner's tables) up to date incrementally: one
batched upsert per dispatch batch and one per evidence batch, never a full recount; `recount` is the
definition they must always equal. A touch counts once as sent, once as answered (click, reply,
accepted meeting; never an open) and once against (decline, unsubscribe, complaint, STOP), however
many events it drew; evidence not tied to a touch has no channel to credit."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Table, delete, select
from sqlmodel import Session

from outreach.batch_loads import chunks
from outreach.db import add_to_counters
from outreach.evidence import NEGATIVE, RESPONSES
from outreach.learning.learner import (
    CONTACT,
    CONTACT_FIELDS,
    STAT,
    ChannelPrior,
    ChannelStat,
    ContactFields,
    Counts,
    attribute_values,
    prior_totals,
)
from outreach.models import Contact, Evidence, Touch, TouchStatus, table_of
from outreach.ruleset import Ruleset

COUNTS = ("sent", "responses", "negatives")
TOUCH, EVIDENCE = table_of(Touch).c, table_of(Evidence).c

Key = tuple[Any, ...]


def _keys(rules: Ruleset, contact: Any, stage: str, interaction: str, channel: str) -> list[Key]:
    keys: list[Key] = [("all", "", interaction, channel), ("stage", stage, interaction, channel)]
    keys += [(scope, value, interaction, channel) for scope, value in
             attribute_values(contact, rules.learning.similar_by)]
    return keys


def _bump(session: Session | Connection, table: Table, keys: Sequence[str], deltas: Mapping[Key, list[int]]) -> None:
    """Add deltas to counters; sorted so that concurrent writers lock rows in one order."""
    rows = [dict(zip(keys, k, strict=True)) | dict(zip(COUNTS, v, strict=True)) for k, v in sorted(deltas.items())]
    add_to_counters(session, table, keys, COUNTS, rows)


SHARDS = 16  # rows per population count: concurrent senders rarely meet on one (ChannelPrior's docstring)


def add_counts(session: Session | Connection, mine: Mapping[Key, list[int]], pop: Mapping[Key, list[int]],
               shard: int | None = None) -> None:
    """Add [sent, responses, negatives] deltas: per (contact, interaction, channel) and per
    (scope, value, interaction, channel), the latter to one shard row (by chance, unless given)."""
    _bump(session, table_of(ChannelStat), ("contact_id", "interaction", "channel"), mine)
    row = random.randrange(SHARDS) if shard is None else shard
    _bump(session, table_of(ChannelPrior), ("scope", "value", "interaction", "channel", "shard"),
          {(*key, row): counts for key, counts in pop.items()})


def count_sends(session: Session | Connection, rules: Ruleset, sent: Iterable[tuple[Touch, Contact]]) -> None:
    """Count touches just handed to a provider (the dispatcher calls this once per batch)."""
    mine: dict[Key, list[int]] = defaultdict(lambda: [0, 0, 0])
    pop: dict[Key, list[int]] = defaultdict(lambda: [0, 0, 0])
    for touch, contact in sent:
        if not touch.channel:
            continue
        mine[(touch.contact_id, touch.interaction, touch.channel)][0] += 1
        for key in _keys(rules, contact, touch.stage, touch.interaction, touch.channel):
            pop[key][0] += 1
    add_counts(session, mine, pop)


def count_evidence(session: Session, rules: Ruleset, recorded: Sequence[Evidence]) -> None:
    """Count new responses and negatives, each at most once per touch (a click then a reply to one
    email is one answer). Opens and events not tied to a touch teach nothing here."""
    kinds = {ev.id: kind_of(ev.type) for ev in recorded if ev.touch_id and ev.channel and ev.interaction}
    kinds = {k: v for k, v in kinds.items() if v is not None}
    if not kinds:
        return
    touch_ids = sorted({ev.touch_id or 0 for ev in recorded if ev.id in kinds})
    first: dict[tuple[int, int], int] = {}  # (touch, kind) -> the first evidence of that kind
    for part in chunks(touch_ids):
        for eid, tid, kind in session.execute(select(EVIDENCE.id, EVIDENCE.touch_id, EVIDENCE.type).where(
                EVIDENCE.touch_id.in_(part), EVIDENCE.type.in_(RESPONSES | NEGATIVE))):
            k = kind_of(kind)
            if k is not None and ((tid, k) not in first or eid < first[(tid, k)]):
                first[(tid, k)] = eid
    new = [ev for ev in recorded if ev.id in kinds and first.get((ev.touch_id or 0, kinds[ev.id] or 0)) == ev.id]
    if not new:
        return
    about = _touch_context(session, sorted({ev.touch_id or 0 for ev in new}))
    mine: dict[Key, list[int]] = defaultdict(lambda: [0, 0, 0])
    pop: dict[Key, list[int]] = defaultdict(lambda: [0, 0, 0])
    for ev in new:
        k = kinds[ev.id] or 0
        mine[(ev.contact_id, ev.interaction or "", ev.channel or "")][k] += 1
        stage, contact = about[ev.touch_id or 0]
        for key in _keys(rules, contact, stage, ev.interaction or "", ev.channel or ""):
            pop[key][k] += 1
    add_counts(session, mine, pop)


def kind_of(event: str) -> int | None:
    """Which counter an event adds to: 1 responses, 2 negatives, None (opens and the rest) neither."""
    return 1 if event in RESPONSES else 2 if event in NEGATIVE else None


def _touch_context(session: Session, touch_ids: Sequence[int]) -> dict[int, tuple[str, ContactFields]]:
    out = {}
    for part in chunks(touch_ids):
        for tid, stage, *row in session.execute(select(TOUCH.id, TOUCH.stage, *CONTACT_FIELDS).join_from(
                table_of(Touch), table_of(Contact), CONTACT.id == TOUCH.contact_id).where(TOUCH.id.in_(part))):
            out[tid] = (stage, ContactFields(*row))
    return out


def recount(session: Session, rules: Ruleset) -> tuple[dict[Key, Counts], dict[Key, Counts]]:
    """Every count from scratch (contact-level, population): what the incremental counts must equal."""
    mine: dict[Key, list[int]] = defaultdict(lambda: [0, 0, 0])
    pop: dict[Key, list[int]] = defaultdict(lambda: [0, 0, 0])
    sent = select(TOUCH.contact_id, TOUCH.interaction, TOUCH.channel, TOUCH.stage, *CONTACT_FIELDS).join_from(
        table_of(Touch), table_of(Contact), CONTACT.id == TOUCH.contact_id).where(
        TOUCH.status == TouchStatus.SENT, TOUCH.channel.is_not(None))
    for cid, interaction, channel, stage, *row in session.execute(sent):
        mine[(cid, interaction, channel)][0] += 1
        for key in _keys(rules, ContactFields(*row), stage, interaction, channel):
            pop[key][0] += 1
    answered = select(EVIDENCE.contact_id, EVIDENCE.touch_id, EVIDENCE.type, EVIDENCE.interaction,
                      EVIDENCE.channel, TOUCH.stage, *CONTACT_FIELDS).join_from(
        table_of(Evidence), table_of(Touch), TOUCH.id == EVIDENCE.touch_id).join(
        table_of(Contact), CONTACT.id == TOUCH.contact_id).where(
        EVIDENCE.type.in_(RESPONSES | NEGATIVE), EVIDENCE.channel.is_not(None))
    seen: set[tuple[int, int]] = set()
    for cid, tid, kind, interaction, channel, stage, *row in session.execute(answered):
        k = kind_of(kind) or 0
        if (tid, k) in seen:
            continue
        seen.add((tid, k))
        mine[(cid, interaction, channel)][k] += 1
        for key in _keys(rules, ContactFields(*row), stage, interaction, channel):
            pop[key][k] += 1
    return ({k: Counts(*v) for k, v in mine.items()}, {k: Counts(*v) for k, v in pop.items()})


def stored(session: Session) -> tuple[dict[Key, Counts], dict[Key, Counts]]:
    """The counts as kept (contact-level, population), in recount's shape."""
    mine = {(cid, i, c): Counts(n, r, g) for cid, i, c, n, r, g in session.execute(select(
        STAT.contact_id, STAT.interaction, STAT.channel, STAT.sent, STAT.responses, STAT.negatives))}
    return mine, prior_totals(session)


def rebuild(session: Session, rules: Ruleset) -> None:
    """Replace the counts with a recount (after `similar_by` changed, say)."""
    mine, pop = recount(session, rules)
    session.execute(delete(table_of(ChannelStat)))
    session.execute(delete(table_of(ChannelPrior)))
    add_counts(session, {k: list(v) for k, v in mine.items()}, {k: list(v) for k, v in pop.items()}, shard=0)
