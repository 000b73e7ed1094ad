"""Rules that hold for every input, checked by Hypothesis on generated cases: the learner's
estimates are defined for any counts, caps hold for any arrival order of touches, evidence never
moves a buyer back, a suppressed or unconsented channel is never reachable."""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from outreach.config import Cap, Policy, Window
from outreach.learning.learner import Counts, Estimate, Priors, choose, posterior
from outreach.policy import Reach, decide, unreachable
from outreach.ruleset import load_ruleset
from outreach.stages import next_stage
from tests.support import ROOT, at

RULES = load_ruleset(ROOT / "rules")
STAGES = [s.id for s in RULES.stages]
EVENTS = sorted({c.event for s in RULES.stages for c in s.reached_by} | {"email.opened", "email.bounced"})
T0 = at("2026-03-02 00:00")

counts = st.builds(Counts, st.integers(0, 10**6), st.integers(0, 10**6), st.integers(0, 10**6))


@given(counts, counts, st.floats(0, 1))
def test_the_posterior_is_a_rate_for_any_counts(own: Counts, other: Counts, prior: float) -> None:
    p = posterior(prior, own, other)
    assert math.isfinite(p) and p >= 0


GROUPS = st.tuples(st.sampled_from(["all", "stage", "attr:industry"]), st.sampled_from(["", "aware", "x"]),
                   st.just("routine"), st.sampled_from(["email", "sms"]))


@given(st.dictionaries(GROUPS, counts, max_size=12))
def test_population_estimates_are_rates_for_any_counts(table: dict[tuple[str, str, str, str], Counts]) -> None:
    # more responses than sends happens for a moment (an answer counted before its send): never an error
    for est in Priors(table).estimate("routine", ["email", "sms"], "aware", (("attr:industry", "x"),)).values():
        assert 0.0 <= est.rate <= 1.0


@given(st.dictionaries(st.sampled_from(["email", "sms", "meeting"]), counts),
       st.dictionaries(st.sampled_from(["email", "sms", "meeting"]),
                       st.builds(Estimate, st.floats(0, 1), st.integers(0, 10**6))))
def test_the_choice_is_always_one_of_the_candidates(own: dict[str, Counts], similar: dict[str, Estimate]) -> None:
    candidates = ["sms", "email"]
    pick = choose("reminder", candidates, own, {}, similar)
    assert pick is None or pick.channel in candidates


@given(st.sampled_from(STAGES), st.lists(st.tuples(st.sampled_from(EVENTS), st.integers(0, 90 * 24)), max_size=12))
def test_evidence_never_moves_a_buyer_back(current: str, events: list[tuple[str, int]]) -> None:
    advance = next_stage(RULES, current, [(kind, T0 + timedelta(hours=h)) for kind, h in events])
    assert advance is None or STAGES.index(advance.stage) > STAGES.index(current)


@given(st.booleans(), st.booleans(), st.sampled_from([None, True, False]), st.sampled_from([None, True, False]),
       st.frozensets(st.sampled_from(["email", "sms", "meeting"])), st.sampled_from(["email", "sms", "meeting"]),
       st.sampled_from(["opt_in", "opt_out"]))
def test_a_suppressed_or_refused_channel_is_never_reachable(
        has_email: bool, has_phone: bool, consent_email: bool | None, consent_sms: bool | None,
        suppressed: frozenset[str], channel: str, mode: str) -> None:
    reach = Reach("a@example.org" if has_email else None, "+14155550101" if has_phone else None,
                  consent_email, consent_sms, suppressed)
    if unreachable(reach, channel, mode) is None:
        assert channel not in suppressed
        if channel == "sms":
            assert has_phone and consent_sms is True
        else:
            assert has_email and consent_email is not False and "email" not in suppressed
            assert mode == "opt_out" or consent_email is True


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 14 * 24 * 4), st.sampled_from(["email", "sms"])), min_size=1, max_size=40),
       st.sampled_from(["UTC", "America/New_York", "Asia/Kolkata", "Pacific/Auckland"]))
def test_caps_hold_for_any_arrival_order(arrivals: list[tuple[int, str]], zone: str) -> None:
    """Touches fall due at random quarter-hours over two weeks; each goes when the policy says so,
    else waits until the moment it names. No day or week ever holds more than the caps allow."""
    policy = Policy(send_windows={"email": Window(days="mon-sun", hours="00:00-24:00"),
                                  "sms": Window(days="mon-fri", hours="09:00-17:00")},
                    caps={"all": Cap(day=2, week=5), "sms": Cap(day=1, week=2)})
    tz = ZoneInfo(zone)
    queue = sorted((T0 + timedelta(minutes=15 * q), ch) for q, ch in arrivals)
    sent: list[tuple[str, datetime]] = []
    for _ in range(10 * len(queue)):
        if not queue:
            break
        due, channel = queue.pop(0)
        verdict = decide(due, tz, channel, sent, policy)
        if verdict.send:
            sent.append((channel, due))
        else:
            assert verdict.until is not None and verdict.until > due
            queue.append((verdict.until, channel))
            queue.sort()
    per_day: dict[tuple[str, object], int] = defaultdict(int)
    for channel, t in sent:
        for scope in ("all", channel):
            per_day[(scope, t.astimezone(tz).date())] += 1
        week = [(c, u) for c, u in sent if t - timedelta(days=7) < u <= t]
        assert len(week) <= 5 and sum(1 for c, _ in week if c == "sms") <= 2
        if channel == "sms":
            local = t.astimezone(tz)
            assert local.weekday() < 5 and 9 <= local.hour < 17
    assert all(n <= (2 if scope == "all" else 1) for (scope, _), n in per_day.items() if scope in ("all", "sms"))
