"""`outreach check` on broken projects: every malformed file yields `FILE:LINE: message` and exit 2,
never a traceback, and every problem is reported, not only the first."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from typer.testing import CliRunner

from outreach.checks.project import check_project
from outreach.cli import app
from tests.support import ROOT

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
triggers:
  - id: pricing-follow-up
    on: pricing.viewed
    if: "contact.stage in ['interested', 'evaluating']"
    interaction: strategic
    content: evaluating/pricing-follow-up
    within: 2h
  - id: demo-confirmation
    on: demo.requested
    interaction: reminder
    content: evaluating/demo-confirmation
"""

CONFIG = """\
database: sqlite:///outreach.db
timezone: UTC
policy:
  approval_expires_after: 3d
  send_windows:
    email: {days: mon-fri, hours: "08:00-18:00"}
providers:
  email: outbox
"""

WELCOME = """\
{% block subject %}Welcome, {{ contact.first_name | default('there') }}{% endblock %}
{% block text %}
Hi {{ contact.first_name | default('there') }},

Here is a two-minute tour: https://example.com/tour
{% endblock %}
"""

R = "rules/nurture.yaml"
W = "content/aware/welcome.email.j2"


def rules(old: str, new: str) -> dict[str, str | bytes | None]:
    assert old in RULES, old
    return {R: RULES.replace(old, new, 1)}


def config(old: str, new: str) -> dict[str, str | bytes | None]:
    assert old in CONFIG, old
    return {"config.yaml": CONFIG.replace(old, new, 1)}


def welcome(old: str, new: str) -> dict[str, str | bytes | None]:
    assert old in WELCOME, old
    return {W: WELCOME.replace(old, new, 1)}


@dataclass
class Case:
    id: str
    files: dict[str, str | bytes | None]  # path -> new text (None: delete the file)
    expect: list[tuple[str, tuple[str, ...]]]  # (FILE:LINE: prefix, words the message must hold)
    code: int = 2
    extra: dict[str, str] = field(default_factory=dict)


A = "rules/accounts.yaml"
ACCOUNTS = ("version: 1\naccounts:\n  stages:\n    - stage: interested\n"
            "      when: {role: champion, stage: interested}\n")

