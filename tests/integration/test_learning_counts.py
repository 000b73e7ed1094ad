"""Channel learning in the engine: the counts kept incrementally (on SQLite and PostgreSQL) equal a
recount from the database, and what the planner picks from them.
The pure choice is tests/unit/test_channel_choice.py."""

from __future__ import annotations

import random
import threading
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlmodel import select

from channels.base import OutgoingMessage, SendResult
from outreach.contact_info import channel_picks
from outreach.contacts import import_csv
from outreach.db import session_scope
from outreach.engine import Engine
from outreach.evidence import EvidenceIn
from outreach.learning import counts as learning_counts
from outreach.learning import learner as learning
from outreach.learning.learner import ChannelLearner, Counts
from outreach.models import Contact, Touch
from outreach.project import Project
from outreach.queue import approve_all
from outreach.testing import RecordingProvider
from tests.support import ROOT, at

ROUTINE = ["email", "sms"]
MONDAY = at("2026-03-02 17:00")  # inside every sample contact's send window but Helsinki's


def load(engine: Engine) -> dict[str, int]:
    with session_scope(engine.db) as s:
        import_csv(s, ROOT / "contacts.csv", region="US", first_stage="aware", now=MONDAY)
        return {c.email: c.id for c in s.exec(select(Contact)).all()}  # type: ignore[misc]


def sent(engine: Engine, **where: object) -> list[Touch]:
    with session_scope(engine.db) as s:
        q = select(Touch).where(Touch.status == "sent")
        for k, v in where.items():
            q = q.where(getattr(Touch, k) == v)
        return list(s.exec(q.order_by(Touch.id)).all())


def test_incremental_counts_equal_a_recount(engine: Engine) -> None:
    ids = load(engine)
    ada, alan, linus = ids["ada@analytical.example"], ids["alan@bletchley.example"], ids["linus@kernel.example"]
    engine.plan(MONDAY)
    engine.dispatch(MONDAY)
    welcome = {t.contact_id: t for t in sent(engine, step="welcome")}
    assert alan in welcome and linus not in welcome  # Helsinki's evening: not sent yet
    grace, margaret = ids["grace@cobol.example"], ids["margaret@apollo.example"]
    later = MONDAY + timedelta(hours=1)
    engine.record([
        EvidenceIn("email.opened", later, "test", touch_id=welcome[grace].id),  # an open teaches nothing
        EvidenceIn("email.clicked", later, "test", touch_id=welcome[alan].id),
        EvidenceIn("email.replied", later, "test", touch_id=welcome[alan].id),  # the same touch: one answer
        EvidenceIn("email.unsubscribed", later, "test", touch_id=welcome[margaret].id),
        EvidenceIn("meeting.accepted", later, "test", contact_id=alan),  # no touch: no channel to credit
    ], now=later)
    tuesday = at("2026-03-03 15:00")
    with session_scope(engine.db) as s:
        approve_all(s, tuesday)
    engine.dispatch(tuesday)
    meetings = sent(engine, channel="meeting")
    assert [t.contact_id for t in meetings] == [alan]
    engine.record([EvidenceIn("meeting.declined", tuesday, "test", touch_id=meetings[0].id),
                   EvidenceIn("email.clicked", tuesday, "test", contact_id=ada)], now=tuesday)
    with session_scope(engine.db) as s:
        mine, pop = learning_counts.stored(s)
        assert (mine, pop) == learning_counts.recount(s, engine.project.rules)
    assert mine[(alan, "nurture", "email")] == Counts(1, 1, 0)
    assert mine[(grace, "nurture", "email")] == Counts(1, 0, 0)
    assert mine[(margaret, "nurture", "email")] == Counts(1, 0, 1)
    assert mine[(alan, "strategic", "meeting")] == Counts(1, 0, 1)
    assert pop[("attr:industry", "finance", "nurture", "email")].responses == 1
    assert pop[("stage", "evaluating", "strategic", "meeting")] == Counts(1, 0, 1)
    with session_scope(engine.db) as s:  # rebuilding from scratch changes nothing
        learning_counts.rebuild(s, engine.project.rules)
    with session_scope(engine.db) as s:
        assert learning_counts.stored(s) == (mine, pop)


