"""Which channel each buyer answers, per interaction type: counts kept as touches go out and
evidence comes in, population priors, and the pure choice (SPEC section 6, issue 6).

Counts are kept incrementally (one batched upsert per dispatch batch and per evidence batch):
per contact x interaction x channel, and per (scope, value) x interaction x channel where the scope
is `all`, the touch's `stage`, or `attr:<name>` for each `learning.similar_by` attribute. A touch
counts once as sent, once as answered (click, reply, accepted meeting; never an open) and once
against (decline, unsubscribe, complaint, STOP) however many events it drew."""

from __future__ import annotations

import math
import random
import zlib
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import UniqueConstraint, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Field, Session, SQLModel

from .evidence import NEGATIVE, RESPONSES
from .lookups import chunks
from .models import SENT, Contact, Evidence, Touch
from .preferences import Learner, Pick
from .ruleset import Ruleset

# The contact's own prior is worth this many responses at the population's rate: with it one
# response does not move the pick off the default and two do (see tests/test_learning.py).
PRIOR_RESPONSES = 6.0
# Another channel must look this much better than the default to replace it: noise keeps the default.
MARGIN = 0.2
CROSS_WEIGHT = 0.3  # a touch of another interaction type tells a third as much about this one
NEGATIVE_WEIGHT = 1.0  # a decline or unsubscribe cancels a response
POP_STRENGTH = 30.0  # pseudo-touches that pull a group's rate towards its parent's
THIN = 100  # fewer touches than this by buyers like C on a channel: evidence is thin there
THIN_OWN = 3  # fewer touches of the type than this to the contact: its own evidence is thin
MIN_POOLED = 20  # touches of a type, all buyers together, before the population has a say
COUNTS = ("sent", "responses", "negatives")


class ChannelStat(SQLModel, table=True):
    """How one contact answered touches of one interaction type on one channel."""

    __table_args__ = (UniqueConstraint("contact_id", "interaction", "channel"),)

    id: int | None = Field(default=None, primary_key=True)
    contact_id: int = Field(foreign_key="contact.id", index=True)
    interaction: str
    channel: str
    sent: int = 0
    responses: int = 0
    negatives: int = 0


class ChannelPrior(SQLModel, table=True):
    """How a population answered touches of one interaction type on one channel. `scope` is `all`
    (value ''), `stage` (value: the touch's stage) or `attr:<name>` (value: lowercased attribute)."""

    __table_args__ = (UniqueConstraint("scope", "value", "interaction", "channel"),)

    id: int | None = Field(default=None, primary_key=True)
    scope: str
    value: str
    interaction: str
    channel: str
    sent: int = 0
    responses: int = 0
    negatives: int = 0


def _table(model: Any) -> Any:
    return model.__table__


STAT, PRIOR = _table(ChannelStat).c, _table(ChannelPrior).c
TOUCH, CONTACT, EVIDENCE = _table(Touch).c, _table(Contact).c, _table(Evidence).c


class Counts(NamedTuple):
    sent: int = 0
    responses: int = 0
    negatives: int = 0


class Estimate(NamedTuple):
    """What buyers like C do on a channel: a response rate, and the touches behind the thinnest of
    the groups it draws on (few: the evidence is thin)."""

    rate: float
    touches: int


# --- the choice: pure ------------------------------------------------------------------------


def posterior(prior: float, own: Counts, other: Counts) -> float:
    """The contact's expected response rate: the prior rate worth PRIOR_RESPONSES responses, plus
    its own touches of this type, plus a fraction of its touches of the other types."""
    prior = min(max(prior, 1e-3), 0.999)
    answered = own.responses - NEGATIVE_WEIGHT * own.negatives + CROSS_WEIGHT * (
        other.responses - NEGATIVE_WEIGHT * other.negatives)
    return max(PRIOR_RESPONSES + answered, 0.0) / (PRIOR_RESPONSES / prior + own.sent + CROSS_WEIGHT * other.sent)


def _best(scores: Mapping[str, float], default: str) -> str:
    best = max(scores, key=lambda c: (scores[c], c == default))
    return best if scores[best] > scores[default] * (1 + MARGIN) else default


