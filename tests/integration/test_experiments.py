"""Experiments through the real planner on SQLite and PostgreSQL: the holdout gets no automated touch,
each contact gets one stable variant recorded on its touch, adaptive allocation moves new contacts to
the variant that advances buyers, and the figures per variant come out of one grouped query."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, select, update
from sqlmodel import col

from outreach.db import session_scope
from outreach.engine import Engine
from outreach.evidence import EvidenceIn
from outreach.experiments.assign import HOLDOUT_REASON, in_holdout
from outreach.experiments.results import report
from outreach.models import Contact, StageChange, Touch
from outreach.project import Project
from tests.support import ALWAYS, at, make_project

MONDAY = at("2026-03-02 09:00")
LATER = MONDAY + timedelta(days=5)  # the welcome and the case study are both due
N = 600
EXPERIMENT = "{id: case-vs-roi, metric: stage_advance, within: 14d, allocation: %s}"


def project(tmp_path: Path, database: str, allocation: str = "fixed", seed: int = 0) -> Engine:
    root = make_project(tmp_path / "proj", database, **{"policy.holdout": 0.1, "policy.send_windows.email": ALWAYS,
                                                       "policy.send_windows.sms": ALWAYS})
    set_rules(root, allocation, seed)
    return Engine(Project.open(root))


def set_rules(root: Path, allocation: str, seed: int) -> None:
    path = root / "rules" / "nurture.yaml"
    text = path.read_text()
    old = "      content: aware/case-study\n"
    if old not in text:
        text = text.split("      content: [aware/case-study, aware/roi]\n")[0] + old + \
            text.split("      content: [aware/case-study, aware/roi]\n")[1].split("\n", 1)[1]
    exp = EXPERIMENT % allocation + (f", seed: {seed}}}" if seed else "")
    exp = exp.replace("}, seed", ", seed")
    path.write_text(text.replace(old, f"      content: [aware/case-study, aware/roi]\n      experiment: {exp}\n"))


def add_contacts(engine: Engine, first: int, count: int, entered: object = MONDAY) -> list[int]:
    with session_scope(engine.db) as s:
        s.execute(insert(Contact), [{"email": f"b{i}@example.org", "consent_email": True, "stage": "aware",
                                     "stage_entered_at": entered, "title": "CTO" if i % 2 else "CFO",
                                     "attributes": {}, "stage_entry": 0, "created_at": MONDAY}
                                    for i in range(first, first + count)])
        return list(s.execute(select(col(Contact.id)).where(col(Contact.email).like("b%"))
                              .order_by(col(Contact.id))).scalars())[-count:]


def touches(engine: Engine, step: str) -> list[tuple[int, str, str | None, str | None, str | None]]:
    with session_scope(engine.db) as s:
        return [tuple(r) for r in s.execute(select(col(Touch.contact_id), col(Touch.status), col(Touch.variant),
                                                   col(Touch.content), col(Touch.reason))
                                            .where(col(Touch.step) == step)).all()]  # type: ignore[misc]


def test_holdout_and_a_fixed_split(tmp_path: Path, database: str) -> None:
    engine = project(tmp_path, database)
    ids = add_contacts(engine, 0, N)
    engine.plan(LATER)
    held = {i for i in ids if in_holdout(i, 0.1)}
    assert 30 < len(held) < 90
    for step in ("welcome", "case-study"):
        rows = touches(engine, step)
        assert len(rows) == N
        for cid, status, variant, _, reason in rows:
            if cid in held:  # planned once (so not again), never sent
                assert (status, reason) == ("suppressed", HOLDOUT_REASON)
                assert variant == ("holdout" if step == "case-study" else None)
            else:
                assert status == "approved"
    split = Counter(v for _, _, v, _, _ in touches(engine, "case-study"))
    assert split["holdout"] == len(held)
    assert abs(split["aware/case-study"] - split["aware/roi"]) < 0.15 * (N - len(held))
    assert all(v == c for _, _, v, c, _ in touches(engine, "case-study") if v != "holdout")

    # a trigger skips the holdout too
    someone_held, someone_not = min(held), min(set(ids) - held)
    engine.record([EvidenceIn("demo.requested", LATER, "test", email=f"b{ids.index(c)}@example.org")
                   for c in (someone_held, someone_not)], now=LATER)
    assert {r[0] for r in touches(engine, "demo-confirmation")} == {someone_not}


def test_a_contact_keeps_its_variant_when_it_comes_back(tmp_path: Path, database: str) -> None:
    engine = project(tmp_path, database)
    add_contacts(engine, 0, 200)
    engine.plan(LATER)
    first = {cid: v for cid, _, v, _, _ in touches(engine, "case-study")}
    set_rules(engine.project.path, "fixed", seed=7)  # a new seed would draw a new split for new contacts
    engine = Engine(Project.open(engine.project.path))
    with session_scope(engine.db) as s:  # everyone re-enters the stage
        s.execute(update(Contact).values(stage_entry=1, stage_entered_at=LATER))
    engine.plan(LATER + timedelta(days=5))
    again: dict[int, set[str | None]] = {}
    for cid, _, v, _, _ in touches(engine, "case-study"):
        again.setdefault(cid, set()).add(v)
    assert all(again[cid] == {v} for cid, v in first.items())


def test_adaptive_moves_new_contacts_to_the_variant_that_advances_buyers(tmp_path: Path, database: str) -> None:
    engine = project(tmp_path, database, "adaptive")
    ids = add_contacts(engine, 0, 400)
    engine.plan(LATER)
    with session_scope(engine.db) as s:  # roi moved a third of its contacts on; the case study nobody
        roi = [cid for cid, in s.execute(select(col(Touch.contact_id)).where(col(Touch.variant) == "aware/roi"))]
        s.execute(insert(StageChange), [{"contact_id": c, "from_stage": "aware", "to_stage": "interested",
                                         "at": LATER + timedelta(days=2)} for c in roi[::3]])
    first = Counter(v for _, _, v, _, _ in touches(engine, "case-study"))
    assert first["aware/roi"] > 100 and first["aware/case-study"] > 100  # no data yet: an even draw
    fresh = add_contacts(engine, 400, 300, entered=LATER)
    engine.plan(LATER + timedelta(days=5))
    later = Counter(v for cid, _, v, _, _ in touches(engine, "case-study") if cid in set(fresh))
    assert later["aware/roi"] > 0.95 * sum(n for v, n in later.items() if v != "holdout")

    with session_scope(engine.db) as s:
        [exp] = report(s, engine.project.rules, LATER + timedelta(days=30))
    assert exp["id"] == "case-vs-roi" and exp["status"] == "running"
    by = {v["content"]: v for v in exp["variants"]}
    assert by["aware/roi"]["successes"] == len(roi[::3])
    assert by["aware/case-study"]["successes"] == 0
    assert exp["verdict"] == "winner:aware/roi"
    assert exp["holdout"]["contacts"] == sum(1 for i in ids + fresh if in_holdout(i, 0.1))


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_before_its_start_everyone_gets_the_first_variant(tmp_path: Path, database: str) -> None:
    engine = project(tmp_path, database)
    path = engine.project.path / "rules" / "nurture.yaml"
    path.write_text(path.read_text().replace("allocation: fixed}", "allocation: fixed, start: 2026-03-10}"))
    engine = Engine(Project.open(engine.project.path))
    add_contacts(engine, 0, 100)
    engine.plan(LATER)  # March 7th
    rows = touches(engine, "case-study")
    assert {(v, c) for _, s, v, c, _ in rows if s == "approved"} == {(None, "aware/case-study")}