class Killed(BaseException):
    """The process dying mid-batch (SIGKILL, OOM): nothing after it in the batch runs its cleanup."""


class DiesOnThirdSend(RecordingProvider):
    def __init__(self) -> None:
        super().__init__()
        self.taken = 0
        self.gate = threading.Lock()  # the dispatcher sends from several threads

    def send(self, message: OutgoingMessage) -> SendResult:
        with self.gate:
            self.taken += 1
            if self.taken > 2:
                raise Killed
        return super().send(message)


def test_a_batch_killed_mid_way_leaves_counts_equal_to_a_recount(project_path: Path) -> None:
    """Each send is counted in the transaction that records it (issue 12, finding 2): the two sends
    recorded before the process died are counted, the rest are not, and nothing is counted twice."""
    engine = Engine(Project.open(project_path), providers=DiesOnThirdSend().as_providers())
    load(engine)
    engine.plan(MONDAY)
    with pytest.raises(Killed):
        engine.dispatch(MONDAY)
    with session_scope(engine.db) as s:
        mine, pop = learning_counts.stored(s)
        assert (mine, pop) == learning_counts.recount(s, engine.project.rules)
    assert sum(c.sent for c in mine.values()) == len(sent(engine)) == 2


def test_population_counts_in_shards_add_up(engine: Engine) -> None:
    """Concurrent senders write a population's count to different shard rows; readers sum them."""
    key = ("all", "", "routine", "sms")
    with session_scope(engine.db) as s:
        for shard, deltas in ((3, [5, 2, 0]), (11, [4, 1, 1]), (3, [1, 0, 0])):
            learning_counts.add_counts(s, {}, {key: deltas}, shard=shard)
        learning_counts.add_counts(s, {}, {("stage", "aware", "routine", "sms"): [7, 0, 0]})  # a shard by chance
    with session_scope(engine.db) as s:
        rows = s.exec(select(learning.ChannelPrior).where(learning.ChannelPrior.scope == "all")).all()
        assert sorted((r.shard, r.sent) for r in rows) == [(3, 6), (11, 4)]
        assert learning.Priors.load(s).counts == {key: Counts(10, 3, 1), ("stage", "aware", "routine", "sms"):
                                                  Counts(7, 0, 0)}
        assert learning_counts.stored(s)[1] == learning.Priors.load(s).counts


def test_contacts_show_and_the_planner_use_the_learned_channel(sqlite_engine: Engine) -> None:
    engine = sqlite_engine
    ids = load(engine)
    ada = ids["ada@analytical.example"]
    with session_scope(engine.db) as s:  # two answers by sms to routine touches, as the hooks count them
        learning_counts.add_counts(s, {(ada, "routine", "sms"): [2, 2, 0]}, {})
    with session_scope(engine.db) as s:
        contact = s.get(Contact, ada)
        picks = channel_picks(s, engine, contact)
    assert picks["routine"] == {"channel": "sms", "reason": "learned: 2/2 responses on sms for routine"}
    assert picks["reminder"]["channel"] == "sms" and picks["strategic"]["reason"].startswith("default order")
    engine.record([EvidenceIn("email.clicked", MONDAY, "test", contact_id=ada)], now=MONDAY)
    engine.plan(MONDAY + timedelta(days=1))
    with session_scope(engine.db) as s:
        check_in = s.exec(select(Touch).where(Touch.contact_id == ada, Touch.step == "check-in")).one()
    assert (check_in.channel, check_in.channel_reason) == ("sms", "learned: 2/2 responses on sms for routine")


