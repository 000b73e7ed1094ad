"""Channel choice: the pure decision as tables of cases (what is known about a buyer -> the channel
and why), exploration, and stated preferences beating learned ones."""

from __future__ import annotations

import math
import random
from types import SimpleNamespace

import pytest

from outreach.learning import counts as learning_counts
from outreach.learning.learner import ContactFields, Counts, Estimate, Priors, attribute_values, choose, posterior
from outreach.policy import Reach
from outreach.preferences import pick_channel

ROUTINE = ["email", "sms"]

CASES = [
    # (what is known, the pick, a piece of its reason); nothing known: the default order speaks
    ({}, None, None),
    ({"own": {"sms": Counts(1, 1, 0)}}, "email", "1/1 on sms"),  # one lucky click does not
    ({"own": {"sms": Counts(2, 2, 0)}}, "sms", "learned: 2/2 responses on sms for routine"),
    ({"own": {"sms": Counts(3, 2, 0)}}, "sms", "learned: 2/3 responses on sms for routine"),
    ({"own": {"sms": Counts(1, 1, 0), "email": Counts(3, 0, 0)}}, "sms", "0/3 on email"),  # email ignored 3 times
    # the population: buyers like C answer sms far better; or only a little better (the default stays)
    ({"similar": {"email": Estimate(0.11, 800), "sms": Estimate(0.19, 400)}}, "sms",
     "similar buyers 19% (11% on email)"),
    ({"similar": {"email": Estimate(0.15, 800), "sms": Estimate(0.16, 400)}}, "email", "similar buyers 15%"),
    # the contact's own answers outweigh the population's lean, one answer does not
    ({"own": {"sms": Counts(1, 1, 0)}, "similar": {"email": Estimate(0.2, 500), "sms": Estimate(0.2, 500)}},
     "email", "similar buyers 20%"),
    ({"own": {"sms": Counts(2, 2, 0)}, "similar": {"email": Estimate(0.2, 500), "sms": Estimate(0.2, 500)}},
     "sms", "2/2 responses on sms"),
    ({"own": {"sms": Counts(2, 2, 0)}, "similar": {"email": Estimate(0.3, 500), "sms": Estimate(0.15, 500)}},
     "email", "2/2 on sms"),  # unless buyers like C clearly answer the default better
    # answers on other interaction types tip the balance, but do not decide alone
    ({"other": {"sms": Counts(4, 4, 0)}}, "email", None),
    ({"own": {"sms": Counts(1, 1, 0)}, "other": {"sms": Counts(2, 2, 0)}}, "sms", "2/2 on sms for other types"),
    # sent and never answered: still the default, and it says so
    ({"own": {"email": Counts(2, 0, 0)}}, "email", "learned: 0/2 responses on email for routine"),
]


@pytest.mark.parametrize(("known", "channel", "reason"), CASES)
def test_choice(known: dict[str, dict[str, object]], channel: str | None, reason: str | None) -> None:
    pick = choose("routine", ROUTINE, known.get("own", {}), known.get("other", {}),  # type: ignore[arg-type]
                  known.get("similar", {}))  # type: ignore[arg-type]
    assert (pick.channel if pick else None) == channel
    if reason:
        assert pick is not None and reason in pick.reason, pick


def test_opens_are_not_counted_and_declines_count_against() -> None:
    meeting = ["meeting", "email"]
    assert choose("strategic", meeting, {"meeting": Counts(2, 0, 0)}, {}, {}).channel == "meeting"  # type: ignore[union-attr]
    declined = choose("strategic", meeting, {"meeting": Counts(2, 0, 2)}, {}, {})
    assert declined is not None and declined.channel == "email"
    assert "2 declined or opted out on meeting" in declined.reason
    assert learning_counts.kind_of("email.opened") is None and learning_counts.kind_of("email.clicked") == 1
    assert learning_counts.kind_of("meeting.declined") == 2 and learning_counts.kind_of("sms.opted_out") == 2


