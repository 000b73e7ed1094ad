"""Which channel each buyer answers, per interaction type (SPEC section 6, issue 6): the counts'
tables, population priors, the pure choice, and the learner the planner consults.

The counts (kept by outreach.learning.counts as touches go out and evidence comes in) are per
contact x interaction x channel, and per (scope, value) x interaction x channel where the scope is
`all`, the touch's `stage`, or `attr:<name>` for each `learning.similar_by` attribute. The choice
weighs the contact's own answers to this interaction type against a prior from buyers like them
(stage and similar attributes) and their answers to the other types; the marketer's order decides
while nothing is known, and keeps the pick unless another channel looks clearly better."""

from __future__ import annotations

import math
import random
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, UniqueConstraint, exists, func, select
from sqlmodel import Field, Session, SQLModel

from outreach.batch_loads import chunks, expanding
from outreach.models import Contact, table_of
from outreach.preferences import Learner, Pick
from outreach.ruleset import Ruleset

# The contact's own prior is worth this many responses at the population's rate: with it one
# response does not move the pick off the default and two do (see tests/unit/test_channel_choice.py).
PRIOR_RESPONSES = 6.0
# Another channel must look this much better than the default to replace it: noise keeps the default.
MARGIN = 0.2
CROSS_WEIGHT = 0.3  # a touch of another interaction type tells a third as much about this one
NEGATIVE_WEIGHT = 1.0  # a decline or unsubscribe cancels one of the contact's responses
# ...but a population's unsubscribes say more about how often it is touched than about the channel
POP_NEGATIVE_WEIGHT = 0.25
POP_STRENGTH = 30.0  # pseudo-touches that pull a group's rate towards its parent's
OPTIMISM = 2.0  # standard errors added to a population's rate: a channel rarely tried gets tried
THIN = 100  # fewer touches than this by buyers like C on a channel: evidence is thin there
THIN_OWN = 3  # fewer touches of the type than this to the contact: its own evidence is thin
MIN_POOLED = 20  # touches of a type, all buyers together, before the population has a say


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
    (value ''), `stage` (value: the touch's stage) or `attr:<name>` (value: lowercased attribute).
    A population's count is the sum over its `shard` rows: every send adds to the `all` row of its
    interaction and channel, so one row each would make every sending process wait on the others."""

    __table_args__ = (UniqueConstraint("scope", "value", "interaction", "channel", "shard"),)

    id: int | None = Field(default=None, primary_key=True)
    scope: str
    value: str
    interaction: str
    channel: str
    shard: int = 0
    sent: int = 0
    responses: int = 0
    negatives: int = 0


STAT, PRIOR, CONTACT = table_of(ChannelStat).c, table_of(ChannelPrior).c, table_of(Contact).c


def prior_totals(session: Session) -> dict[tuple[str, str, str, str], Counts]:
    """Each population's counts, its shards summed."""
    group = (PRIOR.scope, PRIOR.value, PRIOR.interaction, PRIOR.channel)
    rows = session.execute(select(*group, func.sum(PRIOR.sent), func.sum(PRIOR.responses),
                                  func.sum(PRIOR.negatives)).group_by(*group))
    return {(s, v, i, c): Counts(int(n), int(r), int(g)) for s, v, i, c, n, r, g in rows}


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
    other types; `similar`: the population's estimate per channel. A channel whose population rate
    rests on few touches is judged optimistically (so it gets tried while the evidence is thin);
    with `rng`, `explore` is the chance of trying such a channel at random while the contact's own
    evidence is thin too. Exploring only ever picks among the candidates, which are reachable."""
    none = Counts()
    if not similar and not any(own.get(c, none).sent or other.get(c, none).responses or other.get(c, none).negatives
                               for c in candidates):
        return None
    default = candidates[0]
    means, hopes = {}, {}
    for c in candidates:
        est = similar.get(c, Estimate(0.1, 0))
        mine, theirs = own.get(c, none), other.get(c, none)
        means[c] = posterior(est.rate, mine, theirs)
        # optimism in the face of uncertainty: a rate measured on few touches may be better than it looks
        sd = math.sqrt(est.rate * (1 - est.rate) / (est.touches + POP_STRENGTH)) if c in similar else 0.0
        hopes[c] = posterior(min(est.rate + OPTIMISM * sd, 0.999), mine, theirs)
    pick = _best(hopes, default)
    exploring = pick != _best(means, default)
    if not exploring and rng is not None and explore > 0:
        sent = sum(own.get(c, none).sent for c in candidates)
        thin = [c for c in candidates if c != pick and (c not in similar or similar[c].touches < THIN)]
        if thin and sent < THIN_OWN and rng.random() < explore:
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
        if est.touches:  # no similar buyer reached yet says nothing: leave it out
            parts.append(text + f" over {est.touches} touches" if est.touches < THIN else text)
    head = "exploring: evidence is thin; " if exploring else "learned: "
    return head + "; ".join(parts)


# --- population priors ------------------------------------------------------------------------


def _logit(p: float) -> float:
    # Counts can say more responses than sends for a moment (an answer arrives before its send is
    # counted, or a killed batch's sends never are): a rate is clamped into (0, 1), never an error.
    p = min(max(p, 1e-6), 1 - 1e-6)
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
        return cls(prior_totals(session))

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
        base = (max(pooled.responses - POP_NEGATIVE_WEIGHT * pooled.negatives, 0) + 1.0) / (pooled.sent + 10.0)
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
    return (max(n.responses - POP_NEGATIVE_WEIGHT * n.negatives, 0) + POP_STRENGTH * parent) / (n.sent + POP_STRENGTH)


class ContactFields(NamedTuple):
    """The fields of a contact that `similar_by` may name (besides its attributes)."""

    title: str | None
    company: str | None
    timezone: str | None
    owner: str | None
    attributes: dict[str, Any]


CONTACT_FIELDS = (CONTACT.title, CONTACT.company, CONTACT.timezone, CONTACT.owner, CONTACT.attributes)


def attribute_values(contact: Contact | ContactFields, similar_by: Iterable[str]) -> tuple[tuple[str, str], ...]:
    """(`attr:<name>`, value) for each similar_by attribute the contact has: from its attributes,
    else from the column of that name (title, company, timezone, owner)."""
    attributes = getattr(contact, "attributes", None) or {}
    out = []
    for name in similar_by:
        value = attributes.get(name)
        if value is None and name in ContactFields._fields:
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
                    select(CONTACT.id, CONTACT.stage, *CONTACT_FIELDS).where(CONTACT.id.in_(expanding(part)))):
                self._who[cid] = (stage, attribute_values(ContactFields(*row), similar_by))
                self._stats[cid] = {}
            for cid, interaction, channel, n, r, g in session.execute(
                    select(STAT.contact_id, STAT.interaction, STAT.channel, STAT.sent, STAT.responses,
                           STAT.negatives).where(STAT.contact_id.in_(expanding(part)))):
                self._stats[cid][(interaction, channel)] = Counts(n, r, g)

    def quiet(self, session: Session, interaction: str) -> ColumnElement[bool] | None:
        """`choose` returns None with no population estimate (fewer than MIN_POOLED touches of the type,
        all buyers together) and no counts of the contact's own: the contacts without a channel_stat row."""
        if self._priors is None:
            self._priors = Priors.load(session)
        pooled = self._priors.pooled.get(interaction)
        if pooled is not None and pooled.sent >= MIN_POOLED:
            return None
        return ~exists().where(STAT.contact_id == CONTACT.id)

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