CASES = [
    # --- the accounts: section and the steps that target roles and account stages
    Case("account-unknown-role", {A: ACCOUNTS.replace("role: champion", "role: cfo")},
         [(f"{A}:4:", ("'cfo' is not a committee role",))]),
    Case("account-unknown-stage", {A: ACCOUNTS.replace("- stage: interested", "- stage: closing")},
         [(f"{A}:4:", ("there is no stage 'closing'",))]),
    Case("account-two-forms", {A: ACCOUNTS.replace("{role: champion", "{members_at_least: {stage: aware}, role: x")},
         [(f"{A}:5:", ("not both",))]),
    Case("step-unknown-role",
         rules("      content: aware/welcome\n", "      content: aware/welcome\n      role: ceo\n"),
         [(f"{R}:19:", ("'ceo' is not a committee role",))]),
    # --- rules/*.yaml: the file itself
    Case("yaml-syntax", rules("reached_by: [email.clicked]", "reached_by: [email.clicked"),
         [(f"{R}:6:", ("YAML syntax error", "line 5"))]),
    Case("tab-indent", rules("    reached_by: [email.clicked]", "\treached_by: [email.clicked]"),
         [(f"{R}:5:", ("tab", "spaces"))]),
    Case("not-a-mapping", {R: "- aware\n- interested\n"}, [(f"{R}:1:", ("must be a mapping",))]),
    Case("empty-file", {"rules/extra.yaml": "# nothing yet\n"}, [("rules/extra.yaml:1:", ("empty", "version: 1"))]),
    Case("version-missing", rules("version: 1\n", "\n"), [(f"{R}:1:", ("`version: 1` is missing",))]),
    Case("version-2", rules("version: 1", "version: 2"), [(f"{R}:1:", ("version 2 is not supported",))]),
    Case("non-utf8", {R: RULES.replace("id: aware", "id: aware  # caf\xe9").encode("latin-1")},
         [(f"{R}:3:", ("not UTF-8",))]),
    Case("duplicate-yaml-key", rules("      after: 0d\n", "      after: 0d\n      after: 1d\n"),
         [(f"{R}:17:", ("playbooks.aware[0].after", "given twice", "line 16"))]),
    Case("no-rule-files", {R: None}, [("rules/:1:", ("no rule files",))]),
    Case("no-stages", rules("stages:", "stagez:"), [(f"{R}:2:", ("unknown key 'stagez'", "did you mean 'stages'"))]),
    # --- keys
    Case("unknown-top-key", rules("triggers:", "trigers:"),
         [(f"{R}:26:", ("unknown key 'trigers'", "did you mean 'triggers'"))]),
    Case("unknown-step-key", rules("      after: 0d", "      aftr: 0d"),
         [(f"{R}:16:", ("unknown key 'playbooks.aware[0].aftr'", "did you mean 'after'"))]),
    Case("unknown-trigger-key", rules("    if: ", "    iff: "),
         [(f"{R}:29:", ("unknown key 'triggers[0].iff'", "did you mean 'if'"))]),
    Case("missing-required", rules("      interaction: nurture\n", ""),
         [(f"{R}:15:", ("'playbooks.aware[0].interaction' is required",))]),
    Case("bad-id", rules("id: welcome", "id: Welcome Email"), [(f"{R}:15:", ("not an id", "welcome-email"))]),
    # --- durations and numbers
    Case("bad-duration", rules("after: 1d", "after: 1 day"),
         [(f"{R}:21:", ("playbooks.evaluating[0].after", "'1 day' is not a duration", "3d"))]),
    Case("duration-no-unit", rules("after: 1d", "after: 3"), [(f"{R}:21:", ("'3' has no unit",))]),
    Case("bad-within", rules("within: 14d", "within: 2 weeks"),
         [(f"{R}:8:", ("stages[2].reached_by[0].within", "not a duration"))]),
    Case("count-0", rules("count: 2", "count: 0"), [(f"{R}:8:", ("count must be at least 1",))]),
    Case("meeting-0", rules("duration: 45m", "duration: 0m"), [(f"{R}:25:", ("longer than 0",))]),
    Case("within-not-after", rules("    within: 2h", "    after: 3h\n    within: 2h"),
         [(f"{R}:33:", ("triggers.pricing-follow-up", "`within` must be longer than `after`"))]),
    # --- stages
    Case("unknown-playbook-stage", rules("  evaluating:\n    - id: strategy", "  evaluatng:\n    - id: strategy"),
         [(f"{R}:19:", ("no stage 'evaluatng'", "did you mean 'evaluating'"))]),
    Case("first-stage-reached-by", rules("  - id: aware\n", "  - id: aware\n    reached_by: [email.opened]\n"),
         [(f"{R}:4:", ("first stage 'aware'", "no `reached_by`"))]),
    Case("stage-unreachable", rules("    reached_by: [email.clicked]\n", ""),
         [(f"{R}:4:", ("'interested' has no `reached_by`", "nobody could ever reach it"))]),
    Case("stage-twice", rules("  - id: evaluating", "  - id: interested"),
         [(f"{R}:6:", ("'interested' is listed twice",))]),
    Case("stages-in-two-files", {"rules/other.yaml": "version: 1\nstages:\n  - id: aware\n"},
         [("rules/other.yaml:2:", ("stages are already defined in rules/nurture.yaml",))]),
    Case("bad-event-name", rules("[email.clicked]", "[Email Clicked]"),
         [(f"{R}:5:", ("'Email Clicked' is not an event name", "email.clicked"))]),
    Case("playbook-twice", {"rules/other.yaml": "version: 1\nplaybooks:\n  aware: []\n"},
         [("rules/other.yaml:3:", ("playbook of stage 'aware' is defined twice", "rules/nurture.yaml:14"))]),
    # --- interactions and channels
    Case("unknown-interaction", rules("interaction: nurture", "interaction: nurtur"),
         [(f"{R}:17:", ("playbooks.aware.welcome", "unknown interaction 'nurtur'", "did you mean 'nurture'"))]),
    Case("unknown-trigger-interaction", rules("interaction: reminder", "interaction: follow-up"),
         [(f"{R}:35:", ("triggers.demo-confirmation", "unknown interaction 'follow-up'", "known:"))]),
    Case("bad-channel", rules("content: aware/welcome", "content: aware/welcome\n      channel: fax"),
         [(f"{R}:19:", ("'fax' is not allowed", "email", "sms", "meeting"))]),
    Case("bad-interaction-channel", rules("[sms, email]", "[sms, pigeon]"),
         [(f"{R}:11:", ("interactions.reminder.channels[1]", "'pigeon' is not allowed"))]),
    Case("empty-channels", rules("{channels: [email]}", "{channels: []}"),
         [(f"{R}:10:", ("interactions.nurture.channels needs at least 1 item",))]),
    Case("channel-twice", rules("[sms, email]", "[sms, sms]"), [(f"{R}:11:", ("listed twice",))]),
    Case("fixed-channel-not-allowed", rules("content: aware/welcome", "content: aware/welcome\n      channel: sms"),
         [(f"{R}:19:", ("channel 'sms' is not one of interaction 'nurture'",))]),
    Case("meeting-without-duration", rules("      meeting: {duration: 45m}\n", "      channel: meeting\n"),
         [(f"{R}:25:", ("needs `meeting: {duration: ...}`",))]),
    Case("bad-approval", rules("approval: rep", "approval: manager"),
         [(f"{R}:24:", ("'manager' is not allowed", "auto", "rep"))]),
    Case("playbooks-a-list", {"rules/other.yaml": "version: 1\nplaybooks:\n  - id: welcome\n"},
         [("rules/other.yaml:2:", ("playbooks should be a mapping", "not a list"))]),
    # --- steps and triggers
    Case("content-no-template", rules("content: aware/welcome", "content: aware/welcom"),
         [(f"{R}:18:", ("content 'aware/welcom' has no template", "content/aware/welcom.email.j2"))]),
    Case("content-key-with-suffix", rules("content: aware/welcome", "content: aware/welcome.email.j2"),
         [(f"{R}:18:", ("not a content key", "write 'aware/welcome'"))]),
    Case("if-does-not-compile", rules("'evaluating']\"", "'evaluating'\""),
         [(f"{R}:29:", ("triggers.pricing-follow-up.if does not compile",))]),
    Case("if-unknown-name", rules("if: \"contact.stage", "if: \"contcat.stage"),
         [(f"{R}:29:", ("uses 'contcat'", "did you mean 'contact'"))]),
    Case("duplicate-step-id", rules("    - id: strategy-session", "    - id: strategy-session\n      after: 2d\n"
                                    "      interaction: strategic\n      content: evaluating/strategy-session\n"
                                    "    - id: strategy-session"),
         [(f"{R}:24:", ("step id 'strategy-session' is used twice",))]),
    Case("duplicate-trigger-id", rules("id: demo-confirmation", "id: pricing-follow-up"),
         [(f"{R}:33:", ("trigger id 'pricing-follow-up' is used twice",))]),
    # --- content/*.j2
    Case("jinja-syntax", welcome("Here is", "{% if contact.first_name %}Here is"),
         [(f"{W}:6:", ("template syntax error", "endif"))]),
    Case("jinja-unknown-filter", welcome("default('there') }},", "shout }},"),
         [(f"{W}:3:", ("template syntax error", "No filter named 'shout'"))]),
    Case("email-no-subject", welcome("{% block subject %}", "{% block subjct %}"),
         [(f"{W}:1:", ("no block 'subjct'", "did you mean 'subject'")),
          (f"{W}:1:", ("needs a {% block subject %}",))]),
    Case("meeting-no-title", {"content/evaluating/strategy-session.meeting.j2": "{% block description %}x"
                              "{% endblock %}\n"},
         [("content/evaluating/strategy-session.meeting.j2:1:", ("needs a {% block title %}",))]),
    Case("template-bad-name", {"content/aware/welcome.mail.j2": "Hi\n"},
         [("content/aware/welcome.mail.j2:1:", ("<key>.<channel>.j2", "did you mean 'email'"))]),
    Case("template-no-channel", {"content/aware/welcome.j2": "Hi\n"},
         [("content/aware/welcome.j2:1:", ("<key>.<channel>.j2",))]),
    Case("template-non-utf8", {W: WELCOME.replace("tour", "tour caf\xe9").encode("latin-1")},
         [(f"{W}:5:", ("not UTF-8",))]),
    Case("include-missing", welcome("{% endblock %}\n", "{% endblock %}\n{% include '_footer.j2' %}\n"),
         [(f"{W}:2:", ("'_footer.j2' does not exist",))]),
    # --- config.yaml
    Case("config-unknown-key", config("database:", "databse:"),
         [("config.yaml:1:", ("unknown key 'databse'", "did you mean 'database'"))]),
    Case("config-nested-unknown-key", config("approval_expires_after:", "aproval_expires_after:"),
         [("config.yaml:4:", ("policy.aproval_expires_after", "did you mean 'approval_expires_after'"))]),
    Case("config-bad-duration", config("3d", "three days"), [("config.yaml:4:", ("not a duration",))]),
    Case("config-syntax", config("policy:", "policy: ["), [("config.yaml:", ("YAML syntax error",))]),
    Case("config-not-mapping", {"config.yaml": "- a\n"}, [("config.yaml:1:", ("must be a mapping",))]),
    Case("config-duplicate-key", config("timezone: UTC\n", "timezone: UTC\ntimezone: Europe/Berlin\n"),
         [("config.yaml:3:", ("'timezone' is given twice",))]),
    Case("config-bad-timezone", config("timezone: UTC", "timezone: Mars/Olympus"),
         [("config.yaml:2:", ("unknown time zone",))]),
    Case("config-bad-hours", config('"08:00-18:00"', '"18:00-08:00"'), [("config.yaml:6:", ("start before",))]),
    Case("config-bad-provider", config("email: outbox", "email: mailgun"),
         [("config.yaml:8:", ("'mailgun' is not allowed", "sendgrid"))]),
    # --- rules/tests/*.yaml (checked once the rules are valid)
    Case("rule-test-typo", {"rules/tests/welcome.yaml": "contact: {email: a@example.com}\nnow: 1h\n"
                            "expect: [{step: welcom}]\n"},
         [("rules/tests/welcome.yaml:3:", ("expect[0].step", "no step or trigger 'welcom'",
                                          "did you mean 'welcome'"))]),
    # --- warnings only: exit 0
    Case("sms-too-long", {"content/interested/long.sms.j2": "Hi {{ contact.first_name }} from "
                          "{{ contact.company }}! " + "We have news. " * 25 + "\n"},
         [("content/interested/long.sms.j2:1:", ("warning: renders to 3 segments",))], code=0),
    Case("sample-missing-variable", welcome("Here is", "As a {{ contact.favourite_colour }} fan, here is"),
         [(f"{W}:5:", ("warning:", "contact.favourite_colour", "default("))], code=0),
    Case("event-typo", rules("[email.clicked]", "[email.clickd]"),
         [(f"{R}:5:", ("warning:", "'email.clickd'", "did you mean 'email.clicked'"))], code=0),
]