def test_stated_beats_learned() -> None:
    reach = Reach("a@b.example", "+14155550101", True, True)

    def learner(candidates: object) -> object:
        return choose("routine", ROUTINE, {"sms": Counts(5, 5, 0)}, {}, {})

    assert pick_channel(order=ROUTINE, reach=reach, learner=learner).channel == "sms"  # type: ignore[arg-type]
    stated = pick_channel(order=ROUTINE, reach=reach, stated="email", learner=learner)  # type: ignore[arg-type]
    assert (stated.channel, stated.reason) == ("email", "stated by the contact")


def test_exploration_is_a_little_where_thin_and_never_an_opted_out_channel() -> None:
    # as good as the default on few touches: tried, for it may be better than it looks
    hopeful = choose("routine", ROUTINE, {}, {}, {"email": Estimate(0.1, 900), "sms": Estimate(0.1, 5)})
    assert hopeful is not None and hopeful.channel == "sms" and hopeful.reason.startswith("exploring")
    # worse on few touches: tried now and then (the rules' explore: 0.05), never when well known
    thin = {"email": Estimate(0.15, 900), "sms": Estimate(0.03, 40)}
    picks = [choose("routine", ROUTINE, {}, {}, thin, explore=0.05, rng=random.Random(i)) for i in range(2000)]
    explored = [p for p in picks if p and p.channel == "sms"]
    assert 40 < len(explored) < 170 and all(p.reason.startswith("exploring") for p in explored)
    thick = {"email": Estimate(0.15, 900), "sms": Estimate(0.03, 900)}
    assert all(choose("routine", ROUTINE, {}, {}, thick, explore=0.5, rng=random.Random(i)).channel == "email"  # type: ignore[union-attr]
               for i in range(200))
    # the buyer sent STOP: sms is no candidate, so no schedule ever explores it
    reach = Reach("a@b.example", "+14155550101", True, True, frozenset({"sms"}))
    for i in range(300):
        rng = random.Random(i)

        def learner(candidates: object, rng: random.Random = rng) -> object:
            return choose("routine", list(candidates), {}, {}, thin, explore=1.0, rng=rng)  # type: ignore[call-overload]

        assert pick_channel(order=ROUTINE, reach=reach, learner=learner).channel == "email"  # type: ignore[arg-type]


# counts can say more responses than sends for a moment (issue 12): every estimate stays defined
@pytest.mark.parametrize("top", [
    Counts(0, 0, 0), Counts(10, 25, 0), Counts(3, 3, 0), Counts(5, 0, 40), Counts(1, 1_000_000, 0)])
def test_population_estimates_are_defined_for_any_counts(top: Counts) -> None:
    counts = {("all", "", "routine", "email"): Counts(500, 50, 0), ("all", "", "routine", "sms"): top,
              ("stage", "aware", "routine", "sms"): top}
    estimates = Priors(counts).estimate("routine", ["email", "sms"], "aware", ())
    assert all(0 < e.rate < 1 and math.isfinite(e.rate) for e in estimates.values())


# The population's estimate, by hand: the type's pooled rate is (responses - negatives/4 + 1) /
# (sent + 10); each channel's rate is shrunk towards it by 30 pseudo-touches, (responses -
# negatives/4 + 30 x pooled) / (sent + 30); a group (the stage, an attribute) is shrunk towards its
# channel's rate the same way, and the groups' lifts multiply the odds. `touches` is the thinnest
# attribute group's (a stage is never thin), 0 for a value nobody has.
ALL = {("all", "", "routine", "email"): Counts(470, 20, 0), ("all", "", "routine", "sms"): Counts(520, 79, 0)}
POOLED = 100 / 1000  # 99 responses of 990 touches, plus one in ten
EMAIL, SMS = (20 + 30 * POOLED) / 500, (79 + 30 * POOLED) / 550
AWARE_SMS = (35 + 30 * SMS) / 100           # the stage's 35/70 on sms
FINANCE_SMS = (10 + 30 * SMS) / 50          # the attribute's 10/20 on sms


def odds(p: float) -> float:
    return p / (1 - p)


def rate(o: float) -> float:
    return o / (1 + o)


