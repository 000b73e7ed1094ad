"""`outreach test`: rule tests. Each scenario in rules/tests/*.yaml gives a contact, the evidence it
produced and when, a `now`, and the touches expected (or not); it runs through the real engine on a
throwaway SQLite database: import the contact, then at its start, at each piece of evidence and at
`now`, plan what came due, send it, and expire what went stale, recording the evidence on its way.

Rule tests test the rules, not delivery: an approved touch counts as sent the moment it is due (no
send windows, caps or rendering), and nobody approves a touch that waits for a rep."""

from __future__ import annotations

import csv
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from outreach import db
from outreach.config import Settings, load_settings
from outreach.contacts import import_csv, parse_row
from outreach.engine import Engine
from outreach.errors import ConfigError, InvalidInput, Problem
from outreach.evidence import EvidenceIn
from outreach.kinds import Channel
from outreach.located_yaml import Located, did_you_mean, load_file, path_text, validate
from outreach.models import Contact, Touch, TouchStatus
from outreach.project import Project
from outreach.ruleset import Event, Ruleset, bounded_duration

DEFAULT_START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)  # a Monday morning


def _when(v: Any) -> Any:
    """An ISO time (`2026-03-02T09:00:00Z`; UTC if it names no zone) or a duration after `start` (`3d`)."""
    if isinstance(v, str) and v[:1].isdigit() and not v[-1:].isdigit() and "-" not in v and ":" not in v:
        return bounded_duration(v)
    if v == 0 and not isinstance(v, bool):
        return timedelta(0)
    if isinstance(v, str):
        try:
            v = datetime.fromisoformat(v.replace("Z", "+00:00"))
        except ValueError:
            pass
    if isinstance(v, date) and not isinstance(v, datetime):
        v = datetime(v.year, v.month, v.day)
    if not isinstance(v, datetime):
        raise ValueError(f"'{v}' is neither a time (2026-03-02T09:00:00Z) nor a duration after start (like 3d)")
    if not 1970 <= v.year <= 2200:  # far enough either way, and clear of datetime's limits
        raise ValueError(f"'{v}' is out of range: give a time between 1970 and 2200")
    return v if v.tzinfo else v.replace(tzinfo=UTC)


When = Annotated[datetime | timedelta, BeforeValidator(_when)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ContactIn(Strict):
    """The columns of a contacts CSV, `attributes` for the others, and optionally a starting stage."""

    email: str | None = None
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    company: str | None = None
    title: str | None = None
    timezone: str | None = None
    owner: str | None = None
    external_id: str | None = None
    consent_email: bool | None = None
    consent_sms: bool | None = None
    attributes: dict[str, str | int | float | bool] = {}
    stage: str | None = None  # default: the first stage, entered at `start`


class EvidenceItem(Strict):
    type: Event
    at: When
    data: dict[str, Any] = {}
    touch: str | None = None  # the step or trigger whose touch it answers (a click on that email)


class Expect(Strict):
    """Matches the touches whose every given field matches; `rule` is `playbook:aware`, `aware`,
    `trigger:pricing-follow-up` or `pricing-follow-up`; `reason` is a part of the touch's reason."""

    rule: str | None = None
    step: str | None = None
    interaction: str | None = None
    channel: Channel | None = None
    status: TouchStatus | None = None
    reason: str | None = None
    count: int | None = Field(default=None, ge=0)  # exactly this many (default: at least one)

    def matches(self, t: dict[str, Any]) -> bool:
        return all((
            self.rule is None or self.rule in (t["rule"], t["rule"].split(":", 1)[-1]),
            self.step is None or self.step == t["step"],
            self.interaction is None or self.interaction == t["interaction"],
            self.channel is None or self.channel == t["channel"],
            self.status is None or self.status == t["status"],
            self.reason is None or self.reason in (t["reason"] or ""),
        ))

    def __str__(self) -> str:
        fields = self.model_dump(exclude_none=True, exclude={"count"})
        return ", ".join(f"{k} {v}" for k, v in fields.items()) or "any touch"


class Scenario(Strict):
    version: Literal[1] | None = None
    name: str | None = None
    contact: ContactIn
    start: When = DEFAULT_START
    evidence: list[EvidenceItem] = []
    now: When
    config: dict[str, Any] = {}
    expect: list[Expect] = []
    expect_not: list[Expect] = []
    expect_stage: str | None = None


class ScenarioFile(Strict):
    version: Literal[1] | None = None
    scenarios: list[Any] = Field(min_length=1)


@dataclass
class Loaded:
    """A validated scenario, its times resolved, and where it stands."""

    scenario: Scenario
    file: str
    line: int
    name: str
    start: datetime
    now: datetime
    evidence: list[tuple[EvidenceItem, datetime]]
    settings: Settings
    row: dict[str, str]


@dataclass
class Outcome:
    test: Loaded
    failures: list[str] = field(default_factory=list)
    touches: list[dict[str, Any]] = field(default_factory=list)
    stage: str = ""

    @property
    def passed(self) -> bool:
        return not self.failures


def scenario_files(project: Project) -> list[Path]:
    folder = project.rules_dir / "tests"
    return sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]) if folder.is_dir() else []


