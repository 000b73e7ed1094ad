"""`outreach test`: the shipped scenarios pass, a failing one says what was expected and what came,
an invalid file is reported as FILE:LINE with exit 2 and nothing run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from outreach import db
from outreach.cli import app
from tests.support import ROOT, make_project


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    root = make_project(tmp_path / "proj", f"sqlite:///{tmp_path / 'outreach.db'}")
    shutil.copytree(ROOT / "rules" / "tests", root / "rules" / "tests")
    yield root
    db.dispose_all()


def run(project: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["test", "--project", str(project), *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result.exit_code, result.output


def scenario(project: Path, name: str, text: str) -> Path:
    path = project / "rules" / "tests" / name
    path.write_text(text)
    return path


def test_the_shipped_scenarios_pass(project: Path) -> None:
    code, out = run(project)
    assert code == 0, out
    lines = out.splitlines()
    assert lines[-1].endswith("passed, 0 failed") and int(lines[-1].split()[0]) >= 14
    assert all(line.startswith("ok    rules/tests/") for line in lines[:-1])


def test_the_shipped_scenarios_cover_the_example_rules() -> None:
    text = "".join(p.read_text() for p in (ROOT / "rules" / "tests").glob("*.yaml"))
    for needle in ("welcome", "case-study", "check-in", "pending_approval", "channel: sms", "consent_sms: no",
                   "pricing.viewed", "21d", "pricing-follow-up", "expect_not", "demo-confirmation",
                   "stage_changed", "expired", "config:"):
        assert needle in text, needle


def test_a_failing_scenario_says_what_was_expected_and_what_came(project: Path) -> None:
    scenario(project, "wrong.yaml", """\
name: the reminder by sms without consent (wrong on purpose)
contact: {email: alan@example.com, phone: "+14155550101", consent_sms: no}
evidence:
  - {type: email.replied, at: 1h}
now: 4d
expect:
  - {step: webinar-reminder, channel: sms}
  - {step: welcome, count: 2}
expect_not:
  - {step: check-in}
expect_stage: evaluating
""")
    code, out = run(project)
    assert code == 1
    block = out[out.index("FAIL  rules/tests/wrong.yaml:1: the reminder by sms"):].splitlines()
    assert block[1:6] == [
        "      expected a touch with step webinar-reminder, channel sms, none came",
        "      expected 2 touch(es) with step welcome, came 1",
        "      expected no touch with step check-in, came playbook:interested/check-in by email, pending_approval, "
        "due 2026-01-06 10:00",
        "      expected the contact at stage evaluating, it is at interested",
        "      what came (stage interested at 2026-01-09 09:00):",
    ]
    assert "        playbook:interested/webinar-reminder by email, sent, due 2026-01-08 10:00" in block
    assert out.splitlines()[-1].endswith(" passed, 1 failed")


def test_a_single_scenario_file_with_absolute_times(project: Path) -> None:
    path = scenario(project, "absolute.yaml", """\
contact: {email: ada@example.com, timezone: Europe/Berlin, attributes: {industry: software}}
start: 2026-03-02T08:00:00Z
evidence:
  - {type: pricing.viewed, at: "2026-03-03 08:00"}
  - {type: pricing.viewed, at: 2026-03-10T08:00:00+01:00}
now: 2026-03-10T08:00:00Z
expect_stage: evaluating
expect:
  - {rule: playbook:evaluating, step: strategy-session}
""")
    code, out = run(project, str(path))
    assert code == 0, out
    assert out.splitlines() == ["ok    rules/tests/absolute.yaml:1: absolute", "1 passed, 0 failed"]


def test_an_invalid_scenario_file_runs_nothing(project: Path) -> None:
    scenario(project, "broken.yaml", """\
scenarios:
  - name: typos everywhere
    contact: {email: ada@example.com, frist_name: Ada}
    now: 1d
    expect_not:
      - {step: case-studdy}
  - contact: {email: ada@example.com}
    evidence:
      - {type: email.clicked, at: 2 days}
    now: 1d
    expect: [{status: snt}]
  - contact: {email: not-an-email, stage: intrested}
    now: 1d
    expect_not: [{step: case-studdy}]
""")
    code, out = run(project)
    assert code == 2
    assert "ok " not in out and "passed" not in out
    for expected in (
            "rules/tests/broken.yaml:3: unknown key 'scenarios[0].contact.frist_name' (did you mean 'first_name'?)",
            "rules/tests/broken.yaml:9: scenarios[1].evidence[0].at: '2 days' is not a duration",
            "rules/tests/broken.yaml:11: scenarios[1].expect[0].status: 'snt' is not allowed",
            "rules/tests/broken.yaml:12: scenarios[2].contact: email 'not-an-email' is not an email address",
            "rules/tests/broken.yaml:12: scenarios[2].contact.stage: there is no stage 'intrested' in the rules "
            "(did you mean 'interested'?)",
            "rules/tests/broken.yaml:14: scenarios[2].expect_not[0].step: there is no step or trigger 'case-studdy' "
            "in the rules (did you mean 'case-study'?)"):
        assert any(line.startswith(expected) for line in out.splitlines()), (expected, out)
    assert out.splitlines()[-1] == "6 error(s) in the rule tests: none was run"


@pytest.mark.parametrize(("text", "message"), [
    ("- a\n", ":1: a rule test file is a mapping"),
    ("contact: {email: a@example.com}\nnow: 1d\n", ":1: (top level): nothing to check"),
    ("contact: {email: a@example.com}\nevidence: [{type: email.clicked, at: 2d}]\nnow: 1d\nexpect_stage: aware\n",
     ":2: evidence[0].at: this evidence comes after `now`"),
    ("contact: {email: a@example.com}\nnow: 1d\nexpect_stage: aware\nconfig: {policy: {email_consent: maybe}}\n",
     ":4: config: policy.email_consent: 'maybe' is not allowed"),
    ("contact: {email: a@example.com}\nnow: 1d\nexpect: [{step: welcome}\n", ":4: YAML syntax error"),
    ("scenarios: []\n", ":1: scenarios needs at least 1 item"),
])
def test_invalid_scenarios(project: Path, text: str, message: str) -> None:
    path = scenario(project, "bad.yaml", text)
    code, out = run(project, str(path))
    assert code == 2 and any(line.startswith("rules/tests/bad.yaml" + message) for line in out.splitlines()), out


def test_json_output(project: Path) -> None:
    code, out = run(project, "--json", str(project / "rules" / "tests" / "triggers.yaml"))
    assert code == 0
    results = json.loads(out)
    assert [r["passed"] for r in results] == [True] * len(results) and results[0]["file"] == "rules/tests/triggers.yaml"
    assert {"rule", "step", "interaction", "channel", "status", "reason", "due_at"} <= set(results[0]["touches"][0])


def test_no_scenarios(project: Path) -> None:
    shutil.rmtree(project / "rules" / "tests")
    code, out = run(project)
    assert code == 0 and "no rule tests" in out


def test_the_command_exit_codes(project: Path) -> None:
    scenario(project, "wrong.yaml", "contact: {email: a@example.com}\nnow: 1h\nexpect_stage: customer\n")
    env = {k: v for k, v in os.environ.items() if k != "OUTREACH_PROJECT"}
    proc = subprocess.run([sys.executable, "-m", "outreach.cli", "test", "--project", str(project)],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "FAIL  rules/tests/wrong.yaml:1: wrong" in proc.stdout
