"""A playbook step's conditions through `plan`, at their edges: `skip_if` counts evidence from the
moment of stage entry on (not before, not another type), and a step comes due at its `after`, not a
second sooner. The skip_if event here moves nobody to another stage, so only skip_if can hold the
step back (a click would move the buyer on and hide a skip_if that did nothing)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from outreach.db import session_scope
from outreach.engine import Engine
from outreach.evidence import EvidenceIn
from outreach.models import Contact
from outreach.project import Project
from tests.integration.test_loop import MONDAY, load, touches

ADA = "ada@analytical.example"
DAY4 = MONDAY + timedelta(days=4)  # the contacts entered `aware` at MONDAY; case-study is due 4d on


@pytest.fixture
def opened_skips(project_path: Path) -> Engine:
    nurture = project_path / "rules" / "nurture.yaml"
    nurture.write_text(nurture.read_text().replace("skip_if: [email.clicked]", "skip_if: [email.opened]", 1))
    engine = Engine(Project.open(project_path))
    load(engine)
    return engine


def _case_studies(engine: Engine) -> set[str]:
    with session_scope(engine.db) as s:
        emails = {c.id: c.email for c in s.exec(select(Contact)).all()}
    return {emails[t.contact_id] or "" for t in touches(engine, step="case-study")}


@pytest.mark.parametrize(("event", "offset", "skipped"), [
    ("email.opened", timedelta(seconds=-1), False),  # before the stage began: another stage's story
    ("email.opened", timedelta(0), True),  # at the moment of entry: this stage's
    ("email.opened", timedelta(days=1), True),
    ("email.delivered", timedelta(days=1), False),  # not a skip_if type
])
def test_skip_if_counts_evidence_from_the_stage_entry_on(opened_skips: Engine, event: str, offset: timedelta,
                                                         skipped: bool) -> None:
    opened_skips.record([EvidenceIn(event, MONDAY + offset, "test", email=ADA)], now=MONDAY + offset)
    opened_skips.plan(DAY4)
    planned = _case_studies(opened_skips)
    assert len(planned) == 5 + (not skipped)  # the other five contacts get theirs either way
    assert (ADA not in planned) is skipped


def test_a_step_comes_due_at_its_after(opened_skips: Engine) -> None:
    opened_skips.plan(DAY4 - timedelta(seconds=1))
    assert _case_studies(opened_skips) == set()
    opened_skips.plan(DAY4)
    assert len(_case_studies(opened_skips)) == 6


def test_a_plan_for_some_contacts_honours_skip_if(opened_skips: Engine) -> None:
    # a re-plan of a few contacts (after their evidence) takes the per-contact path, with their ids
    opened_skips.record([EvidenceIn("email.opened", MONDAY, "test", email=ADA)], now=MONDAY)
    with session_scope(opened_skips.db) as s:
        ids = {c.email: c.id or 0 for c in s.exec(select(Contact)).all()}
        opened_skips.planner().plan(s, DAY4, contact_ids=[ids[ADA], ids["alan@bletchley.example"]])
    assert _case_studies(opened_skips) == {"alan@bletchley.example"}


def test_a_dry_run_after_a_plan_shows_nothing_queued_twice(opened_skips: Engine) -> None:
    # the dedupe key keeps a real plan from writing a touch twice; a dry run writes nothing, so only
    # the step's "no touch for this stage entry yet" condition keeps it from listing them again
    assert opened_skips.plan(MONDAY).queued == 6
    assert opened_skips.plan(MONDAY, dry_run=True).queued == 0
    assert opened_skips.plan(DAY4, dry_run=True).queued == 6  # the case studies, due now


def test_a_trigger_touch_named_like_a_step_does_not_stand_for_it(project_path: Path) -> None:
    # a trigger's touch records its id as the step: only a touch of the playbook's own rule counts
    nurture = project_path / "rules" / "nurture.yaml"
    nurture.write_text(nurture.read_text().replace(
        "  - id: pricing-follow-up\n    on: pricing.viewed\n"
        "    if: \"contact.stage in ['interested', 'evaluating']\"\n",
        "  - id: case-study\n    on: pricing.viewed\n", 1))
    engine = Engine(Project.open(project_path))
    load(engine)
    engine.record([EvidenceIn("pricing.viewed", MONDAY, "test", email=ADA)], now=MONDAY)
    assert [t.rule for t in touches(engine, step="case-study")] == ["trigger:case-study"]
    engine.plan(DAY4)
    assert ADA in _case_studies(engine) and len(touches(engine, step="case-study")) == 7