def load_scenarios(project: Project, files: list[Path]) -> tuple[list[Loaded], list[Problem]]:
    """Every scenario of these files, validated against the project's rules; every problem as FILE:LINE."""
    loaded: list[Loaded] = []
    problems: list[Problem] = []
    for path in files:
        display = _display(project, path)
        src, found = load_file(path, display)
        problems += found
        if src is None:
            continue
        if not isinstance(src.data, dict):
            problems.append(src.problem((), "a rule test file is a mapping: one scenario (contact:, evidence:, "
                                            "now:, expect:), or `scenarios:` with a list of them"))
            continue
        locs: list[tuple[str | int, ...]] = [()]
        if "scenarios" in src.data:
            top, found = validate(src, ScenarioFile)
            problems += found
            locs = [("scenarios", i) for i in range(len(top.scenarios))] if top else []
        for loc in locs:
            scenario, found = validate(src, Scenario, at=loc)
            problems += found
            if scenario is not None:
                item, found = _resolve(project, src, loc, scenario, path)
                problems += found
                if item is not None:
                    loaded.append(item)
    return loaded, problems


def _display(project: Project, path: Path) -> str:
    try:
        return path.resolve().relative_to(project.path).as_posix()
    except ValueError:
        return str(path)


def _resolve(project: Project, src: Located, loc: tuple[str | int, ...], sc: Scenario,
             path: Path) -> tuple[Loaded | None, list[Problem]]:
    """Check a scenario against the rules (a typo in `expect_not` must not pass silently) and resolve
    its times and settings."""
    problems: list[Problem] = []
    rules = project.rules

    def bad(key: tuple[str | int, ...], message: str) -> None:
        problems.append(src.problem((*loc, *key), f"{path_text((*loc, *key))}: {message}"))

    start = _at(sc.start, DEFAULT_START)
    now = _at(sc.now, start)
    evidence = sorted(((ev, _at(ev.at, start)) for ev in sc.evidence), key=lambda e: e[1])
    if now < start:
        bad(("now",), "`now` is before `start`")
    for i, ev in enumerate(sc.evidence):
        if _at(ev.at, start) > now:
            bad(("evidence", i, "at"), "this evidence comes after `now`: it would not have happened yet")
        if ev.touch is not None:
            _known(ev.touch, _rule_names(rules, "step"), ("evidence", i, "touch"), "step or trigger", bad)
    if not (sc.expect or sc.expect_not or sc.expect_stage):
        bad((), "nothing to check: give `expect`, `expect_not` or `expect_stage`")
    for kind in ("expect", "expect_not"):
        for i, e in enumerate(getattr(sc, kind)):
            if e.step is not None:
                _known(e.step, _rule_names(rules, "step"), (kind, i, "step"), "step or trigger", bad)
            if e.rule is not None:
                _known(e.rule, _rule_names(rules, "rule"), (kind, i, "rule"), "rule", bad)
            if e.interaction is not None:
                _known(e.interaction, list(rules.interactions), (kind, i, "interaction"), "interaction", bad)
    for key, stage in (("expect_stage",), sc.expect_stage), (("contact", "stage"), sc.contact.stage):
        if stage is not None:
            _known(stage, rules.stage_ids, key, "stage", bad)
    row = _row(sc.contact)
    try:
        parse_row(row, project.settings.default_region)
    except InvalidInput as exc:
        bad(("contact",), str(exc))
    try:
        settings = load_settings(project.path, sc.config) if sc.config else project.settings
    except ConfigError as exc:
        for p in exc.problems:
            bad(("config",), f"{p.message} (laid over config.yaml)")
        settings = project.settings
    if problems:
        return None, problems
    name = sc.name or (path.stem if loc == () else f"{path.stem} #{loc[-1]}")
    return Loaded(sc, src.file, src.line(loc), name, start, now, evidence, settings, row), []


