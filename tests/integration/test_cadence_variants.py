"""Cadence variants (`after: [2d, 5d]`) through the real planner, check, dry run and stop: every
contact is assigned when the earliest cadence is due, its touch records the variant and is due after
its own wait; paired with content variants each variant sends its own content; promoting one writes
its content and its `after` back into the rules file."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlmodel import col

from outreach.checks.rules import read_checked
from outreach.db import session_scope
from outreach.dryrun import dry_run, text
from outreach.engine import Engine
from outreach.experiments.stop import Stopped, stop_experiment
from outreach.models import Touch
from outreach.project import Project
from tests.integration.test_experiments import MONDAY, add_contacts
from tests.support import ALWAYS, make_project

STEP = "      after: 4d\n      interaction: nurture\n      content: aware/case-study\n"


def project(tmp_path: Path, database: str, step: str) -> Engine:
    root = make_project(tmp_path / "proj", database, **{"policy.holdout": 0.1, "policy.send_windows.email": ALWAYS})
    path = root / "rules" / "nurture.yaml"
    assert STEP in path.read_text()
    path.write_text(path.read_text().replace(STEP, step))
    return Engine(Project.open(root))


def due(engine: Engine) -> list[tuple[int, str | None, str, timedelta]]:
    with session_scope(engine.db) as s:
        return [(cid, v, content, d - MONDAY) for cid, v, content, d in s.execute(
            select(col(Touch.contact_id), col(Touch.variant), col(Touch.content), col(Touch.due_at))
            .where(col(Touch.step) == "case-study", col(Touch.status) != "suppressed")).all()]


def test_cadence_alone_is_assigned_at_the_earliest_wait_and_due_after_its_own(tmp_path: Path, database: str) -> None:
    engine = project(tmp_path, database, "      after: [2d, 5d]\n      interaction: nurture\n"
                                         "      content: aware/case-study\n"
                                         "      experiment: {id: wait-longer, metric: stage_advance}\n")
    add_contacts(engine, 0, 300)
    assert due(engine) == []
    preview = dry_run(engine, MONDAY + timedelta(days=2, hours=1))[0]
    [step] = [s for s in preview["steps"] if s["rule"] == "playbook:aware/case-study"]
    assert set(step["variants"]) == {"aware/case-study@2d", "aware/case-study@5d", "holdout"}
    assert step["cadence"] == {"aware/case-study@2d": "2d", "aware/case-study@5d": "5d"}
    assert "cadence: aware/case-study@2d after 2d, aware/case-study@5d after 5d" in "\n".join(text(preview))

    engine.plan(MONDAY + timedelta(days=1))  # before the earliest wait: nobody
    assert due(engine) == []
    engine.plan(MONDAY + timedelta(days=2, hours=1))  # everyone is assigned now, each due after its wait
    rows = due(engine)
    assert 240 < len(rows) < 300
    assert {(v, c, d) for _, v, c, d in rows} == {("aware/case-study@2d", "aware/case-study", timedelta(days=2)),
                                                  ("aware/case-study@5d", "aware/case-study", timedelta(days=5))}
    split = Counter(v for _, v, _, _ in rows)
    assert abs(split["aware/case-study@2d"] - split["aware/case-study@5d"]) < 0.2 * len(rows)
    engine.plan(MONDAY + timedelta(days=6))  # planned once: the later wait is not planned again
    assert len(due(engine)) == len(rows)

    done = stop_experiment_in(engine, "wait-longer", "aware/case-study@5d")
    assert done.written
    written = (engine.project.path / "rules" / "nurture.yaml").read_text()
    assert "      after: 5d\n      interaction: nurture\n      content: aware/case-study\n" in written
    assert "wait-longer" not in written


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_paired_with_content_each_variant_sends_its_content_after_its_wait(tmp_path: Path, database: str) -> None:
    engine = project(tmp_path, database, "      after: [2d, 4d]\n      interaction: nurture\n"
                                         "      content: [aware/case-study, aware/roi]\n"
                                         "      experiment: {id: roi-later, metric: stage_advance}\n")
    add_contacts(engine, 0, 200)
    engine.plan(MONDAY + timedelta(days=2, hours=1))
    assert {(v, c, d) for _, v, c, d in due(engine)} == {("aware/case-study", "aware/case-study", timedelta(days=2)),
                                                        ("aware/roi", "aware/roi", timedelta(days=4))}
    stop_experiment_in(engine, "roi-later", "aware/roi")
    written = (engine.project.path / "rules" / "nurture.yaml").read_text()
    assert "      after: 4d\n      interaction: nurture\n      content: aware/roi\n" in written


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
@pytest.mark.parametrize(("step", "line", "words"), [
    ("      after: [2d, 4d]\n      interaction: nurture\n      content: aware/case-study\n", 35,
     "`after` lists 2 cadence variants but the step has no `experiment"),
    ("      after: [2d, 4d, 6d]\n      interaction: nurture\n      content: [aware/case-study, aware/roi]\n"
     "      experiment: {id: x}\n", 34, "`content` lists 2 variants and `after` 3"),
    ("      after: [2d, 48h]\n      interaction: nurture\n      content: aware/case-study\n"
     "      experiment: {id: x}\n", 35, "two cadence variants wait the same time"),
])
def test_check_names_the_line_of_a_wrong_cadence(tmp_path: Path, database: str, step: str, line: int,
                                                 words: str) -> None:
    root = make_project(tmp_path / "proj", database)
    path = root / "rules" / "nurture.yaml"
    path.write_text(path.read_text().replace(STEP, step))
    problems = [p for p in read_checked(root / "rules", root / "content")[1] if not p.warning]
    assert [(p.file, p.line) for p in problems] == [("rules/nurture.yaml", line)], problems
    assert words in problems[0].message


def stop_experiment_in(engine: Engine, exp_id: str, promote: str) -> Stopped:
    with session_scope(engine.db) as s:
        return stop_experiment(s, engine.project.rules, engine.project.path, exp_id, promote, True, "cli")