ESTIMATES = [
    # (population counts beyond ALL, stage, attributes, {channel: (rate, touches)})
    ({}, None, (), {"email": (EMAIL, 470), "sms": (SMS, 520)}),
    ({}, "aware", (), {"email": (EMAIL, 470), "sms": (SMS, 520)}),  # no one at the stage yet: the parent
    ({("stage", "aware", "routine", "sms"): Counts(70, 35, 0)}, "aware", (),
     {"email": (EMAIL, 470), "sms": (AWARE_SMS, 520)}),
    ({("attr:industry", "finance", "routine", "sms"): Counts(20, 10, 0)}, None, (("attr:industry", "finance"),),
     {"email": (EMAIL, 0), "sms": (FINANCE_SMS, 20)}),
    ({("stage", "aware", "routine", "sms"): Counts(70, 35, 0),
      ("attr:industry", "finance", "routine", "sms"): Counts(20, 10, 0)}, "aware", (("attr:industry", "finance"),),
     {"email": (EMAIL, 0), "sms": (rate(odds(AWARE_SMS) * odds(FINANCE_SMS) / odds(SMS)), 20)}),
    # negatives count a quarter against a population; never below no response at all
    ({("stage", "aware", "routine", "sms"): Counts(70, 1, 8)}, "aware", (),
     {"email": (EMAIL, 470), "sms": ((0 + 30 * SMS) / 100, 520)}),
    ({("stage", "aware", "routine", "sms"): Counts(70, 35, 8)}, "aware", (),
     {"email": (EMAIL, 470), "sms": ((33 + 30 * SMS) / 100, 520)}),
]


@pytest.mark.parametrize(("extra", "stage", "attrs", "expected"), ESTIMATES)
def test_population_estimates_by_hand(extra: dict[tuple[str, str, str, str], Counts], stage: str | None,
                                      attrs: tuple[tuple[str, str], ...],
                                      expected: dict[str, tuple[float, int]]) -> None:
    estimates = Priors(ALL | extra).estimate("routine", ["email", "sms"], stage, attrs)
    assert {c: (pytest.approx(e.rate, rel=1e-9), e.touches) for c, e in estimates.items()} == expected


def test_negatives_lower_the_pooled_and_the_channels_rate() -> None:
    counts = {("all", "", "routine", "email"): Counts(470, 20, 8), ("all", "", "routine", "sms"): Counts(520, 79, 0)}
    pooled = (99 - 2 + 1) / 1000
    estimates = Priors(counts).estimate("routine", ["email", "sms"], None, ())
    assert estimates["email"].rate == pytest.approx((18 + 30 * pooled) / 500, rel=1e-9)
    assert estimates["sms"].rate == pytest.approx((79 + 30 * pooled) / 550, rel=1e-9)
    # a type nobody has answered yet: one response in 10 pseudo-touches more than were sent
    silent = {("all", "", "routine", "email"): Counts(470, 0, 8), ("all", "", "routine", "sms"): Counts(520, 0, 0)}
    estimates = Priors(silent).estimate("routine", ["email", "sms"], None, ())
    assert estimates["email"].rate == pytest.approx(30 * (1 / 1000) / 500, rel=1e-9)


@pytest.mark.parametrize(("sent", "known"), [(19, False), (20, True)])
def test_the_population_has_a_say_from_twenty_touches_of_the_type(sent: int, known: bool) -> None:
    counts = {("all", "", "routine", "email"): Counts(sent - 5, 1, 0), ("all", "", "routine", "sms"): Counts(5, 1, 0),
              ("all", "", "reminder", "sms"): Counts(500, 50, 0)}  # another type's touches do not count
    assert bool(Priors(counts).estimate("routine", ["email", "sms"], None, ())) is known


