"""The decisions of experiments, pure: stable and reproducible assignment, the holdout's share, the
weights, Thompson draws, and verdicts that stay honest when looked at every day."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest

from outreach.errors import InvalidInput
from outreach.experiments.assign import adaptive_choice, fixed_variant, in_holdout, thompson, unit
from outreach.experiments.stats import Arm, clearly_worse, difference, verdict, wilson
from outreach.experiments.stop import apply_edit, rules_edit
from outreach.ruleset import Experiment, read_ruleset


def test_the_hash_is_fixed_across_machines_and_versions() -> None:
    # a contact's variant must not change when the engine is upgraded: these numbers are the contract
    assert [round(unit(0, "e", i), 6) for i in (1, 2, 3)] == [0.357416, 0.928771, 0.261698]
    assert [fixed_variant(Experiment(id="e"), ("a", "b"), i) for i in range(1, 9)] == \
        ["a", "b", "a", "b", "a", "b", "b", "a"]
    assert [i for i in range(1, 200) if in_holdout(i, 0.05)] == [24, 59, 62, 104, 139, 146, 150, 159, 198]


@pytest.mark.parametrize(("weights", "share_of_b"), [(None, 0.5), ([1, 3], 0.75), ([9, 1], 0.1)])
def test_the_split_follows_the_weights(weights: list[float] | None, share_of_b: float) -> None:
    exp = Experiment(id="split", weights=weights)
    got = Counter(fixed_variant(exp, ("a", "b"), i) for i in range(20_000))
    assert got["b"] / 20_000 == pytest.approx(share_of_b, abs=0.015)


def test_a_new_seed_draws_a_new_split_and_the_same_seed_the_same() -> None:
    one = [fixed_variant(Experiment(id="x", seed=1), ("a", "b"), i) for i in range(1000)]
    assert one == [fixed_variant(Experiment(id="x", seed=1), ("a", "b"), i) for i in range(1000)]
    other = [fixed_variant(Experiment(id="x", seed=2), ("a", "b"), i) for i in range(1000)]
    assert 400 < sum(a != b for a, b in zip(one, other, strict=True)) < 600  # independent splits


@pytest.mark.parametrize("share", [0.0, 0.05, 0.2, 0.5])
def test_the_holdout_share(share: float) -> None:
    assert sum(in_holdout(i, share) for i in range(1, 20_001)) / 20_000 == pytest.approx(share, abs=0.01)


def test_experiments_are_independent_of_each_other_and_of_the_holdout() -> None:
    a = [fixed_variant(Experiment(id="one"), ("x", "y"), i) for i in range(4000)]
    b = [fixed_variant(Experiment(id="two"), ("x", "y"), i) for i in range(4000)]
    both = Counter(zip(a, b, strict=True))
    assert all(900 < n < 1100 for n in both.values())
    held = [i for i in range(4000) if in_holdout(i, 0.2)]
    assert Counter(a[i] for i in held)["x"] / len(held) == pytest.approx(0.5, abs=0.06)


def test_thompson_prefers_what_works_and_adaptive_drops_a_clear_loser() -> None:
    rng = random.Random(1)
    arms = [Arm("a", 1000, 100), Arm("b", 1000, 160), Arm("c", 20, 2)]
    picks = Counter(thompson(arms, rng) for _ in range(2000))
    assert picks["b"] > picks["c"] > picks["a"]  # c is uncertain: it is still explored
    assert clearly_worse(arms) == {"a"}
    assert "a" not in {adaptive_choice(arms, rng) for _ in range(500)}
    even = Counter(thompson([Arm("a", 0, 0), Arm("b", 0, 0)], rng) for _ in range(2000))
    assert even["a"] == pytest.approx(1000, abs=120)


@pytest.mark.parametrize(("s", "n", "low", "high"), [(10, 100, 0.0552, 0.1744), (0, 50, 0.0, 0.0713),
                                                      (50, 50, 0.9287, 1.0), (0, 0, None, None)])
def test_wilson_interval(s: int, n: int, low: float | None, high: float | None) -> None:
    got = wilson(s, n)
    assert got == (None, None) if low is None else got == pytest.approx((low, high), abs=1e-4)


def test_the_sequence_is_wider_than_a_fixed_horizon_interval_and_shrinks() -> None:
    a, b = Arm("a", 1000, 100), Arm("b", 1000, 130)
    diff, low, high = difference(a, b)
    assert diff == pytest.approx(0.03)
    assert high - low > 1.3 * 2 * 1.96 * (0.1 * 0.9 / 1000 + 0.13 * 0.87 / 1000) ** 0.5  # paying for the peeking
    _, low4, high4 = difference(Arm("a", 4000, 400), Arm("b", 4000, 520))
    assert high4 - low4 < high - low and low4 > 0


@pytest.mark.parametrize(("arms", "code"), [
    ([Arm("a", 99, 10), Arm("b", 500, 200)], "too_early"),
    ([Arm("a", 2000, 200), Arm("b", 2000, 210)], "no_difference"),
    ([Arm("a", 2000, 200), Arm("b", 2000, 300)], "winner:b"),
    ([Arm("a", 2000, 300), Arm("b", 2000, 200), Arm("c", 2000, 290)], "no_difference"),  # a does not beat c
    ([Arm("a", 2000, 400), Arm("b", 2000, 200), Arm("c", 2000, 290)], "winner:a"),
])
def test_verdicts(arms: list[Arm], code: str) -> None:
    assert verdict(arms, min_sample=100).code == code


def _first_winner(p: float, lift: float, per_day: int, days: int, rng: random.Random) -> str | None:
    na = nb = sa = sb = 0
    for _ in range(days):
        na, nb = na + per_day, nb + per_day
        sa += sum(rng.random() < p for _ in range(per_day))
        sb += sum(rng.random() < p * (1 + lift) for _ in range(per_day))
        v = verdict([Arm("a", na, sa), Arm("b", nb, sb)], min_sample=100)
        if v.winner:
            return v.winner
    return None


def test_aa_false_winners_stay_under_five_percent_with_daily_looks() -> None:
    """Seeded synthetic A/A data looked at every day for eight weeks, 300 times."""
    rng = random.Random(16)
    false = sum(_first_winner(0.15, 0.0, 60, 56, rng) is not None for _ in range(300))
    assert false / 300 <= 0.05


def test_a_real_lift_is_found_and_never_reversed() -> None:
    rng = random.Random(17)
    found = [_first_winner(0.2, 0.2, 90, 56, rng) for _ in range(100)]
    assert found.count("b") >= 80 and "a" not in found


HEAD = """version: 1
stages:
  - id: aware
