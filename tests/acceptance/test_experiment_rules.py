"""`outreach check` on experiments in the rules and the holdout in config.yaml: each mistake at its line."""

from __future__ import annotations

from pathlib import Path

import pytest

from outreach.checks.project import check_project
from tests.acceptance.test_check_errors import CONFIG, Case, assert_reported, make, run_in_process

R = "rules/nurture.yaml"
# the rules the cases change, kept here so that their line numbers do not move with other tests' files
RULES = """\
version: 1
stages:
  - id: aware
  - id: interested
    reached_by: [email.clicked]
  - id: evaluating
    reached_by:
      - {event: pricing.viewed, count: 2, within: 14d}
interactions:
  nurture: {channels: [email]}
  reminder: {channels: [sms, email]}
  strategic: {channels: [meeting, email]}
playbooks:
  aware:
    - id: welcome
      after: 0d
      interaction: nurture
      content: aware/welcome
  evaluating:
    - id: strategy-session
      after: 1d
      interaction: strategic
      content: evaluating/strategy-session
      approval: rep
      meeting: {duration: 45m}
"""
STEP = """    - id: welcome
      after: 0d
      interaction: nurture
      content: aware/welcome
"""
SECOND = """    - id: tour
      after: 3d
      interaction: nurture
      content: [aware/welcome, aware/case-study]
      experiment: {id: tour-vs-case, metric: response}
"""


def variants(content: str, experiment: str | None = "{id: welcome-test, metric: stage_advance, within: 14d}",
             extra: str = "") -> dict[str, str | bytes | None]:
    step = STEP.replace("content: aware/welcome", f"content: {content}")
    if experiment is not None:
        step += f"      experiment: {experiment}\n"
    return {R: RULES.replace(STEP, step + extra, 1)}


CASES = [
    Case("unknown-variant", variants("[aware/welcome, aware/nope]"),
         [(f"{R}:18:", ("playbooks.aware.welcome", "'aware/nope'", "no template"))]),
    Case("bad-variant-key", variants("[aware/welcome, aware/roi.email.j2]"),
         [(f"{R}:15:", ("content variant 2", "write 'aware/roi'"))]),
    Case("one-variant", variants("[aware/welcome]"), [(f"{R}:15:", ("fewer than two variants",))]),
    Case("variants-without-experiment", variants("[aware/welcome, aware/case-study]", None),
         [(f"{R}:18:", ("lists 2 variants", "experiment"))]),
    Case("experiment-without-variants", variants("aware/welcome"),
         [(f"{R}:19:", ("an experiment needs content variants",))]),
    Case("bad-metric", variants("[aware/welcome, aware/case-study]", "{id: w, metric: opens}"),
         [(f"{R}:19:", ("experiment.metric", "'opens' is not allowed", "stage_advance"))]),
    Case("bad-allocation", variants("[aware/welcome, aware/case-study]", "{id: w, allocation: bandit}"),
         [(f"{R}:19:", ("experiment.allocation", "'bandit'", "adaptive"))]),
    Case("weights-mismatch", variants("[aware/welcome, aware/case-study]", "{id: w, weights: [1, 2, 3]}"),
         [(f"{R}:19:", ("3 weights for 2 variants",))]),
    Case("duplicate-experiment-id", variants("[aware/welcome, aware/case-study]", "{id: tour-vs-case}",
                                             SECOND), [(f"{R}:24:", ("'tour-vs-case' is already used",))]),
    Case("holdout-too-big", {"config.yaml": CONFIG.replace("policy:\n", "policy:\n  holdout: 0.7\n")},
         [("config.yaml:", ("holdout", "at most 0.5"))]),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_experiment_mistakes(case: Case, tmp_path: Path) -> None:
    assert_reported(case, *run_in_process(make(tmp_path, case.files)))


def test_a_valid_experiment_and_holdout_pass(tmp_path: Path) -> None:
    files = variants("[aware/welcome, aware/case-study]", "{id: w, allocation: adaptive, segment_by: title}")
    files["config.yaml"] = CONFIG.replace("policy:\n", "policy:\n  holdout: 0.05\n")
    assert [str(p) for p in check_project(make(tmp_path, files))] == []