def _at(when: datetime | timedelta, start: datetime) -> datetime:
    return start + when if isinstance(when, timedelta) else when


def _rule_names(rules: Ruleset, kind: str) -> list[str]:
    if kind == "step":
        return [s.id for steps in rules.playbooks.values() for s in steps] + [t.id for t in rules.triggers]
    return [*(f"playbook:{s}" for s in rules.playbooks), *rules.playbooks, *(f"trigger:{t.id}" for t in rules.triggers),
            *(t.id for t in rules.triggers)]


def _known(value: str, names: list[str], key: tuple[str | int, ...], what: str, bad: Any) -> None:
    if value not in names:
        bad(key, f"there is no {what} '{value}' in the rules{did_you_mean(value, names)}")


def _row(contact: ContactIn) -> dict[str, str]:
    """The contact as a CSV row: the same parsing and checks as `outreach contacts import`."""
    values = contact.model_dump(exclude={"attributes", "stage"})
    row = {k: ("yes" if v else "no") if isinstance(v, bool) else "" if v is None else str(v)
           for k, v in values.items()}
    row.update({k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in contact.attributes.items()})
    return row


def run_scenario(project: Project, test: Loaded, blank: Path) -> Outcome:
    """One scenario on a database of its own: a copy of `blank`, a SQLite file run_tests migrated once
    (migrating from nothing takes a second or two a scenario)."""
    with tempfile.TemporaryDirectory(prefix="outreach-test-") as tmp:
        path = Path(tmp) / "scenario.db"
        url = f"sqlite:///{path}"
        shutil.copyfile(blank, path)
        try:
            engine = Engine(Project(project.path, test.settings.model_copy(update={"database": url}),
                                    project.rules), providers={})
            contact_id = _import(engine, test, Path(tmp))
            _advance(engine, test.start)
            for ev, at in test.evidence:
                _advance(engine, at)  # what came due before it, as the periodic jobs would have done
                touch_id = _touch_of(engine, contact_id, ev.touch) if ev.touch else None
                engine.record([EvidenceIn(ev.type, at, "test", contact_id=contact_id, touch_id=touch_id,
                                          data=dict(ev.data))], now=at)
                _advance(engine, at)  # a trigger's touch due at once goes out at once
            _advance(engine, test.now)
            return _compare(test, *_results(engine, contact_id))
        finally:
            db.forget(url)  # this database is gone with the folder


def _advance(engine: Engine, at: datetime) -> None:
    """Plan what is due at `at`, send the approved touches due by then (each at its due time, if
    that came before its `within` ran out), then expire the rest that went stale."""
    from sqlalchemy import or_, update
    from sqlmodel import col

    engine.plan(at)
    with db.session_scope(engine.db) as s:
        s.execute(update(Touch).where(
            col(Touch.status) == TouchStatus.APPROVED, col(Touch.due_at) <= at,
            or_(col(Touch.expires_at).is_(None), col(Touch.expires_at) > col(Touch.due_at)),
        ).values(status=TouchStatus.SENT, sent_at=Touch.due_at, provider="test", updated_at=at))
    engine.housekeeping(at)


def _import(engine: Engine, test: Loaded, tmp: Path) -> int:
    from sqlmodel import select

    path = tmp / "contact.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(test.row))
        writer.writeheader()
        writer.writerow(test.row)
    with db.session_scope(engine.db) as s:
        import_csv(s, path, region=test.settings.default_region, first_stage=engine.project.rules.first_stage,
                   now=test.start)
        contact = s.exec(select(Contact)).one()
        if test.scenario.contact.stage:
            contact.stage = test.scenario.contact.stage
            s.add(contact)
        return contact.id or 0


def _touch_of(engine: Engine, contact_id: int, step: str) -> int | None:
    from sqlmodel import select

    with db.session_scope(engine.db) as s:
        ids = s.exec(select(Touch.id).where(Touch.contact_id == contact_id, Touch.step == step)).all()
    return max((i for i in ids if i is not None), default=None)


