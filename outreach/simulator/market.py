"""A synthetic B2B market for `outreach simulate` (issue 6): buyers with hidden channel preferences per
interaction type, and a provider that answers every send as that buyer would.

The default market is fixed by the issue: 4 personas with equal shares, each with a preferred channel
per interaction type drawn once per market; a buyer follows the persona with p=0.8 (else another of
the type's channels); the `title` attribute names the persona's typical title with p=0.7 (else one of
the four at random); a touch on the preferred channel is answered with p=0.25, on another with 0.05;
every email is "opened" with p=0.4 whatever the buyer thinks; a buyer touched more than twice in a
week opts out of that channel with p=0.02 per further touch; an answer leads to the next stage's
evidence with p=0.3. Buyers arrive uniformly over the run, so later weeks meet new buyers."""

from __future__ import annotations

import heapq
import random
import threading
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from channels.base import OutgoingMessage, Provider, SendResult
from outreach.evidence import EvidenceIn
from outreach.kinds import Channel
from outreach.ruleset import Ruleset

TITLES = ("VP Finance", "Head of Operations", "IT Director", "Procurement Manager")


@dataclass(frozen=True)
class MarketSpec:
    """The market's parameters: flags may change buyers, weeks and seed; the rest is the issue's."""

    buyers: int = 10_000
    weeks: int = 8
    seed: int = 1
    follow_persona: float = 0.8
    typical_title: float = 0.7
    p_preferred: float = 0.25
    p_other: float = 0.05
    p_open: float = 0.4
    free_touches_a_week: int = 2
    p_opt_out: float = 0.02
    p_advance: float = 0.3


@dataclass
class Market:
    """The hidden truth: personas' and buyers' preferred channel per interaction type, titles, arrivals."""

    spec: MarketSpec
    start: datetime
    channels: dict[str, list[str]]  # interaction type -> its channels, from the rules
    persona_prefers: list[dict[str, str]]  # persona -> interaction -> channel
    persona: list[int]  # buyer -> persona
    title: list[int]  # buyer -> index into TITLES
    prefers: list[dict[str, str]]  # buyer -> interaction -> channel
    arrival: list[datetime]

    @classmethod
    def generate(cls, rules: Ruleset, spec: MarketSpec, start: datetime) -> Market:
        rng = random.Random(spec.seed)
        channels: dict[str, list[str]] = {name: [str(c) for c in inter.channels]
                                          for name, inter in rules.interactions.items()}
        personas = len(TITLES)
        persona_prefers = [{i: rng.choice(chs) for i, chs in channels.items()} for _ in range(personas)]
        persona = [b % personas for b in range(spec.buyers)]
        rng.shuffle(persona)
        title, prefers, arrival = [], [], []
        span = timedelta(weeks=spec.weeks).total_seconds()
        for b in range(spec.buyers):
            q = persona[b]
            title.append(q if rng.random() < spec.typical_title else rng.randrange(personas))
            mine = {}
            for i, chs in channels.items():
                best = persona_prefers[q][i]
                others = [c for c in chs if c != best]
                mine[i] = best if not others or rng.random() < spec.follow_persona else rng.choice(others)
            prefers.append(mine)
            arrival.append(start + timedelta(seconds=int(rng.random() * span)))
        return cls(spec, start, channels, persona_prefers, persona, title, prefers, arrival)

    def describe(self) -> dict[str, Any]:
        return {**asdict(self.spec), "start": self.start.isoformat().replace("+00:00", "Z"),
                "arrivals": "uniform over the weeks", "personas": [
                    {"title": TITLES[q], "prefers": self.persona_prefers[q]} for q in range(len(TITLES))]}

    def contact_rows(self, first_stage: str) -> list[dict[str, Any]]:
        """The buyers as contact rows (contact id = buyer index + 1), all reachable on every channel."""
        return [{"id": b + 1, "email": f"buyer{b}@market.example", "phone": f"+1{2_000_000_000 + b}",
                 "first_name": "Buyer", "last_name": str(b), "company": f"Company {b % 997}",
                 "title": TITLES[self.title[b]], "consent_email": None, "consent_sms": True, "attributes": {},
                 "stage": first_stage, "stage_entered_at": self.arrival[b], "stage_entry": 0,
                 "created_at": self.arrival[b]}
                for b in range(self.spec.buyers)]