def choose(interaction: str, candidates: Sequence[str], own: Mapping[str, Counts], other: Mapping[str, Counts],
           similar: Mapping[str, Estimate], *, explore: float = 0.0, rng: random.Random | None = None
           ) -> Pick | None:
    """Pick among `candidates` (reachable, best-first) from what is learned, or None with no evidence.

    `own`: the contact's counts for this interaction type per channel; `other`: its counts for the
    other types; `similar`: the population's estimate per channel. With `rng`, `explore` is the
    chance of trying a candidate that buyers like C have rarely been sent while the contact's own
    evidence is thin: exploration only ever picks among the candidates, which are reachable."""
    none = Counts()
    if not similar and not any(own.get(c, none).sent or other.get(c, none).responses or other.get(c, none).negatives
                               for c in candidates):
        return None
    default = candidates[0]
    known = [similar[c].rate for c in candidates if c in similar]
    pooled = sum(known) / len(known) if known else 0.1
    scores = {c: posterior(similar[c].rate if c in similar else pooled, own.get(c, none), other.get(c, none))
              for c in candidates}
    pick, exploring = _best(scores, default), False
    if rng is not None and explore > 0:
        mine = sum(own.get(c, none).sent for c in candidates)
        thin = [c for c in candidates if c != pick and (c not in similar or similar[c].touches < THIN)]
        if thin and mine < THIN_OWN and rng.random() < explore:
            pick, exploring = rng.choice(thin), True
    return Pick(pick, _reason(interaction, pick, default, {c: own[c] for c in candidates if c in own},
                              other.get(pick, none), similar, exploring))


def _reason(interaction: str, channel: str, default: str, own: Mapping[str, Counts], other: Counts,
            similar: Mapping[str, Estimate], exploring: bool) -> str:
    mine = own.get(channel)
    parts = [f"{mine.responses}/{mine.sent} responses on {channel} for {interaction}" if mine and mine.sent
             else f"{channel} for {interaction}"]
    for c, n in own.items():
        if n.negatives:
            parts.append(f"{n.negatives} declined or opted out on {c}")
        if c != channel and n.sent:
            parts.append(f"{n.responses}/{n.sent} on {c}")
    if other.sent:
        parts.append(f"{other.responses}/{other.sent} on {channel} for other types")
    est = similar.get(channel)
    if est is not None:
        text = f"similar buyers {est.rate:.0%}"
        if channel != default and default in similar:
            text += f" ({similar[default].rate:.0%} on {default})"
        parts.append(text + f" over {est.touches} touches" if est.touches < THIN else text)
    head = "exploring: evidence is thin; " if exploring else "learned: "
    return head + "; ".join(parts)


# --- population priors ------------------------------------------------------------------------


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


class Priors:
    """The population counts, loaded once per planning batch, and the estimate per channel for
    buyers at a stage with some attribute values (cached: a batch asks the same few questions)."""

    def __init__(self, counts: Mapping[tuple[str, str, str, str], Counts]) -> None:
        self.counts = counts
        self.pooled: dict[str, Counts] = {}
        for (scope, _, interaction, _ch), n in counts.items():
            if scope == "all":
                p = self.pooled.get(interaction, Counts())
                self.pooled[interaction] = Counts(p.sent + n.sent, p.responses + n.responses,
                                                  p.negatives + n.negatives)
        self._cache: dict[tuple[Any, ...], dict[str, Estimate]] = {}

    @classmethod
    def load(cls, session: Session) -> Priors:
        rows = session.execute(select(PRIOR.scope, PRIOR.value, PRIOR.interaction, PRIOR.channel, PRIOR.sent,
                                      PRIOR.responses, PRIOR.negatives))
        return cls({(s, v, i, c): Counts(n, r, g) for s, v, i, c, n, r, g in rows})

    def estimate(self, interaction: str, channels: Sequence[str], stage: str | None,
                 attrs: tuple[tuple[str, str], ...]) -> dict[str, Estimate]:
        key = (interaction, tuple(channels), stage, attrs)
        if key not in self._cache:
            self._cache[key] = self._estimate(interaction, channels, stage, attrs)
        return self._cache[key]

    def _estimate(self, interaction: str, channels: Sequence[str], stage: str | None,
                  attrs: tuple[tuple[str, str], ...]) -> dict[str, Estimate]:
        pooled = self.pooled.get(interaction)
        if pooled is None or pooled.sent < MIN_POOLED:
            return {}
        # an untried channel starts at the type's pooled rate: a default that does worse than the
        # pool gets challenged, which is how the population learns without much exploring
        base = (max(pooled.responses - NEGATIVE_WEIGHT * pooled.negatives, 0) + 1.0) / (pooled.sent + 10.0)
        groups = ([("stage", stage)] if stage else []) + list(attrs)
        out = {}
        for c in channels:
            top = self.counts.get(("all", "", interaction, c), Counts())
            parent = _shrink(top, base)
            score, touches = _logit(parent), top.sent
            for scope, value in groups:
                n = self.counts.get((scope, value, interaction, c))
                if scope != "stage":
                    touches = min(touches, n.sent if n else 0)
                if n is not None:  # naive Bayes: each group's lift over the whole population adds up
                    score += _logit(_shrink(n, parent)) - _logit(parent)
            out[c] = Estimate(1 / (1 + math.exp(-score)), touches)
        return out


