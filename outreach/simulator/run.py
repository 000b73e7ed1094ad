"""`outreach simulate`: run the project's own rules over a synthetic market (outreach.simulator.market) for
some weeks of simulated time, once per channel policy, and measure each.

Every policy runs on its own temporary SQLite database (in memory-backed scratch space when there is
some), in its own process, through the real Engine: the planner (with the policy as its learner),
the reps' approval (all at once), the dispatcher with its send windows, caps and consent checks,
the channel-learning counts, and Engine.record for every event the simulated buyers produce. Only
the rendering of content is skipped: simulated buyers answer the channel, not the words. The clock
is simulated: it ticks every two hours while a send window is open, and at midnight."""

from __future__ import annotations

import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from multiprocessing import get_all_start_methods, get_context
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, insert, or_, select

from channels.base import OutgoingMessage
from outreach import db
from outreach.config import Settings
from outreach.db import session_scope
from outreach.dispatcher import Dispatcher
from outreach.engine import Engine
from outreach.kinds import Channel
from outreach.learning.learner import CONTACT
from outreach.models import Contact, StageChange, Touch
from outreach.policy import next_open
from outreach.project import Project
from outreach.queue import approve_all
from outreach.ruleset import Ruleset
from outreach.simulator import content
from outreach.simulator.market import Market, MarketSpec, Sent, SimProvider
from outreach.simulator.policies import POLICIES, policy

START = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday
WEEKS_LATE = (4, 8)  # the weeks the target is measured on: 5 to 8
TICK_HOURS = 2


class _SimEngine(Engine):
    """The Engine with every channel on the simulated provider, which learns each touch's
    interaction type and stage from the dispatcher's build step (a message does not carry them)."""

    def __init__(self, project: Project, provider: SimProvider) -> None:
        super().__init__(project, providers={"email": provider, "sms": provider, "meeting": provider},
                         worker_id="simulator")
        self.sim = provider

    def dispatcher(self) -> Dispatcher:
        dispatcher = super().dispatcher()
        meta = self.sim.meta

        def build(touch: Touch, contact: Contact, rules: Ruleset) -> OutgoingMessage:
            # simulated buyers answer the channel, not the words (`outreach check` renders every
            # template): rendering tens of thousands of messages would only slow the run down
            meta[touch.id or 0] = (touch.contact_id, touch.interaction, touch.stage)
            return OutgoingMessage(touch_id=touch.id or 0, channel=touch.channel or Channel.EMAIL,
                                   to_email=contact.email, to_phone=contact.phone, subject=touch.content,
                                   text=touch.content)

        dispatcher.build = build
        return dispatcher


def ticks(settings: Settings, start: datetime, weeks: int, every: int = TICK_HOURS) -> list[tuple[datetime, bool]]:
    """(time, whether a send window is open then): every few hours while a window is open, and each
    midnight. The caps allow a buyer one touch a day, and a trigger's `within` of 2h still holds,
    so finer ticks change little but the cost."""
    tz = ZoneInfo(settings.timezone)
    windows = list(settings.policy.send_windows.values())
    out = []
    for hour in range(0, weeks * 7 * 24, every):
        at = start + timedelta(hours=hour)
        is_open = any(next_open(at, tz, w) == at for w in windows)
        if is_open or at.astimezone(tz).hour < every:
            out.append((at, is_open))
    return out


def _scratch() -> str | None:
    """Memory-backed scratch space when there is some: the database is thrown away anyway."""
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None


def run_policy(root: Path, settings: Settings, rules: Ruleset, spec: MarketSpec, name: str) -> dict[str, Any]:
    """One policy over the market, on a fresh temporary database: the policy's figures."""
    started = time.perf_counter()
    market = Market.generate(rules, spec, START)
    with tempfile.TemporaryDirectory(prefix="outreach-sim-", dir=_scratch()) as tmp:
        url = f"sqlite:///{Path(tmp) / 'simulate.db'}"
        sim_settings = settings.model_copy(update={
            "database": url,
            "sender": settings.sender.model_copy(update={"sms_rate": 1e9}),  # simulated time: no throttling
            "dispatch": settings.dispatch.model_copy(update={"concurrency": 1, "batch_size": 1000}),
        })
        db.migrate(url)
        try:
            provider = SimProvider(market, rules)
            engine = _SimEngine(Project(root, sim_settings, rules), provider)
            engine.learner_class = policy(name, market)
            with session_scope(engine.db) as s:
                rows = market.contact_rows(rules.first_stage)
                for i in range(0, len(rows), 2000):
                    s.execute(insert(Contact), rows[i:i + 2000])
            _run(engine, provider, sim_settings, rules, spec.weeks)
            with session_scope(engine.db) as s:
                advances = s.execute(select(func.count()).select_from(StageChange)).scalar_one()
        finally:
            db.forget(url)  # a temporary database: forget its engine with it
    figures = measure(provider.sends, advances, START)
    figures["seconds"] = round(time.perf_counter() - started, 1)
    return figures