interactions:
  nurture: {channels: [email]}
playbooks:
  aware:
    - id: welcome   # first
"""
TAIL = """      interaction: nurture
    - id: next
      interaction: nurture
      content: aware/welcome
"""


@pytest.mark.parametrize(("step", "expected"), [
    ("      content: [aware/a, aware/b]  # the test\n      experiment: {id: x}\n",
     "      content: aware/b  # the test\n"),
    ("      experiment:\n        id: x   # why\n        metric: response\n      content: [aware/a, aware/b]\n",
     "      content: aware/b\n"),
    ("      content:\n      - aware/a\n      - aware/b\n      experiment:\n        id: x\n\n        within: 7d\n",
     "      content: aware/b\n"),
    ("      content:\n        - aware/a   # control\n        - aware/b\n      # kept\n      experiment: {id: x,\n"
     "        metric: response}\n", "      content: aware/b\n      # kept\n"),
])
def test_the_rules_edit_changes_only_the_steps_lines(step: str, expected: str, tmp_path: Path) -> None:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "r.yaml").write_text(HEAD + step + TAIL)
    rules, problems = read_ruleset(tmp_path / "rules")
    assert rules is not None and not problems
    edit = rules_edit(tmp_path, rules, "x", "aware/b")
    apply_edit(tmp_path, edit)
    assert (tmp_path / "rules" / "r.yaml").read_text() == HEAD + expected + TAIL


def test_a_flow_style_step_is_left_to_the_marketer(tmp_path: Path) -> None:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "r.yaml").write_text(HEAD.replace("    - id: welcome   # first\n", "") +
                                               "    - {id: w, interaction: nurture, content: [aware/a, aware/b], "
                                               "experiment: {id: x}}\n")
    rules, _ = read_ruleset(tmp_path / "rules")
    assert rules is not None
    with pytest.raises(InvalidInput, match="by hand"):
        rules_edit(tmp_path, rules, "x", "aware/b")