def _results(engine: Engine, contact_id: int) -> tuple[list[dict[str, Any]], str]:
    from sqlmodel import col, select

    with db.session_scope(engine.db) as s:
        touches = s.exec(select(Touch).where(col(Touch.contact_id) == contact_id).order_by(col(Touch.id))).all()
        contact = s.get(Contact, contact_id)
        assert contact is not None  # the scenario imported it
        stage = contact.stage
        return [{"rule": t.rule, "step": t.step, "interaction": t.interaction, "channel": t.channel,
                 "status": t.status, "reason": t.reason, "due_at": t.due_at} for t in touches], stage


def _compare(test: Loaded, touches: list[dict[str, Any]], stage: str) -> Outcome:
    out = Outcome(test, touches=touches, stage=stage)
    sc = test.scenario
    for e in sc.expect:
        n = sum(e.matches(t) for t in touches)
        if e.count is not None and n != e.count:
            out.failures.append(f"expected {e.count} touch(es) with {e}, came {n}")
        elif e.count is None and n == 0:
            out.failures.append(f"expected a touch with {e}, none came")
    for e in sc.expect_not:
        for t in (t for t in touches if e.matches(t)):
            out.failures.append(f"expected no touch with {e}, came {describe(t)}")
    if sc.expect_stage and stage != sc.expect_stage:
        out.failures.append(f"expected the contact at stage {sc.expect_stage}, it is at {stage}")
    return out


def describe(t: dict[str, Any]) -> str:
    due = t["due_at"].strftime("%Y-%m-%d %H:%M") if t["due_at"] else "-"
    reason = f" ({t['reason']})" if t["reason"] else ""
    return f"{t['rule']}/{t['step']} by {t['channel'] or '-'}, {t['status']}{reason}, due {due}"


def report_lines(outcome: Outcome) -> list[str]:
    """A scenario's result for people: on failure, what was expected and every touch that came."""
    t = outcome.test
    lines = [f"{'ok  ' if outcome.passed else 'FAIL'}  {t.file}:{t.line}: {t.name}"]
    if outcome.passed:
        return lines
    lines += [f"      {f}" for f in outcome.failures]
    lines.append(f"      what came (stage {outcome.stage} at {t.now.strftime('%Y-%m-%d %H:%M')}):")
    lines += [f"        {describe(x)}" for x in outcome.touches] or ["        no touches"]
    return lines


def outcome_json(outcome: Outcome) -> dict[str, Any]:
    t = outcome.test
    return {"file": t.file, "line": t.line, "name": t.name, "passed": outcome.passed, "failures": outcome.failures,
            "stage": outcome.stage, "touches": [{**x, "due_at": x["due_at"].isoformat() if x["due_at"] else None}
                                                for x in outcome.touches]}


def run_tests(project: Project, files: list[Path] | None, as_json: bool, echo: Callable[..., None]) -> int:
    """Validate every scenario, then run them: 0 all passed, 1 some failed, 2 a file is invalid (none run)."""
    import json

    paths = files or scenario_files(project)
    problems = [Problem(str(p), 1, "no such file") for p in paths if not p.is_file()]
    loaded, found = load_scenarios(project, [p for p in paths if p.is_file()])
    problems += found
    if problems:
        for p in problems:
            echo(str(p), err=True)
        echo(f"{len(problems)} error(s) in the rule tests: none was run", err=True)
        return 2
    with tempfile.TemporaryDirectory(prefix="outreach-test-") as tmp:
        blank = Path(tmp) / "blank.db"  # migrated once, copied for each scenario
        db.migrate(f"sqlite:///{blank}")
        db.forget(f"sqlite:///{blank}")
        outcomes = [run_scenario(project, t, blank) for t in loaded]
    failed = sum(not o.passed for o in outcomes)
    if as_json:
        echo(json.dumps([outcome_json(o) for o in outcomes], indent=2))
    elif not outcomes:
        echo("no rule tests: write scenarios in rules/tests/*.yaml (docs/RULES.md shows how)")
    else:
        for o in outcomes:
            echo("\n".join(report_lines(o)))
        echo(f"{len(outcomes) - failed} passed, {failed} failed")
    return 1 if failed else 0
