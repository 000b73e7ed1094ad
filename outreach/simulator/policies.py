"""The baselines `outreach simulate` measures channel learning against. Each is a planner learner
(Planner.learner_for) built from the rules, like outreach.learning.learner.ChannelLearner, so every policy
runs through the same planner, policy checks and dispatcher."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from outreach.batch_loads import chunks
from outreach.learning.learner import STAT, ChannelLearner, Counts
from outreach.preferences import ChannelLearning, Learner, Pick
from outreach.ruleset import Ruleset
from outreach.simulator.market import TITLES, Market

Stats = dict[tuple[str, str], Counts]


class _Counting:
    """Loads each contact's counts per (interaction, channel) for a planning batch."""

    def __init__(self, rules: Ruleset) -> None:
        self.rules = rules
        self.stats: dict[int, Stats] = {}

    def prepare(self, session: Session, ids: Sequence[int]) -> None:
        todo = sorted({i for i in ids if i not in self.stats})
        for i in todo:
            self.stats[i] = {}
        for part in chunks(todo):
            for cid, interaction, channel, n, r, g in session.execute(select(
                    STAT.contact_id, STAT.interaction, STAT.channel, STAT.sent, STAT.responses, STAT.negatives
            ).where(STAT.contact_id.in_(part))):
                self.stats[cid][(interaction, channel)] = Counts(n, r, g)


class FirstChannel(_Counting):
    """Always the interaction type's first reachable channel (what the rules say, nothing learned)."""

    def __call__(self, contact: Any, interaction: str) -> Learner | None:
        return None


class PerBuyer(_Counting):
    """Braze-like: one channel per buyer whatever the interaction type, the best response ratio once
    the buyer has had 3 touches on 2 channels."""

    def __call__(self, contact: Any, interaction: str) -> Learner | None:
        sent: dict[str, int] = {}
        answered: dict[str, int] = {}
        for (_, channel), n in self.stats.get(contact.id, {}).items():
            sent[channel] = sent.get(channel, 0) + n.sent
            answered[channel] = answered.get(channel, 0) + n.responses
        tried = [c for c, n in sent.items() if n]
        if sum(sent.values()) < 3 or len(tried) < 2:
            return None
        ranked = sorted(tried, key=lambda c: -answered[c] / sent[c])

        def learner(candidates: Sequence[str]) -> Pick | None:
            for c in ranked:
                if c in candidates:
                    return Pick(c, f"per buyer: {answered[c]}/{sent[c]} responses on {c}")
            return None

        return learner


class Informed(_Counting):
    """Told the market's parameters: infers each buyer's persona and preference by Bayes' rule from
    the title and every answer so far, and picks the most probable preferred channel."""

    def __init__(self, rules: Ruleset, market: Market) -> None:
        super().__init__(rules)
        self.market = market

    def __call__(self, contact: Any, interaction: str) -> Learner | None:
        m, spec = self.market, self.market.spec
        personas = len(TITLES)
        title = m.title[contact.id - 1]
        stats = self.stats.get(contact.id, {})

        def likelihood(inter: str, preferred: str) -> float:
            out = 1.0
            for c in m.channels[inter]:
                n = stats.get((inter, c))
                if n is not None and n.sent:
                    p = spec.p_preferred if c == preferred else spec.p_other
                    out *= p ** n.responses * (1 - p) ** (n.sent - n.responses)
            return out

        def p_prefers(q: int, inter: str, c: str) -> float:
            k = len(m.channels[inter])
            if k == 1:
                return 1.0
            return spec.follow_persona if m.persona_prefers[q][inter] == c else (1 - spec.follow_persona) / (k - 1)

        weight = []
        for q in range(personas):
            w = (spec.typical_title if title == q else 0.0) + (1 - spec.typical_title) / personas
            for inter in {i for (i, _) in stats if i != interaction}:
                w *= sum(p_prefers(q, inter, x) * likelihood(inter, x) for x in m.channels[inter])
            weight.append(w)

        def learner(candidates: Sequence[str]) -> Pick | None:
            score = {c: sum(weight[q] * p_prefers(q, interaction, c) for q in range(personas))
                     * likelihood(interaction, c) for c in candidates}
            total = sum(score.values()) or 1.0
            best = max(candidates, key=lambda c: (score[c], -candidates.index(c)))
            return Pick(best, f"informed: {best} preferred with p={score[best] / total:.2f}")

        return learner


class Oracle(_Counting):
    """Knows each buyer's preferred channel for every interaction type."""

    def __init__(self, rules: Ruleset, market: Market) -> None:
        super().__init__(rules)
        self.market = market

    def prepare(self, session: Session, ids: Sequence[int]) -> None:
        pass  # needs no counts

    def __call__(self, contact: Any, interaction: str) -> Learner | None:
        best = self.market.prefers[contact.id - 1].get(interaction)
        return lambda candidates: Pick(best, "oracle") if best in candidates else None


POLICIES = ("learned", "first_channel", "per_buyer", "informed", "oracle")


def policy(name: str, market: Market) -> Callable[[Ruleset], ChannelLearning]:
    """The learner class (rules -> learner) for a policy name."""
    if name == "learned":
        return partial(ChannelLearner, salt=str(market.spec.seed))
    if name == "first_channel":
        return FirstChannel
    if name == "per_buyer":
        return PerBuyer
    if name == "informed":
        return partial(Informed, market=market)
    if name == "oracle":
        return partial(Oracle, market=market)
    raise ValueError(f"unknown policy {name}: one of {', '.join(POLICIES)}")
