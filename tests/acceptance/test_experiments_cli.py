"""`outreach experiments` in a subprocess, as a marketer uses it: the figures and verdict as JSON, then
`stop --promote --write` edits only the step's lines, `outreach check` still passes, and the planner
sends the promoted variant from then on."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select
from sqlmodel import col
from typer.testing import CliRunner

from outreach import db
from outreach.cli import app
from outreach.db import session_scope
from outreach.engine import Engine
from outreach.experiments.assign import in_holdout
from outreach.models import Contact, StageChange, Touch
from outreach.project import Project
from tests.support import at, make_project

MONDAY = at("2026-03-02 09:00")
LATER = MONDAY + timedelta(days=5)
STEP = """      content: aware/case-study
"""
VARIANTS = """      content:                       # the case study against the ROI mail
        - aware/case-study
        - aware/roi
      experiment:
        id: case-vs-roi
        metric: stage_advance        # a buyer moving on, never an open
        within: 14d
      skip_if: [email.clicked]
"""


def cli(root: Path, *args: str, code: int = 0) -> str:
    p = subprocess.run([sys.executable, "-m", "outreach.cli", *args, "--project", str(root)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == code, f"outreach {' '.join(args)} -> {p.returncode}\n{p.stdout}\n{p.stderr}"
    assert "Traceback" not in p.stderr
    return p.stdout + p.stderr


def in_process(root: Path, *args: str, code: int = 0) -> str:
    """The same command in this process (the cheap way to check what it refuses)."""
    result = CliRunner().invoke(app, [*args, "--project", str(root)])
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result.output


def experiments(root: Path) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = json.loads(cli(root, "experiments", "--json", "--now", (LATER + timedelta(days=30))
                                               .isoformat()))
    return out


def test_watch_stop_and_promote_from_the_cli(tmp_path: Path) -> None:
    root = make_project(tmp_path / "proj", f"sqlite:///{tmp_path / 'x.db'}", **{"policy.holdout": 0.1})
    path = root / "rules" / "nurture.yaml"
    original = path.read_text()
    path.write_text(original.replace(STEP + "      skip_if: [email.clicked]\n", VARIANTS))
    engine = Engine(Project.open(root))
    with session_scope(engine.db) as s:
        s.execute(insert(Contact), [{"email": f"b{i}@example.org", "stage": "aware", "stage_entered_at": MONDAY,
                                     "attributes": {}, "consent_email": True} for i in range(600)])
    engine.plan(LATER)
    with session_scope(engine.db) as s:  # the ROI mail moves 40% of its contacts on, the case study 5%
        assigned = s.execute(select(col(Touch.contact_id), col(Touch.variant)).where(
            col(Touch.step) == "case-study")).all()
        moved = [c for c, v in assigned if v == "aware/roi"][::5] * 2 + [c for c, v in assigned
                                                                          if v == "aware/case-study"][::20]
        s.execute(insert(StageChange), [{"contact_id": c, "from_stage": "aware", "to_stage": "interested",
                                         "at": LATER + timedelta(days=3)} for c in sorted(set(moved))])
    db.dispose_all()

    [exp] = experiments(root)
    assert (exp["id"], exp["rule"], exp["step"], exp["metric"], exp["allocation"], exp["status"]) == \
        ("case-vs-roi", "playbook:aware", "case-study", "stage_advance", "fixed", "running")
    assert exp["verdict"] == "winner:aware/roi"
    by = {v["content"]: v for v in exp["variants"]}
    assert set(by) == {"aware/case-study", "aware/roi"}
    held = sum(in_holdout(c, 0.1) for c, _ in assigned)
    assert exp["holdout"] == {"contacts": held, "successes": 0, "rate": 0.0}
    assert by["aware/roi"]["contacts"] + by["aware/case-study"]["contacts"] + held == 600
    roi = by["aware/roi"]
    assert roi["low"] < roi["rate"] < roi["high"] and roi["rate"] == round(roi["successes"] / roi["contacts"], 4)
    assert "better" in in_process(root, "experiments", "--now", (LATER + timedelta(days=30)).isoformat())

    assert "not a variant" in in_process(root, "experiments", "stop", "case-vs-roi", "--promote", "aware/nope", code=2)
    assert "no experiment" in in_process(root, "experiments", "stop", "no-such-test", code=2)
    shown = in_process(root, "experiments", "stop", "case-vs-roi", "--promote", "aware/roi")
    assert "+       content: aware/roi" in shown and "experiment:" in shown
    assert path.read_text() != original  # not written without --write
    cli(root, "experiments", "stop", "case-vs-roi", "--promote", "aware/roi", "--write")
    # only the step's content and experiment lines changed; comments elsewhere stay
    assert path.read_text() == original.replace(STEP, "      content: aware/roi\n")
    assert "ok:" in cli(root, "check")
    [exp] = experiments(root)
    assert (exp["status"], exp["promoted"]) == ("stopped", "aware/roi")

    engine = Engine(Project.open(root))
    with session_scope(engine.db) as s:
        s.execute(insert(Contact), [{"email": f"n{i}@example.org", "stage": "aware", "stage_entered_at": LATER,
                                     "attributes": {}, "consent_email": True} for i in range(50)])
    engine.plan(LATER + timedelta(days=5))
    with session_scope(engine.db) as s:
        new = s.execute(select(col(Touch.content)).join(Contact, col(Contact.id) == col(Touch.contact_id)).where(
            col(Touch.step) == "case-study", col(Contact.email).like("n%"))).scalars().all()
    assert len(new) == 50 and set(new) == {"aware/roi"}
    db.dispose_all()


def test_simulated_experiments_as_scripts_read_them(tmp_path: Path) -> None:
    root = make_project(tmp_path / "proj", f"sqlite:///{tmp_path / 'x.db'}")
    out = json.loads(cli(root, "simulate", "--experiment", "aa", "--runs", "3", "--buyers", "300", "--weeks", "2",
                         "--json"))
    assert {"runs", "lift", "winner_called", "wrong_winner_called"} <= set(out)
    assert out["runs"] == 3 and out["lift"] == 0.0 and out["winner_called"] == out["wrong_winner_called"] == 0