@pytest.mark.parametrize(("prior", "own", "other", "expected"), [
    (0.1, Counts(), Counts(), 0.1),                               # nothing known: the prior
    (0.1, Counts(4, 2, 0), Counts(), (6 + 2) / (60 + 4)),         # the prior is worth 6 responses
    (0.1, Counts(4, 2, 1), Counts(), (6 + 1) / (60 + 4)),         # a decline cancels a response
    (0.1, Counts(), Counts(10, 5, 1), (6 + 0.3 * 4) / (60 + 0.3 * 10)),  # other types count 0.3 each
    (0.1, Counts(10, 0, 20), Counts(), 0.0),                      # more declines than anything: never below 0
    (0.0, Counts(), Counts(), 1e-3),                              # a prior of 0 or 1 is clamped
    (1.0, Counts(), Counts(), 0.999),
    (0.5, Counts(2, 2, 0), Counts(3, 3, 0), (6 + 2 + 0.9) / (12 + 2 + 0.9)),
])
def test_the_posterior_by_hand(prior: float, own: Counts, other: Counts, expected: float) -> None:
    assert posterior(prior, own, other) == pytest.approx(expected, rel=1e-12)


E, R = Estimate, Counts
FULL_REASONS = [
    # (own, other, similar, the pick, its whole reason)
    ({"sms": R(3, 2, 0), "email": R(2, 0, 1)}, {"sms": R(4, 1, 0)}, {"email": E(0.1, 900), "sms": E(0.2, 50)},
     "sms", "learned: 2/3 responses on sms for routine; 1 declined or opted out on email; 0/2 on email; "
            "1/4 on sms for other types; similar buyers 20% (10% on email) over 50 touches"),
    ({"email": R(3, 1, 0)}, {}, {"email": E(0.1, 900), "sms": E(0.1, 0)},
     "sms", "exploring: evidence is thin; sms for routine; 1/3 on email"),  # no one like C reached on sms
    ({}, {}, {"email": E(0.1, 900), "sms": E(0.4, 40)},
     "sms", "learned: sms for routine; similar buyers 40% (10% on email) over 40 touches"),
    ({}, {}, {"email": E(0.1, 900), "sms": E(0.4, 100)},
     "sms", "learned: sms for routine; similar buyers 40% (10% on email)"),  # 100 touches: not thin
    ({}, {}, {"sms": E(0.4, 100)}, "sms", "learned: sms for routine; similar buyers 40%"),
    ({"email": R(2, 0, 0)}, {"email": R(1, 1, 0)}, {},
     "email", "learned: 0/2 responses on email for routine; 1/1 on email for other types"),
    # exactly 20% better is not clearly better: the default stays; a little more and it moves
    ({"sms": R(90, 12, 0)}, {}, {}, "email", "learned: email for routine; 12/90 on sms"),
    ({"sms": R(90, 13, 0)}, {}, {}, "sms", "learned: 13/90 responses on sms for routine"),
    # a channel nobody like C has tried is not judged hopeful: no optimism without a population rate
    ({}, {}, {"email": E(0.1, 900)}, "email", "learned: email for routine; similar buyers 10%"),
    # optimism: a rate measured on fewer than ~160 touches may be 20% better than the default's
    ({}, {}, {"email": E(0.1, 900), "sms": E(0.1, 159)},
     "sms", "exploring: evidence is thin; sms for routine; similar buyers 10% (10% on email)"),
    ({}, {}, {"email": E(0.1, 900), "sms": E(0.1, 160)}, "email", "learned: email for routine; similar buyers 10%"),
    # what the contact did on another type, or a channel it cannot be reached on
    ({}, {"sms": R(2, 0, 1)}, {}, "email", "learned: email for routine"),
    ({}, {"sms": R(3, 0, 0)}, {}, None, None),          # sent, never answered, on other types: nothing learned
    ({"meeting": R(3, 3, 0)}, {}, {}, None, None),      # answers on a channel that is no candidate
]


@pytest.mark.parametrize(("own", "other", "similar", "channel", "reason"), FULL_REASONS)
def test_the_whole_reason(own: dict[str, Counts], other: dict[str, Counts], similar: dict[str, Estimate],
                          channel: str | None, reason: str | None) -> None:
    pick = choose("routine", ROUTINE, own, other, similar)
    assert ((pick.channel, pick.reason) if pick else (None, None)) == (channel, reason)