def test_the_choice_is_worked_out_once_per_population(sqlite_engine: Engine) -> None:
    """What keeps a plan of a million contacts cheap: the estimate for a population (its interaction,
    stage and attributes) is worked out once, then each contact of it is a lookup. Its speed is
    bench/plan.py's to measure."""
    rules = sqlite_engine.project.rules
    pop = {("all", "", "routine", c): Counts(5000, 600, 3) for c in ROUTINE}
    pop |= {("attr:title", f"t{k}", "routine", c): Counts(900, 90 + 40 * k, 0) for k in range(4) for c in ROUTINE}
    learner = ChannelLearner(rules)
    learner._priors = priors = learning.Priors(pop)
    rows = [Contact(id=i, title=f"t{i % 4}", stage="interested", attributes={}) for i in range(2000)]
    for row in rows:
        pick = learner(row, "routine")
        assert pick is not None and pick(ROUTINE) is not None
    assert len(priors._cache) == 4  # one per title


def test_a_failure_in_counting_never_costs_the_send(project_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Counting runs in a savepoint of the send's transaction: when it fails, the send is still recorded."""
    def broken(*_: object) -> None:
        raise ValueError("math domain error")

    monkeypatch.setattr("outreach.engine.count_sends", broken)
    provider = RecordingProvider()
    engine = Engine(Project.open(project_path), providers=provider.as_providers())
    load(engine)
    engine.plan(MONDAY)
    result = engine.dispatch(MONDAY)
    assert result.sent == len(provider.sent) == len(sent(engine)) > 0
    with session_scope(engine.db) as s:
        assert learning_counts.stored(s) == ({}, {})


def test_the_learner_hands_the_choice_what_it_loaded(sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """The planner hands the learner a row with the contact's addresses only (no stage, no title):
    `prepare` loads the rest. What reaches the pure choice (tests/unit/test_channel_choice.py): the
    contact's own counts for the type, its counts of the other types summed per channel, the
    population's estimate for its stage and similar_by attributes, and the rules' explore rate."""
    engine = sqlite_engine
    ids = load(engine)
    ada, grace = ids["ada@analytical.example"], ids["grace@cobol.example"]  # CTO in software; VP Engineering
    pop = {("all", "", "routine", "email"): [300, 30, 0], ("all", "", "routine", "sms"): [100, 20, 0],
           ("stage", "aware", "routine", "sms"): [40, 20, 0], ("attr:title", "cto", "routine", "sms"): [30, 3, 0],
           ("attr:industry", "software", "routine", "email"): [50, 15, 4]}
    with session_scope(engine.db) as s:
        learning_counts.add_counts(s, {(ada, "routine", "sms"): [1, 1, 0], (ada, "reminder", "sms"): [1, 1, 1],
                                       (ada, "nurture", "sms"): [2, 0, 1], (ada, "nurture", "email"): [2, 1, 0],
                                       (ada, "reminder", "email"): [1, 1, 2]}, pop)
    calls: list[dict[str, object]] = []
    choose = learning.choose

    def spy(*args: object, **kw: object) -> learning.Pick | None:
        calls.append({"args": args, **kw})
        return choose(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(learning, "choose", spy)
    ada_attrs = (("attr:title", "cto"), ("attr:industry", "software"))
    learner = ChannelLearner(engine.project.rules)
    with session_scope(engine.db) as s:
        learner.prepare(s, [ada, grace])
    planners_row = SimpleNamespace(id=ada, email="ada@analytical.example", phone="+14155550101")
    learner(planners_row, "routine")(ROUTINE)  # type: ignore[misc]
    similar = learning.Priors({k: Counts(*v) for k, v in pop.items()}).estimate("routine", ROUTINE, "aware", ada_attrs)
    assert calls[-1]["args"] == ("routine", ROUTINE, {"sms": Counts(1, 1, 0)},
                                 {"sms": Counts(3, 1, 2), "email": Counts(3, 2, 2)}, similar)
    assert calls[-1]["explore"] == 0.05 and similar["sms"] != similar["email"]

    # a contact the batch did not load is judged on what its object says; one never saved has no counts
    calls.clear()
    outsider = Contact(id=None, stage="aware", title="CTO", attributes={"industry": "software"})
    learner(outsider, "routine")(ROUTINE)  # type: ignore[misc]
    assert calls[-1]["args"][2:] == ({}, {}, similar)  # type: ignore[index]
    learner(SimpleNamespace(id=10_000), "routine")(ROUTINE)  # type: ignore[misc]
    assert calls[-1]["args"][4] == learning.Priors({k: Counts(*v) for k, v in pop.items()}).estimate(  # type: ignore[index]
        "routine", ROUTINE, None, ())

    # explore: the learner's own rate beats the rules'; none, no luck drawn
    calls.clear()
    with session_scope(engine.db) as s:
        quiet = ChannelLearner(engine.project.rules, explore=0.0)
        quiet.prepare(s, [ada])
    quiet(planners_row, "routine")(ROUTINE)  # type: ignore[misc]
    assert calls[-1]["explore"] == 0.0 and calls[-1]["rng"] is None


def test_the_same_contact_type_and_touches_draw_the_same_luck(sqlite_engine: Engine,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Exploring is a schedule, not a dice roll per planning run: the same contact, interaction type
    and number of touches draw the same numbers in any process; another contact or one touch more,
    others."""
    engine = sqlite_engine
    ids = load(engine)
    ada, grace = ids["ada@analytical.example"], ids["grace@cobol.example"]
    draws: list[float] = []

    def spy(*args: object, rng: random.Random | None = None, **kw: object) -> None:
        assert rng is not None
        draws.append(rng.random())

    monkeypatch.setattr(learning, "choose", spy)

    def draw(cid: int, interaction: str = "routine") -> float:
        learner = ChannelLearner(engine.project.rules, salt="s")
        with session_scope(engine.db) as s:
            learner.prepare(s, [cid])
        learner(SimpleNamespace(id=cid), interaction)(ROUTINE)  # type: ignore[misc]
        return draws[-1]

    first = draw(ada)
    assert draw(ada) == first and draw(grace) != first and draw(ada, "reminder") != first
    with session_scope(engine.db) as s:
        learning_counts.add_counts(s, {(ada, "routine", "email"): [1, 0, 0]}, {})
    assert draw(ada) != first
    with session_scope(engine.db) as s:
        learning_counts.add_counts(s, {(ada, "reminder", "email"): [1, 0, 0]}, {})  # another type's touch
    assert draw(ada) == draw(ada) != first


@pytest.mark.parametrize(("pooled", "quiet"), [(19, True), (20, False)])
def test_quiet_contacts_are_those_nothing_is_learned_of(sqlite_engine: Engine, pooled: int, quiet: bool) -> None:
    """`quiet` lets the planner skip the choice for contacts it would leave to the default order: with
    fewer than 20 touches of the type, all buyers together, those without counts of their own."""
    engine = sqlite_engine
    ids = load(engine)
    ada = ids["ada@analytical.example"]
    with session_scope(engine.db) as s:
        learning_counts.add_counts(s, {(ada, "reminder", "sms"): [1, 1, 0]},
                                   {("all", "", "routine", "email"): [pooled - 5, 1, 0],
                                    ("all", "", "routine", "sms"): [5, 1, 0]})
    learner = ChannelLearner(engine.project.rules)
    with session_scope(engine.db) as s:
        routine = learner.quiet(s, "routine")
        assert (routine is not None) is quiet
        if routine is not None:
            assert sorted(s.exec(select(Contact.id).where(routine)).all()) == sorted(set(ids.values()) - {ada})
        nurture = learner.quiet(s, "nurture")  # nobody touched with it yet
        assert nurture is not None and ada not in s.exec(select(Contact.id).where(nurture)).all()
