"""`outreach plan --dry-run`: what the rules would queue now, as a table or JSON, writing nothing;
with `--rules OTHER_DIR`, what another version of the rules would change, touch by touch."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import func, select
from typer.testing import CliRunner

from outreach import db
from outreach.cli import app
from outreach.contacts import import_csv
from outreach.db import session_scope
from outreach.dryrun import summary
from outreach.engine import Engine
from outreach.evidence import EvidenceIn
from outreach.models import Touch
from outreach.project import Project
from tests.support import ROOT, at, make_project

MONDAY = at("2026-03-02 15:00")
LATER = "2026-03-07T10:00:00Z"  # five days on: welcome and case study are due; the check-in too


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    root = make_project(tmp_path / "proj", f"sqlite:///{tmp_path / 'outreach.db'}")
    engine = Engine(Project.open(root))
    with session_scope(engine.db) as s:
        import_csv(s, ROOT / "contacts.csv", region="US", first_stage="aware", now=MONDAY)
    for who in ("ada@analytical.example", "grace@cobol.example"):  # interested from Tuesday
        engine.record([EvidenceIn("email.clicked", at("2026-03-03 10:00"), "test", email=who)],
                      now=at("2026-03-03 10:00"))
    engine.plan(MONDAY)  # the welcomes of Monday are queued already: the dry run shows what is new
    yield root
    db.dispose_all()


def touches(root: Path) -> int:
    engine = Engine(Project.open(root))
    with session_scope(engine.db) as s:
        return s.exec(select(func.count()).select_from(Touch)).one()


def run(root: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["plan", "--dry-run", "--now", LATER, "--project", str(root), *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result.exit_code, result.output


def other_rules(tmp_path: Path, root: Path) -> Path:
    """A proposed version: the check-in waits a week, the reminder prefers email, a new step for evaluating."""
    other = tmp_path / "proposed"
    shutil.copytree(root / "rules", other / "rules")
    path = other / "rules" / "nurture.yaml"
    text = path.read_text()
    for old, new in (("    - id: check-in\n      after: 1d", "    - id: check-in\n      after: 7d"),
                     ("reminder:  {channels: [sms, email]}", "reminder:  {channels: [email, sms]}"),
                     ("  aware:\n", "  aware:\n    - id: hello\n      after: 2d\n      interaction: nurture\n"
                                    "      content: aware/welcome\n")):
        assert old in text
        text = text.replace(old, new)
    path.write_text(text)
    return other


def test_text_table(project: Path) -> None:
    before = touches(project)
    code, out = run(project)
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0] == "If the planner ran now (2026-03-07 10:00 UTC), it would queue 8 touch(es). Nothing was written."
    assert lines[2].split() == ["rule", "/", "step", "contacts", "channels", "statuses"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[3:] if line.startswith("playbook:")}
    assert rows["playbook:aware/case-study"][:3] == ["4", "email", "4"]
    assert rows["playbook:interested/check-in"] == ["2", "email", "2", "pending_approval", "2"]
    assert rows["playbook:interested/webinar-reminder"][:5] == ["2", "sms", "1,", "email", "1"]
    assert rows["playbook:evaluating/strategy-session"] == ["0", "-", "-"]  # every step, the idle ones too
    assert any(line.strip().startswith("for example: ada@analytical.example (sms, approved)") for line in lines)
    assert "pending_approval: waits for the owning rep" in out
    assert "trigger:pricing-follow-up (on pricing.viewed)" in out
    assert touches(project) == before  # nothing was written


def test_json(project: Path) -> None:
    code, out = run(project, "--json")
    assert code == 0
    data = json.loads(out)
    assert data["would_queue"] == 8 and data["by_status"] == {"approved": 6, "pending_approval": 2}
    assert data["now"] == "2026-03-07T10:00:00+00:00"
    steps = {s["rule"]: s for s in data["steps"]}
    reminder = steps["playbook:interested/webinar-reminder"]
    assert reminder["contacts"] == 2 and reminder["channels"] == {"sms": 1, "email": 1}
    assert reminder["examples"][0] == {"contact": "ada@analytical.example", "channel": "sms", "status": "approved",
                                       "reason": "default order for the interaction"}
    assert steps["playbook:deciding/proposal-follow-up"]["contacts"] == 0
    assert [t["rule"] for t in data["triggers"]] == [
        "trigger:pricing-follow-up", "trigger:demo-confirmation", "trigger:proposal-call"]


def test_compare_with_other_rules(project: Path, tmp_path: Path) -> None:
    other = other_rules(tmp_path, project)
    before = touches(project)
    code, out = run(project, "--rules", str(other), "--json")
    assert code == 0, out
    data = json.loads(out)
    assert (data["current"]["would_queue"], data["proposed"]["would_queue"]) == (8, 10)
    assert [(g["rule"], g["contacts"]) for g in data["only_proposed"]] == [("playbook:aware/hello", 4)]
    assert [(g["rule"], g["contacts"]) for g in data["only_current"]] == [("playbook:interested/check-in", 2)]
    (changed,) = data["changed"]
    assert changed["rule"] == "playbook:interested/webinar-reminder" and changed["contacts"] == 1
    assert changed["examples"] == [{"contact": "ada@analytical.example", "channel": "email", "status": "approved",
                                    "was": {"channel": "sms", "status": "approved"}}]
    assert touches(project) == before

    code, out = run(project, "--rules", str(other / "rules"))  # its rules/ folder works as well
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0].startswith(f"The rules in {other / 'rules'} against the current ones")
    rows = {line.split()[0]: line.split()[1:] for line in lines if line.startswith("playbook:")}
    assert rows["playbook:interested/check-in"] == ["2", "0", "-2"]
    assert rows["playbook:aware/hello"] == ["0", "4", "+4"]
    assert rows["playbook:aware/welcome"] == ["0", "0"]
    assert "Would be queued with the proposed rules, not with the current ones: 4" in lines
    assert "Would be queued with the current rules, not with the proposed ones: 2" in lines
    assert "  playbook:interested/webinar-reminder: 1 contact(s), for example ada@analytical.example " \
           "(sms, approved -> email, approved)" in lines


def test_compare_with_invalid_rules_names_their_files(project: Path, tmp_path: Path) -> None:
    other = other_rules(tmp_path, project)
    path = other / "rules" / "nurture.yaml"
    path.write_text(path.read_text().replace("after: 7d", "after: a week"))
    code, out = run(project, "--rules", str(other))
    assert code == 2 and "Traceback" not in out
    assert any(line.startswith(f"{other}/rules/nurture.yaml:") and "'a week' is not a duration" in line
               for line in out.splitlines()), out


def test_rules_needs_dry_run(project: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["plan", "--rules", str(tmp_path), "--project", str(project)])
    assert result.exit_code == 2 and "--rules goes with --dry-run" in result.output


def test_summary_without_rules_keeps_its_shape(project: Path) -> None:
    """The web's rules page calls summary(result) alone."""
    engine = Engine(Project.open(project))
    data = summary(engine.plan(at("2026-03-07 10:00"), dry_run=True))
    assert set(data) == {"would_queue", "by_status", "by_channel", "steps"}
    assert {s["rule"] for s in data["steps"]} == {"playbook:aware/case-study", "playbook:interested/check-in",
                                                  "playbook:interested/webinar-reminder"}