def _shrink(n: Counts, parent: float) -> float:
    return (max(n.responses - NEGATIVE_WEIGHT * n.negatives, 0) + POP_STRENGTH * parent) / (n.sent + POP_STRENGTH)


class _Row(NamedTuple):
    """The fields of a contact that `similar_by` may name (besides its attributes)."""

    title: str | None
    company: str | None
    timezone: str | None
    owner: str | None
    attributes: dict[str, Any]


_ROW = (CONTACT.title, CONTACT.company, CONTACT.timezone, CONTACT.owner, CONTACT.attributes)


def attribute_values(contact: Any, similar_by: Iterable[str]) -> tuple[tuple[str, str], ...]:
    """(`attr:<name>`, value) for each similar_by attribute the contact has: from its attributes,
    else from the column of that name (title, company, timezone, owner)."""
    attributes = getattr(contact, "attributes", None) or {}
    out = []
    for name in similar_by:
        value = attributes.get(name)
        if value is None and name in _Row._fields:
            value = getattr(contact, name, None)
        text = str(value).strip().lower() if value is not None else ""
        if text:
            out.append((f"attr:{name}", text))
    return tuple(out)


# --- the learner the planner calls ------------------------------------------------------------


@dataclass
class ChannelLearner:
    """Planner.learner_for: `prepare` loads a batch's counts in one query; calling it with a
    contact row and an interaction type gives the Learner that pick_channel consults."""

    rules: Ruleset
    salt: str = ""
    explore: float | None = None  # default: the rules' learning.explore

    def __post_init__(self) -> None:
        self._priors: Priors | None = None
        self._stats: dict[int, dict[tuple[str, str], Counts]] = {}
        self._who: dict[int, tuple[str, tuple[tuple[str, str], ...]]] = {}  # stage, similar_by values

    def prepare(self, session: Session, ids: Sequence[int]) -> None:
        """Load what the choice needs about these contacts (and, once, the priors): two queries."""
        if self._priors is None:
            self._priors = Priors.load(session)
        todo = sorted({i for i in ids if i not in self._stats})
        similar_by = self.rules.learning.similar_by
        for part in chunks(todo):
            for cid, stage, *row in session.execute(
                    select(CONTACT.id, CONTACT.stage, *_ROW).where(CONTACT.id.in_(part))):
                self._who[cid] = (stage, attribute_values(_Row(*row), similar_by))
                self._stats[cid] = {}
            for cid, interaction, channel, n, r, g in session.execute(
                    select(STAT.contact_id, STAT.interaction, STAT.channel, STAT.sent, STAT.responses,
                           STAT.negatives).where(STAT.contact_id.in_(part))):
                self._stats[cid][(interaction, channel)] = Counts(n, r, g)

    def __call__(self, contact: Any, interaction: str) -> Learner | None:
        if self._priors is None:
            return None  # not prepared: nothing loaded, nothing learned
        priors = self._priors
        cid = contact.id or 0
        stats = self._stats.get(cid, {})
        own: dict[str, Counts] = {}
        other: dict[str, list[int]] = {}
        for (inter, channel), n in stats.items():
            if inter == interaction:
                own[channel] = n
            else:
                acc = other.setdefault(channel, [0, 0, 0])
                acc[0], acc[1], acc[2] = acc[0] + n.sent, acc[1] + n.responses, acc[2] + n.negatives
        others = {c: Counts(*v) for c, v in other.items()}
        stage, attrs = self._who.get(cid) or (getattr(contact, "stage", None),
                                               attribute_values(contact, self.rules.learning.similar_by))
        explore = self.rules.learning.explore if self.explore is None else self.explore
        # the schedule: the same contact, type and number of touches always draw the same luck
        seed = zlib.crc32(f"{self.salt}:{cid}:{interaction}:{sum(n.sent for n in own.values())}".encode())

        def learner(candidates: Sequence[str]) -> Pick | None:
            similar = priors.estimate(interaction, candidates, stage, attrs)
            return choose(interaction, candidates, own, others, similar, explore=explore,
                          rng=random.Random(seed) if explore else None)

        return learner