def _run(engine: _SimEngine, provider: SimProvider, settings: Settings, rules: Ruleset, weeks: int) -> None:
    afters = sorted({step.earliest for steps in rules.playbooks.values() for step in steps})
    last_plan = START - timedelta(days=1)
    for now, is_open in ticks(settings, START, weeks):
        events = provider.due(now)
        if events:
            engine.record(events, now=now)
        if not is_open:
            continue
        with session_scope(engine.db) as s:
            # only contacts whose stage entry made a step come due since the last planning tick: the
            # planner decides as always, it is just not asked about the 10,000 others every hour
            ids = list(s.execute(select(CONTACT.id).where(or_(*(
                (CONTACT.stage_entered_at > last_plan - a) & (CONTACT.stage_entered_at <= now - a)
                for a in afters)))).scalars())
        last_plan = now
        if ids:
            engine.plan(now, ids)
        with session_scope(engine.db) as s:
            approve_all(s, now)  # the reps approve everything, at once
        provider.now = now
        engine.dispatch(now)


def measure(sends: list[Sent], advances: int, start: datetime) -> dict[str, Any]:
    late = [s for s in sends if start + timedelta(weeks=WEEKS_LATE[0]) <= s.at < start + timedelta(weeks=WEEKS_LATE[1])]

    def rate(items: list[Sent]) -> float | None:
        return round(sum(s.answered for s in items) / len(items), 4) if items else None

    return {
        "response_rate": rate(sends),
        "response_rate_weeks_5_8": rate(late),
        "on_preferred_share": round(sum(s.preferred for s in sends) / len(sends), 4) if sends else None,
        "opt_outs": sum(s.opted_out for s in sends),
        "stage_advances_per_100_touches": round(100 * advances / len(sends), 2) if sends else None,
        "touches": len(sends),
        "touches_weeks_5_8": len(late),
        "responses": sum(s.answered for s in sends),
        "stage_advances": advances,
    }


def simulate(project: Project, buyers: int = 10_000, weeks: int = 8, seed: int = 1,
             policies: tuple[str, ...] = POLICIES, jobs: int | None = None) -> dict[str, Any]:
    """Every policy over the same market (same seed); `jobs` processes at a time (default: the CPUs)."""
    spec = replace(MarketSpec(), buyers=buyers, weeks=weeks, seed=seed)
    started = time.perf_counter()
    args = (project.path, project.settings, project.rules, spec)
    jobs = max(1, min(jobs or len(policies), len(policies)))
    if jobs == 1:
        results = [run_policy(*args, name) for name in policies]
    else:
        # fork: the children need the loaded rules, and must not re-run the caller's main module
        method = "fork" if "fork" in get_all_start_methods() else "spawn"
        with ProcessPoolExecutor(jobs, mp_context=get_context(method)) as pool:
            results = list(pool.map(run_policy, *zip(*[(*args, name) for name in policies], strict=True)))
    figures = dict(zip(policies, results, strict=True))
    out = {"market": Market.generate(project.rules, spec, START).describe(), "policies": figures,
           "seconds": round(time.perf_counter() - started, 1)}
    if {"learned", "first_channel", "oracle"} <= set(figures):
        out["gap_closed_weeks_5_8"] = gap_closed(figures)
    # which content: its own fast model of the same market (outreach.simulator.content), two seeds
    out["content"] = content.compare(spec, (seed, seed + 1))
    return out


def gap_closed(figures: dict[str, dict[str, Any]], key: str = "response_rate_weeks_5_8") -> float | None:
    """The share of the first_channel -> oracle gap in response rate that learning closes."""
    low, high, ours = (figures[p][key] for p in ("first_channel", "oracle", "learned"))
    if None in (low, high, ours) or high == low:
        return None
    closed: float = round((ours - low) / (high - low), 4)
    return closed


def table(result: dict[str, Any]) -> str:
    m = result["market"]
    lines = [f"market: {m['buyers']} buyers over {m['weeks']} weeks (seed {m['seed']}), 4 personas; "
             f"answer p={m['p_preferred']} on the preferred channel, {m['p_other']} on another",
             f"{'policy':<14}{'touches':>9}{'response':>10}{'weeks 5-8':>11}{'on preferred':>14}"
             f"{'opt-outs':>10}{'advances/100':>14}"]

    def pct(v: float | None) -> str:
        return "-" if v is None else f"{v:.1%}"

    for name, f in result["policies"].items():
        lines.append(f"{name:<14}{f['touches']:>9}{pct(f['response_rate']):>10}{pct(f['response_rate_weeks_5_8']):>11}"
                     f"{pct(f['on_preferred_share']):>14}{f['opt_outs']:>10}{f['stage_advances_per_100_touches']:>14}")
    if result.get("gap_closed_weeks_5_8") is not None:
        lines.append(f"learned closes {result['gap_closed_weeks_5_8']:.0%} of the first_channel -> oracle gap "
                     "in response rate over weeks 5-8")
    if result.get("content"):
        lines.append(content.content_text(result["content"]))
    lines.append(f"({result['seconds']}s)")
    return "\n".join(lines)
