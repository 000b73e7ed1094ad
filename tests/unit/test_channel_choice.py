"""Channel choice: the pure decision as tables of cases (what is known about a buyer -> the channel
and why), exploration, and stated preferences beating learned ones."""

from __future__ import annotations

import math
import random

import pytest

from outreach.learning import counts as learning_counts
from outreach.learning.learner import Counts, Estimate, Priors, choose
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