# --- keeping the counts -----------------------------------------------------------------------

Key = tuple[Any, ...]


def _keys(rules: Ruleset, contact: Any, stage: str, interaction: str, channel: str) -> list[Key]:
    keys: list[Key] = [("all", "", interaction, channel), ("stage", stage, interaction, channel)]
    keys += [(scope, value, interaction, channel) for scope, value in
             attribute_values(contact, rules.learning.similar_by)]
    return keys


def _bump(session: Session, table: Any, keys: Sequence[str], deltas: Mapping[Key, list[int]]) -> None:
    """Add deltas to counters, inserting missing rows; sorted so that concurrent writers lock rows
    in one order (no deadlocks on PostgreSQL)."""
    if not deltas:
        return
    dialect: Any = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(table)
    stmt = stmt.on_conflict_do_update(index_elements=list(keys),
                                      set_={c: table.c[c] + stmt.excluded[c] for c in COUNTS})
    rows = [dict(zip(keys, k, strict=True)) | dict(zip(COUNTS, v, strict=True)) for k, v in sorted(deltas.items())]
    for i in range(0, len(rows), 500):
        session.execute(stmt, rows[i:i + 500])


def _apply(session: Session, mine: Mapping[Key, list[int]], pop: Mapping[Key, list[int]]) -> None:
    _bump(session, _table(ChannelStat), ("contact_id", "interaction", "channel"), mine)
    _bump(session, _table(ChannelPrior), ("scope", "value", "interaction", "channel"), pop)


def count_sends(session: Session, rules: Ruleset, sent: Iterable[tuple[Touch, Contact]]) -> None:
    """Count touches just handed to a provider (the dispatcher calls this once per batch)."""
    mine: dict[Key, list[int]] = defaultdict(lambda: [0, 0, 0])
    pop: dict[Key, list[int]] = defaultdict(lambda: [0, 0, 0])
    for touch, contact in sent:
        if not touch.channel:
            continue
        mine[(touch.contact_id, touch.interaction, touch.channel)][0] += 1  # type: ignore[index]
        for key in _keys(rules, contact, touch.stage, touch.interaction, touch.channel):
            pop[key][0] += 1
    _apply(session, mine, pop)


def count_evidence(session: Session, rules: Ruleset, recorded: Sequence[Evidence]) -> None:
    """Count new responses and negatives, each at most once per touch (a click then a reply to one
    email is one answer). Opens and events not tied to a touch teach nothing here."""
    kinds = {ev.id: _kind(ev.type) for ev in recorded if ev.touch_id and ev.channel and ev.interaction}
    kinds = {k: v for k, v in kinds.items() if v is not None}
    if not kinds:
        return
    touch_ids = sorted({ev.touch_id or 0 for ev in recorded if ev.id in kinds})
    first: dict[tuple[int, int], int] = {}  # (touch, kind) -> the first evidence of that kind
    for part in chunks(touch_ids):
        for eid, tid, kind in session.execute(select(EVIDENCE.id, EVIDENCE.touch_id, EVIDENCE.type).where(
                EVIDENCE.touch_id.in_(part), EVIDENCE.type.in_(RESPONSES | NEGATIVE))):
            k = _kind(kind)
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
        mine[(ev.contact_id, ev.interaction or "", ev.channel or "")][k] += 1  # type: ignore[index]
        stage, contact = about[ev.touch_id or 0]
        for key in _keys(rules, contact, stage, ev.interaction or "", ev.channel or ""):
            pop[key][k] += 1
    _apply(session, mine, pop)