def make(tmp_path: Path, files: dict[str, str | bytes | None]) -> Path:
    root = tmp_path / "proj"
    shutil.copytree(ROOT / "content", root / "content")
    (root / "rules").mkdir()
    for path, text in {"config.yaml": CONFIG, R: RULES, W: WELCOME, **files}.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if text is None:
            target.unlink(missing_ok=True)
        elif isinstance(text, bytes):
            target.write_bytes(text)
        else:
            target.write_text(text, encoding="utf-8")
    return root


def run_check(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    env.pop("OUTREACH_PROJECT", None)
    return subprocess.run([sys.executable, "-m", "outreach.cli", "check", "--project", str(root)],
                          capture_output=True, text=True, timeout=60, env=env)


def run_in_process(root: Path) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["check", "--project", str(root)])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result.exit_code, result.output


def assert_reported(case: Case, code: int, output: str) -> None:
    assert "Traceback" not in output
    assert code == case.code, output
    lines = output.splitlines()
    for prefix, words in case.expect:
        assert any(line.startswith(prefix) and all(w in line for w in words) for line in lines), \
            f"no line starts with {prefix!r} and holds {words}:\n{output}"
    if case.code == 2:
        assert lines[-1].endswith("error(s): nothing was loaded")


def test_the_base_project_is_clean(tmp_path: Path) -> None:
    assert [str(p) for p in check_project(make(tmp_path, {}))] == []


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_broken_input(case: Case, tmp_path: Path) -> None:
    assert_reported(case, *run_in_process(make(tmp_path, case.files)))


