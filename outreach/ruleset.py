"""rules/*.yaml -> one validated, typed Ruleset. Every problem is reported as FILE:LINE: message."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from .durations import parse_duration
from .errors import ConfigError, Problem
from .yamlsrc import load_file, validate

Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
Channel = Literal["email", "sms", "meeting"]
Approval = Literal["auto", "rep"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Condition(Strict):
    """`event` seen `count` times within `within` (plain events: once, ever)."""

    event: str
    count: int = Field(default=1, ge=1)
    within: Duration | None = None


def _condition(v: Any) -> Any:
    return {"event": v} if isinstance(v, str) else v


class Stage(Strict):
    id: str
    reached_by: list[Annotated[Condition, BeforeValidator(_condition)]] = []


class Interaction(Strict):
    channels: list[Channel] = Field(min_length=1)

    @field_validator("channels")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("a channel is listed twice")
        return v


class Meeting(Strict):
    duration: Duration = timedelta(minutes=30)


class Step(Strict):
    id: str
    after: Duration = timedelta(0)
    interaction: str
    content: str
    approval: Approval = "auto"
    channel: Channel | None = None
    skip_if: list[str] = []
    meeting: Meeting | None = None


class Trigger(Strict):
    id: str
    on: str
    if_: str | None = Field(default=None, alias="if")
    interaction: str
    content: str
    approval: Approval = "auto"
    channel: Channel | None = None
    within: Duration | None = None
    after: Duration = timedelta(0)
    meeting: Meeting | None = None


class Learning(Strict):
    """What channel learning may use: attributes that make buyers alike, and how much to explore."""

    similar_by: list[str] = ["title"]
    explore: float = Field(default=0.05, ge=0, le=0.5)


class RuleFile(Strict):
    version: Literal[1]
    stages: list[Stage] | None = None
    interactions: dict[str, Interaction] = {}
    playbooks: dict[str, list[Step]] = {}
    triggers: list[Trigger] = []
    learning: Learning | None = None


@dataclass
class Ruleset:
    """All rule files merged. `where` maps ("step", stage, id) and friends to (file, line)."""

    stages: list[Stage]
    interactions: dict[str, Interaction]
    playbooks: dict[str, list[Step]]
    triggers: list[Trigger]
    learning: Learning = field(default_factory=Learning)
    where: dict[tuple[str, ...], tuple[str, int]] = field(default_factory=dict)

    @property
    def stage_ids(self) -> list[str]:
        return [s.id for s in self.stages]

    def stage_rank(self, stage: str) -> int:
        ids = self.stage_ids
        return ids.index(stage) if stage in ids else -1

    @property
    def first_stage(self) -> str:
        return self.stages[0].id

    def step(self, stage: str, step_id: str) -> Step | None:
        return next((s for s in self.playbooks.get(stage, []) if s.id == step_id), None)

    def trigger(self, trigger_id: str) -> Trigger | None:
        return next((t for t in self.triggers if t.id == trigger_id), None)


def load_ruleset(rules_dir: Path, content_dir: Path | None = None) -> Ruleset:
    """Load and cross-check every rules/*.yaml; raise ConfigError listing all problems."""
    ruleset, problems = read_ruleset(rules_dir, content_dir)
    errors = [p for p in problems if not p.warning]
    if errors or ruleset is None:
        raise ConfigError(errors or [Problem(str(rules_dir), 1, "no rules")])
    return ruleset


def read_ruleset(rules_dir: Path, content_dir: Path | None = None) -> tuple[Ruleset | None, list[Problem]]:
    files = sorted(rules_dir.glob("*.yaml")) + sorted(rules_dir.glob("*.yml"))
    if not files:
        return None, [Problem(f"{rules_dir.name}/", 1, "no rule files (*.yaml) in rules/")]
    problems: list[Problem] = []
    merged = Ruleset(stages=[], interactions={}, playbooks={}, triggers=[])
    stages_from: str | None = None
    for path in files:
        display = f"{rules_dir.name}/{path.name}"
        src, found = load_file(path, display)
        problems += found
        if src is None:
            continue
        if not isinstance(src.data, dict):
            problems.append(src.problem((), "a rule file must be a mapping that starts with `version: 1`"))
            continue
        if "version" not in src.data:
            problems.append(src.problem((), "`version: 1` is missing at the top of the file"))
            continue
        parsed, found = validate(src, RuleFile)
        problems += found
        if parsed is None:
            continue
        if parsed.stages is not None:
            if stages_from:
                problems.append(src.problem(("stages",), f"stages are already defined in {stages_from}"))
            else:
                stages_from, merged.stages = display, parsed.stages
                for i, st in enumerate(parsed.stages):
                    merged.where[("stage", st.id)] = (display, src.line(("stages", i)))
        if parsed.learning is not None:
            merged.learning = parsed.learning
        for name, inter in parsed.interactions.items():
            if name in merged.interactions:
                problems.append(src.problem(("interactions", name), f"interaction '{name}' is defined twice"))
            merged.interactions[name] = inter
            merged.where[("interaction", name)] = (display, src.line(("interactions", name)))
        for stage, steps in parsed.playbooks.items():
            if stage in merged.playbooks:
                problems.append(src.problem(("playbooks", stage), f"playbook '{stage}' is defined twice"))
                continue
            merged.playbooks[stage] = steps
            merged.where[("playbook", stage)] = (display, src.line(("playbooks", stage)))
            for i, step in enumerate(steps):
                for key in ("", "interaction", "content", "channel", "meeting"):
                    loc: tuple[str | int, ...] = ("playbooks", stage, i, key) if key else ("playbooks", stage, i)
                    merged.where[("step", stage, step.id, key)] = (display, src.line(loc))
        for i, tr in enumerate(parsed.triggers):
            merged.triggers.append(tr)
            for key in ("", "on", "if", "interaction", "content", "channel"):
                loc = ("triggers", i, key) if key else ("triggers", i)
                merged.where[("trigger", tr.id, key)] = (display, src.line(loc))
    if not merged.stages and not any(p.file.endswith(".yaml") and not p.warning for p in problems):
        problems.append(Problem(f"{rules_dir.name}/", 1, "no `stages:` in any rule file"))
    problems += _cross_check(merged)
    if content_dir is not None:
        from .content import check_rule_content

        problems += check_rule_content(merged, content_dir)
    return merged, problems


def _cross_check(rs: Ruleset) -> list[Problem]:
    from .content import compile_condition

    out: list[Problem] = []

    def at(key: tuple[str, ...], message: str) -> None:
        file, line = rs.where.get(key, ("rules/", 1))
        out.append(Problem(file, line, message))

    seen: set[str] = set()
    for st in rs.stages:
        if st.id in seen:
            at(("stage", st.id), f"stage '{st.id}' is listed twice")
        seen.add(st.id)
    if rs.stages and rs.stages[0].reached_by:
        at(("stage", rs.stages[0].id), f"the first stage '{rs.stages[0].id}' is where buyers start: "
           "it takes no `reached_by`")
    for st in rs.stages[1:]:
        if not st.reached_by:
            at(("stage", st.id), f"stage '{st.id}' has no `reached_by`: nobody could ever reach it")
    for stage, steps in rs.playbooks.items():
        if stage not in seen and rs.stages:
            at(("playbook", stage), f"playbook for unknown stage '{stage}'{_hint(stage, list(seen))}")
        ids: set[str] = set()
        for step in steps:
            if step.id in ids:
                at(("step", stage, step.id, ""), f"step id '{step.id}' is used twice in playbook '{stage}'")
            ids.add(step.id)
            _check_use(rs, ("step", stage, step.id), step.interaction, step.channel, step.meeting, at)
    tids: set[str] = set()
    for tr in rs.triggers:
        if tr.id in tids:
            at(("trigger", tr.id, ""), f"trigger id '{tr.id}' is used twice")
        tids.add(tr.id)
        _check_use(rs, ("trigger", tr.id), tr.interaction, tr.channel, tr.meeting, at)
        if tr.if_ is not None:
            try:
                compile_condition(tr.if_)
            except Exception as exc:
                at(("trigger", tr.id, "if"), f"triggers.{tr.id}.if does not compile: {exc}")
    return out


def _check_use(rs: Ruleset, key: tuple[str, ...], interaction: str, channel: str | None,
               meeting: Meeting | None, at: Any) -> None:
    name = ".".join(key[1:])
    inter = rs.interactions.get(interaction)
    if inter is None:
        at((*key, "interaction"), f"{name}: unknown interaction '{interaction}'"
           f"{_hint(interaction, list(rs.interactions))}")
        return
    channels = [channel] if channel else inter.channels
    if "meeting" in channels and meeting is None and channel == "meeting":
        at((*key, "meeting"), f"{name}: a meeting step needs `meeting: {{duration: ...}}`")


def _hint(word: str, choices: list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else f" (known: {', '.join(sorted(choices))})"


def where(rs: Ruleset, *key: str) -> tuple[str, int]:
    return rs.where.get(tuple(key), ("rules/", 1))