def _kind(event: str) -> int | None:
    return 1 if event in RESPONSES else 2 if event in NEGATIVE else None


def _touch_context(session: Session, touch_ids: Sequence[int]) -> dict[int, tuple[str, _Row]]:
    out = {}
    for part in chunks(touch_ids):
        for tid, stage, *row in session.execute(select(TOUCH.id, TOUCH.stage, *_ROW).join_from(
                _table(Touch), _table(Contact), CONTACT.id == TOUCH.contact_id).where(TOUCH.id.in_(part))):
            out[tid] = (stage, _Row(*row))
    return out


def recount(session: Session, rules: Ruleset) -> tuple[dict[Key, Counts], dict[Key, Counts]]:
    """Every count from scratch (contact-level, population): what the incremental counts must equal."""
    mine: dict[Key, list[int]] = defaultdict(lambda: [0, 0, 0])
    pop: dict[Key, list[int]] = defaultdict(lambda: [0, 0, 0])
    sent = select(TOUCH.contact_id, TOUCH.interaction, TOUCH.channel, TOUCH.stage, *_ROW).join_from(
        _table(Touch), _table(Contact), CONTACT.id == TOUCH.contact_id).where(
        TOUCH.status == SENT, TOUCH.channel.is_not(None))
    for cid, interaction, channel, stage, *row in session.execute(sent):
        mine[(cid, interaction, channel)][0] += 1
        for key in _keys(rules, _Row(*row), stage, interaction, channel):
            pop[key][0] += 1
    answered = select(EVIDENCE.contact_id, EVIDENCE.touch_id, EVIDENCE.type, EVIDENCE.interaction,
                      EVIDENCE.channel, TOUCH.stage, *_ROW).join_from(
        _table(Evidence), _table(Touch), TOUCH.id == EVIDENCE.touch_id).join(
        _table(Contact), CONTACT.id == TOUCH.contact_id).where(
        EVIDENCE.type.in_(RESPONSES | NEGATIVE), EVIDENCE.channel.is_not(None))
    seen: set[tuple[int, int]] = set()
    for cid, tid, kind, interaction, channel, stage, *row in session.execute(answered):
        k = _kind(kind) or 0
        if (tid, k) in seen:
            continue
        seen.add((tid, k))
        mine[(cid, interaction, channel)][k] += 1
        for key in _keys(rules, _Row(*row), stage, interaction, channel):
            pop[key][k] += 1
    return ({k: Counts(*v) for k, v in mine.items()}, {k: Counts(*v) for k, v in pop.items()})


def stored(session: Session) -> tuple[dict[Key, Counts], dict[Key, Counts]]:
    """The counts as kept (contact-level, population), in recount's shape."""
    mine = {(cid, i, c): Counts(n, r, g) for cid, i, c, n, r, g in session.execute(select(
        STAT.contact_id, STAT.interaction, STAT.channel, STAT.sent, STAT.responses, STAT.negatives))}
    pop = {(s, v, i, c): Counts(n, r, g) for s, v, i, c, n, r, g in session.execute(select(
        PRIOR.scope, PRIOR.value, PRIOR.interaction, PRIOR.channel, PRIOR.sent, PRIOR.responses, PRIOR.negatives))}
    return mine, pop


def rebuild(session: Session, rules: Ruleset) -> None:
    """Replace the counts with a recount (after `similar_by` changed, say)."""
    mine, pop = recount(session, rules)
    session.execute(delete(_table(ChannelStat)))
    session.execute(delete(_table(ChannelPrior)))
    _apply(session, {k: list(v) for k, v in mine.items()}, {k: list(v) for k, v in pop.items()})