SUBPROCESS = ["yaml-syntax", "tab-indent", "non-utf8", "duplicate-step-id", "jinja-syntax", "template-non-utf8",
              "config-syntax", "config-unknown-key", "sms-too-long"]


@pytest.mark.parametrize("case", [c for c in CASES if c.id in SUBPROCESS], ids=lambda c: c.id)
def test_broken_input_as_a_command(case: Case, tmp_path: Path) -> None:
    """The real command in its own process: exit code, FILE:LINE, and never a traceback."""
    proc = run_check(make(tmp_path, case.files))
    assert_reported(case, proc.returncode, proc.stdout + proc.stderr)


def test_cases_are_many_and_distinct() -> None:
    assert len(CASES) >= 30 and len({c.id for c in CASES}) == len(CASES)


def test_every_problem_of_a_file_is_reported(tmp_path: Path) -> None:
    broken = (RULES.replace("after: 0d", "aftr: 0d")                  # line 16: unknown key
              .replace("after: 1d", "after: soon")                    # line 21: bad duration
              .replace("interaction: reminder", "interaction: remnder"))  # line 35: unknown interaction
    proc = run_check(make(tmp_path, {R: broken}))
    errors = [line for line in proc.stderr.splitlines() if line.startswith(f"{R}:")]
    assert [e.split(":")[1] for e in errors] == ["16", "21", "35"], proc.stderr
    assert proc.returncode == 2 and "3 error(s)" in proc.stderr


def test_problems_of_config_rules_and_templates_come_together(tmp_path: Path) -> None:
    root = make(tmp_path, {**config("database:", "databse:"), **rules("count: 2", "count: 0"),
                           **welcome("{% block subject %}", "{% block subject %}{{ x | shout }}")})
    problems = [str(p) for p in check_project(root)]
    assert [p.split(":")[0] for p in problems] == ["config.yaml", R, W], problems


def test_a_broken_interaction_is_not_reported_again_where_it_is_used(tmp_path: Path) -> None:
    problems = [str(p) for p in check_project(make(tmp_path, rules("{channels: [email]}", "{channels: [fax]}")))]
    assert len(problems) == 1 and "'fax' is not allowed" in problems[0], problems


def test_the_example_project_is_clean() -> None:
    assert [str(p) for p in check_project(ROOT)] == []