def test_exploring_needs_thin_evidence_of_the_contacts_own() -> None:
    """With `explore`, a channel whose population rate is thin is tried now and then, but only while
    the contact has had fewer than three touches of the type; never a channel already picked."""
    thin = {"email": Estimate(0.15, 900), "sms": Estimate(0.03, 99)}

    def explored(own: dict[str, Counts], similar: dict[str, Estimate] = thin) -> int:
        picks = [choose("routine", ROUTINE, own, {}, similar, explore=0.5, rng=random.Random(i)) for i in range(200)]
        assert all(p is not None and (p.channel == "sms") == p.reason.startswith("exploring") for p in picks)
        return sum(1 for p in picks if p and p.channel == "sms")

    assert 70 < explored({}) < 130
    assert 70 < explored({"email": Counts(2, 0, 0)}) < 130     # two touches: still thin
    assert explored({"email": Counts(3, 0, 0)}) == 0           # three: the contact's own evidence speaks
    assert explored({"email": Counts(1, 0, 0), "sms": Counts(2, 0, 0)}) == 0  # counted over every channel
    assert explored({}, {"email": Estimate(0.15, 900), "sms": Estimate(0.03, 100)}) == 0  # 100 touches: known
    assert 70 < explored({}, {"email": Estimate(0.15, 900)}) < 130   # nobody like C tried sms: thin
    # no rng, explore 0 or not given: never
    assert choose("routine", ROUTINE, {}, {}, thin, explore=0.5).channel == "email"  # type: ignore[union-attr]
    assert all(choose("routine", ROUTINE, {}, {}, thin, rng=random.Random(i)).channel == "email"  # type: ignore[union-attr]
               for i in range(50))
    assert all(choose("routine", ROUTINE, {}, {}, thin, explore=0.0, rng=random.Random(i)).channel == "email"  # type: ignore[union-attr]
               for i in range(50))


@pytest.mark.parametrize(("contact", "similar_by", "values"), [
    (ContactFields("CTO", "Acme", "Europe/Paris", "rep@x.example", {"industry": " Software "}),
     ["title", "industry", "region"], (("attr:title", "cto"), ("attr:industry", "software"))),
    # an attribute of that name wins over the column; numbers and booleans are text like any value
    (ContactFields("CTO", None, None, None, {"title": "Founder", "seats": 40, "public": False}),
     ["title", "seats", "public", "company"],
     (("attr:title", "founder"), ("attr:seats", "40"), ("attr:public", "false"))),
    # blank values say nothing; the order is similar_by's
    (ContactFields("  ", "Acme", "Asia/Tokyo", None, {"industry": ""}), ["owner", "industry", "timezone", "company"],
     (("attr:timezone", "asia/tokyo"), ("attr:company", "acme"))),
    # a row without attributes (the planner's) still has its columns; a column only by name in ContactFields
    (SimpleNamespace(title="VP", email="a@b.example"), ["email", "title"], (("attr:title", "vp"),)),
    (SimpleNamespace(attributes=None, owner="Rep"), ["owner"], (("attr:owner", "rep"),)),
])
def test_similar_by_values(contact: object, similar_by: list[str], values: tuple[tuple[str, str], ...]) -> None:
    assert attribute_values(contact, similar_by) == values  # type: ignore[arg-type]


def test_each_question_to_the_priors_has_its_own_answer() -> None:
    counts = ALL | {("stage", "aware", "routine", "sms"): Counts(70, 35, 0),
                    ("attr:title", "cto", "routine", "sms"): Counts(40, 2, 0),
                    ("all", "", "reminder", "sms"): Counts(100, 50, 0),
                    ("all", "", "reminder", "email"): Counts(100, 5, 0)}
    priors = Priors(counts)
    asked = [("routine", ("email", "sms"), "aware", ()), ("routine", ("email", "sms"), None, ()),
             ("routine", ("email", "sms"), "aware", (("attr:title", "cto"),)), ("routine", ("sms",), "aware", ()),
             ("reminder", ("email", "sms"), "aware", ())]
    answers = [priors.estimate(i, list(c), s, a) for i, c, s, a in asked]
    assert answers == [Priors(counts).estimate(i, list(c), s, a) for i, c, s, a in asked]  # fresh: no cache
    assert len({repr(sorted(a.items())) for a in answers}) == len(asked)
    assert priors.estimate("routine", ["email", "sms"], "aware", ()) is answers[0]  # the same question: cached
