"""How `outreach check` reads a rep's tasks in the rules: a step's `channel: call` is fine with a
template for it; a task among an interaction's channels, on a trigger or with a meeting is an error
naming FILE:LINE; a template for a task must exist; `call.connected` is a known event."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from outreach.checks.rules import read_checked
from tests.support import ROOT
from tests.support.tasks import add_task_steps


def _project(tmp_path: Path) -> Path:
    for name in ("rules", "content"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("tests"))
    return add_task_steps(tmp_path)


def _problems(root: Path) -> list[str]:
    _rs, problems = read_checked(root / "rules", root / "content")
    return [f"{p.file}:{p.line}: {p.message}" for p in problems if not p.warning]


def test_task_steps_check_clean(tmp_path: Path) -> None:
    root = _project(tmp_path)
    _rs, problems = read_checked(root / "rules", root / "content")
    assert [p.message for p in problems] == []


@pytest.mark.parametrize(("old", "new", "expected"), [
    ("  routine:   {channels: [email, sms]}", "  routine:   {channels: [email, call]}",
     "rules/nurture.yaml:21: interactions.routine.channels: call is a task a rep does by hand"),
    ("      channel: call\n", "      channel: call\n      meeting: {duration: 30m}\n",
     "cannot also be a meeting invite"),
])
def test_a_misplaced_task_is_an_error_at_its_line(tmp_path: Path, old: str, new: str, expected: str) -> None:
    root = _project(tmp_path)
    path = root / "rules" / "nurture.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    problems = _problems(root)
    assert any(expected in p for p in problems), problems


def test_a_task_needs_its_script(tmp_path: Path) -> None:
    root = _project(tmp_path)
    (root / "content" / "interested" / "intro-call.call.j2").unlink()
    problems = _problems(root)
    assert any("nurture.yaml:" in p and "content/interested/intro-call.call.j2" in p for p in problems), problems