@dataclass
class Sent:
    buyer: int
    interaction: str
    channel: str
    at: datetime
    preferred: bool
    answered: bool
    opted_out: bool


@dataclass
class SimProvider(Provider):
    """Answers each send as the hidden buyer would: the events it decides are queued with the simulated
    time they happen and handed to Engine.record when the clock gets there."""

    market: Market
    rules: Ruleset
    now: datetime | None = None  # the simulated clock, set before every dispatch
    meta: dict[int, tuple[int, str, str]] = field(default_factory=dict)  # touch -> contact, interaction, stage
    sends: list[Sent] = field(default_factory=list)
    name: str = "sim"

    def __post_init__(self) -> None:
        self._pending: list[tuple[datetime, int, EvidenceIn]] = []
        self._seq = 0
        self._history: dict[int, list[datetime]] = {}
        self._lock = threading.Lock()
        ids = self.rules.stage_ids
        self._next = {s.id: self.rules.stages[k + 1] for k, s in enumerate(self.rules.stages) if k + 1 < len(ids)}

    def send(self, message: OutgoingMessage) -> SendResult:
        cid, interaction, stage = self.meta[message.touch_id]
        with self._lock:
            self._answer(message.touch_id, cid, interaction, stage, message.channel, self.now or self.market.start)
        return SendResult(self.name, f"sim-{message.touch_id}")

    def due(self, now: datetime) -> list[EvidenceIn]:
        """The events that have happened by `now`, oldest first."""
        out = []
        while self._pending and self._pending[0][0] <= now:
            out.append(heapq.heappop(self._pending)[2])
        return out

    def _emit(self, at: datetime, item: EvidenceIn) -> None:
        self._seq += 1
        heapq.heappush(self._pending, (at, self._seq, item))

    def _answer(self, tid: int, cid: int, interaction: str, stage: str, channel: str, now: datetime) -> None:
        spec, b = self.market.spec, cid - 1
        history = self._history.setdefault(b, [])
        # the same buyer's k-th touch draws the same luck under every policy (common random numbers)
        rng = random.Random(f"{spec.seed}:{b}:{len(history)}")
        week = [t for t in history if now - t < timedelta(days=7)]
        history.append(now)
        preferred = self.market.prefers[b].get(interaction) == channel
        opted_out = len(week) >= spec.free_touches_a_week and rng.random() < spec.p_opt_out
        u_answer, u_open, u_next = rng.random(), rng.random(), rng.random()
        answered = not opted_out and u_answer < (spec.p_preferred if preferred else spec.p_other)
        self.sends.append(Sent(b, interaction, channel, now, preferred, answered, opted_out))
        if channel == Channel.EMAIL and u_open < spec.p_open:
            opened = now + timedelta(minutes=rng.randrange(5, 720))
            self._emit(opened, EvidenceIn("email.opened", opened, "sim", contact_id=cid, touch_id=tid))
        if opted_out:
            kind = "sms.opted_out" if channel == Channel.SMS else "email.unsubscribed"
            at = now + timedelta(minutes=rng.randrange(5, 120))
            self._emit(at, EvidenceIn(kind, at, "sim", contact_id=cid, touch_id=tid))
            return
        if not answered:
            return
        kind = {"sms": "sms.replied", "meeting": "meeting.accepted"}.get(
            channel, "email.clicked" if rng.random() < 0.5 else "email.replied")
        at = now + timedelta(minutes=rng.randrange(10, 36 * 60))
        self._emit(at, EvidenceIn(kind, at, "sim", contact_id=cid, touch_id=tid))
        following = self._next.get(stage)
        if following is None or u_next >= spec.p_advance or not following.reached_by:
            return
        cond = rng.choice(following.reached_by)
        for k in range(cond.count):  # what the next stage asks for, an hour apart (inside any `within`)
            then = at + timedelta(hours=1 + k)
            self._emit(then, EvidenceIn(cond.event, then, "sim", contact_id=cid))
