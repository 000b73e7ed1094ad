"""rules/*.yaml -> one validated, typed Ruleset. Every problem is reported as FILE:LINE: message.

Each stage, interaction, step and trigger is validated on its own, so that one broken step does not
hide the problems of the others: `outreach check` reports them all at once."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from outreach.accounts.rules import AccountRules, Attendees, without_section
from outreach.durations import parse_duration
from outreach.errors import ConfigError, Problem
from outreach.kinds import TASK_CHANNELS, Channel
from outreach.located_yaml import Located, load_file, validate

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
_EVENT = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
_CONTENT = re.compile(r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$")


def _check_id(v: str) -> str:
    if not _ID.match(v):
        raise ValueError(f"'{v}' is not an id: use letters, digits, - and _ (like welcome-email)")
    return v


def _check_event(v: str) -> str:
    if not _EVENT.match(v):
        raise ValueError(f"'{v}' is not an event name: events are dotted lowercase names like email.clicked "
                         "or pricing.viewed")
    return v


def _check_content(v: str) -> str:
    if not _CONTENT.match(v):
        key = re.sub(r"(\.(email|sms|meeting))?\.j2$", "", v.removeprefix("content/"))
        hint = f" (write '{key}': the channel and .j2 are added by the engine)" if key != v and \
            _CONTENT.match(key) else " (write it like aware/welcome for content/aware/welcome.email.j2)"
        raise ValueError(f"'{v}' is not a content key{hint}")
    return v


MAX_DURATION = timedelta(days=3650)


def bounded_duration(v: Any) -> timedelta:
    """A duration, at most about ten years: further than that is a typo, and dates overflow."""
    try:
        delta = parse_duration(v)
    except OverflowError:
        delta = MAX_DURATION * 2
    if delta > MAX_DURATION:
        raise ValueError(f"'{v}' is too long (at most 3650d, about ten years)")
    return delta


def _one_or_many(v: Any) -> Any:
    return [v] if isinstance(v, str) else v


Duration = Annotated[timedelta, BeforeValidator(bounded_duration)]
Id = Annotated[str, AfterValidator(_check_id)]
Event = Annotated[str, AfterValidator(_check_event)]
ContentKey = Annotated[str, AfterValidator(_check_content)]
Approval = Literal["auto", "rep"]
# When the contact's account is paused (another member answered): wait with the others, or go anyway.
AccountPause = Literal["wait", "ignore"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Condition(Strict):
    """`event` seen `count` times within `within` (plain events: once, ever)."""

    event: Event
    count: int = Field(default=1, ge=1)
    within: Duration | None = None


def _condition(v: Any) -> Any:
    return {"event": v} if isinstance(v, str) else v


class Stage(Strict):
    id: Id
    reached_by: Annotated[list[Annotated[Condition, BeforeValidator(_condition)]], BeforeValidator(_one_or_many)] = []


def _unique(v: list[str]) -> list[str]:
    if len(set(v)) != len(v):
        raise ValueError("a channel is listed twice")
    return v


def _no_tasks(v: list[str]) -> list[str]:
    tasks = [c for c in v if c in TASK_CHANNELS]
    if tasks:
        raise ValueError(f"{tasks[0]} is a task a rep does by hand: set it on a playbook step "
                         f"(`channel: {tasks[0]}`), not among an interaction's channels")
    return v


class Interaction(Strict):
    channels: Annotated[list[Channel], Field(min_length=1), AfterValidator(_unique), AfterValidator(_no_tasks)]


def _positive(v: timedelta) -> timedelta:
    if v <= timedelta(0):
        raise ValueError("a meeting must last longer than 0 minutes")
    return v


class Meeting(Strict):
    duration: Annotated[Duration, AfterValidator(_positive)] = timedelta(minutes=30)
    attendees: Attendees | None = None  # more of the account, and the seller's experts


class Experiment(Strict):
    """A step's content variants put to the test (see docs/RULES.md, "Experiments")."""

    id: Id
    metric: Literal["stage_advance", "response"] = "stage_advance"
    within: Duration = timedelta(days=14)
    allocation: Literal["fixed", "adaptive"] = "fixed"
    weights: list[Annotated[float, Field(gt=0)]] | None = None  # fixed split; default: equal
    min_sample: int = Field(default=100, ge=1)  # contacts per variant before any verdict
    start: date | None = None  # before this day (UTC) the step sends the first variant to everyone
    seed: int = 0
    segment_by: Literal["title", "company", "owner", "timezone"] | None = None  # adaptive: per value of it too


def _variants(data: Any) -> Any:
    """`content: [a, b]` -> content a (the control) and variants (a, b): every reader of `content`
    keeps seeing one key, and only the experiment code looks at the others. `after: [2d, 4d]` ->
    cadence variants: paired with content variants (same count), or alone, named `CONTENT@AFTER`."""
    if isinstance(data, dict) and "variants" in data:
        raise ValueError("write the variants as `content: [first, second]`, not `variants:`")
    if isinstance(data, dict) and "afters" in data:
        raise ValueError("write cadence variants as `after: [2d, 4d]`")
    if isinstance(data, dict) and isinstance(data.get("after"), list):
        afters = data["after"]
        if len(afters) < 2:
            raise ValueError("`after` lists fewer than two cadence variants: write one duration")
        data = {**_variants({k: v for k, v in data.items() if k != "after"}), "after": afters[0], "afters": afters}
        if data.get("variants"):
            if len(data["variants"]) != len(afters):
                raise ValueError(f"`content` lists {len(data['variants'])} variants and `after` {len(afters)}: "
                                 "give one `after` per content variant (they are paired), or one content")
        else:
            data["variants"] = [f"{data.get('content')}@{str(a).strip()}" for a in afters]
        return data
    if isinstance(data, dict) and isinstance(data.get("content"), list):
        variants = data["content"]
        if len(variants) < 2:
            raise ValueError("`content` lists fewer than two variants: write one content key")
        for i, key in enumerate(variants):
            try:
                _check_content(key if isinstance(key, str) else "")
            except ValueError as exc:
                raise ValueError(f"content variant {i + 1}: {exc}") from None
        return {**data, "content": variants[0], "variants": variants}
    return data


class Step(Strict):
    id: Id
    after: Duration = timedelta(0)
    interaction: str
    content: ContentKey
    variants: tuple[str, ...] = ()  # from `content: [...]` (the first is `content`) or `after: [...]`
    afters: tuple[Duration, ...] = ()  # cadence variants, one per variant (the first is `after`)
    experiment: Experiment | None = None
    approval: Approval = "auto"
    channel: Channel | None = None
    skip_if: Annotated[list[Event], BeforeValidator(_one_or_many)] = []
    meeting: Meeting | None = None
    # only for contacts in one of these committee roles / whose account is at one of these stages
    role: Annotated[list[str], BeforeValidator(_one_or_many)] = []
    account_stage: Annotated[list[str], BeforeValidator(_one_or_many)] = []
    account_pause: AccountPause = "wait"

    _split = model_validator(mode="before")(_variants)

    @property
    def contents(self) -> tuple[str, ...]:
        """Every content key this step may send: its variants', or its one content."""
        return tuple(dict.fromkeys(self.arm(v)[0] for v in self.variants)) or (self.content,)

    @property
    def earliest(self) -> timedelta:
        """When the step is first due after stage entry: the shortest cadence variant's `after`."""
        return min(self.afters) if self.afters else self.after

    def arm(self, variant: str | None) -> tuple[str, timedelta]:
        """(content, after) of a variant; the control's for None or a name that is not a variant."""
        if variant is None or variant not in self.variants:
            return self.content, self.after
        i = self.variants.index(variant)
        after = self.afters[i] if self.afters else self.after
        return (self.content if self.afters and variant.startswith(f"{self.content}@") else variant), after


class Trigger(Strict):
    id: Id
    on: Event
    if_: str | None = Field(default=None, alias="if")
    interaction: str
    content: ContentKey
    approval: Approval = "auto"
    channel: Channel | None = None
    within: Duration | None = None
    after: Duration = timedelta(0)
    meeting: Meeting | None = None
    account_pause: AccountPause = "wait"


class Learning(Strict):
    """What channel learning may use: attributes that make buyers alike, and how much to explore."""

    similar_by: list[str] = ["title"]
    explore: float = Field(default=0.05, ge=0, le=0.5)


class RuleFile(Strict):
    """The top level of a rule file; its sections are validated item by item (see _read_file)."""

    version: Any = None
    stages: list[Any] | None = None
    interactions: dict[str, Any] = {}
    playbooks: dict[str, list[Any]] = {}
    triggers: list[Any] = []
    learning: Any = None
    accounts: Any = None


@dataclass
class Ruleset:
    """All rule files merged. `where` maps ("step", stage, id, key) and friends to (file, line)."""

    stages: list[Stage]
    interactions: dict[str, Interaction]
    playbooks: dict[str, list[Step]]
    triggers: list[Trigger]
    learning: Learning = field(default_factory=Learning)
    accounts: AccountRules = field(default_factory=without_section)
    where: dict[tuple[str, ...], tuple[str, int]] = field(default_factory=dict)
    # items that did not validate, such as ("stage", id) or ("stages", "*"): their problem is reported
    # once, so the cross-checks do not report them again as unknown
    broken: set[tuple[str, str]] = field(default_factory=set)

    @property
    def stage_ids(self) -> list[str]:
        return [s.id for s in self.stages]

    def stage_rank(self, stage: str) -> int:
        ids = self.stage_ids
        return ids.index(stage) if stage in ids else -1

    @property
    def first_stage(self) -> str:
        return self.stages[0].id

    @property
    def account_rule_at(self) -> list[str]:
        """FILE:LINE of each `accounts.stages` rule, for the proof an account keeps."""
        return [":".join(map(str, self.where.get(("account_stage", str(i)), ("rules/", 1))))
                for i in range(len(self.accounts.stages))]

    def step(self, stage: str, step_id: str) -> Step | None:
        return next((s for s in self.playbooks.get(stage, []) if s.id == step_id), None)

    def trigger(self, trigger_id: str) -> Trigger | None:
        return next((t for t in self.triggers if t.id == trigger_id), None)


def load_ruleset(rules_dir: Path) -> Ruleset:
    """Parse every rules/*.yaml; raise ConfigError listing all problems. Parsing only: what refers to
    what is checked by outreach.checks, which `check`, `run` and every command that acts go through."""
    ruleset, problems = read_ruleset(rules_dir)
    errors = [p for p in problems if not p.warning]
    if errors or ruleset is None:
        raise ConfigError(errors or [Problem(f"{rules_dir.name}/", 1, "no rules")])
    return ruleset


def read_ruleset(rules_dir: Path) -> tuple[Ruleset | None, list[Problem]]:
    """Every rule file parsed: the merged rules (what validated) and every problem."""
    files = sorted(rules_dir.glob("*.yaml")) + sorted(rules_dir.glob("*.yml"))
    if not files:
        return None, [Problem(f"{rules_dir.name}/", 1, "no rule files (*.yaml) in rules/")]
    problems: list[Problem] = []
    merged = Ruleset(stages=[], interactions={}, playbooks={}, triggers=[])
    broken = merged.broken
    for path in files:
        src, found = load_file(path, f"{rules_dir.name}/{path.name}")
        problems += found
        if src is None or not isinstance(src.data, dict) or src.data.get("version", 1) != 1:
            broken.add(("stages", "*"))  # the stages may be in the file that could not be read
        if src is not None:
            problems += _read_file(src, merged, broken)
    if not merged.stages and ("stages", "*") not in broken:
        problems.append(Problem(f"{rules_dir.name}/", 1, "no `stages:` in any rule file: list the buying "
                                "stages in one of them"))
    return merged, dedupe(problems)


def dedupe(problems: list[Problem]) -> list[Problem]:
    """The problems in their order, each once."""
    return list(dict.fromkeys(problems))


def _read_file(src: Located, rs: Ruleset, broken: set[tuple[str, str]]) -> list[Problem]:
    """Validate one file's sections item by item and merge the good items into `rs`."""
    data = src.data
    if data is None:
        return [src.problem((), "the file is empty: a rule file starts with `version: 1`")]
    if not isinstance(data, dict):
        return [src.problem((), "a rule file must be a mapping (version:, stages:, interactions:, playbooks:, "
                                "triggers:), not a list or text")]
    out: list[Problem] = []
    version = data.get("version")
    if "version" not in data:
        out.append(Problem(src.file, 1, "`version: 1` is missing at the top of the file"))
    elif version != 1 or isinstance(version, bool):
        return [src.problem(("version",), f"version {version!r} is not supported: this engine reads `version: 1`")]
    out += validate(src, RuleFile)[1]
    stages = data.get("stages")
    if isinstance(stages, list):
        if ("stages",) in rs.where:
            file, line = rs.where[("stages",)]
            out.append(src.problem(("stages",), f"stages are already defined in {file} (line {line}): "
                                   "the buying stages are listed once, in one file"))
        else:
            rs.where[("stages",)] = (src.file, src.line(("stages",)))
            for i in range(len(stages)):
                stage, found = validate(src, Stage, at=("stages", i))
                out += found
                if stage is None:
                    broken.update({("stages", "*"), ("stage", str(_raw_id(stages[i])))})
                    continue
                rs.stages.append(stage)
                _remember(rs, src, ("stages", i), ("stage", stage.id))
                for j in range(len(stage.reached_by)):
                    rs.where[("reached_by", stage.id, str(j))] = (src.file, src.line(("stages", i, "reached_by", j)))
    elif stages is not None:
        broken.add(("stages", "*"))
    for name, _ in (data.get("interactions") or {}).items() if isinstance(data.get("interactions"), dict) else []:
        inter, found = validate(src, Interaction, at=("interactions", name))
        out += found
        if name in rs.interactions:
            out.append(src.problem(("interactions", name), f"interaction '{name}' is defined twice (also in "
                                   f"{':'.join(map(str, rs.where[('interaction', name)]))})"))
        if inter is None:
            broken.add(("interaction", name))
            continue
        rs.interactions[name] = inter
        _remember(rs, src, ("interactions", name), ("interaction", name))
    playbooks = data.get("playbooks")
    for stage_id, steps in playbooks.items() if isinstance(playbooks, dict) else []:
        if stage_id in rs.playbooks:
            file, line = rs.where[("playbook", stage_id)]
            out.append(src.problem(("playbooks", stage_id), f"the playbook of stage '{stage_id}' is defined twice "
                                   f"(also in {file}:{line}): keep one"))
            continue
        if not isinstance(steps, list):
            continue
        rs.playbooks[stage_id] = []
        rs.where[("playbook", stage_id)] = (src.file, src.line(("playbooks", stage_id)))
        for i in range(len(steps)):
            step, found = validate(src, Step, at=("playbooks", stage_id, i))
            out += found
            if step is not None:
                rs.playbooks[stage_id].append(step)
                _remember(rs, src, ("playbooks", stage_id, i), ("step", stage_id, step.id))
    triggers = data.get("triggers")
    for i in range(len(triggers)) if isinstance(triggers, list) else []:
        trigger, found = validate(src, Trigger, at=("triggers", i))
        out += found
        if trigger is not None:
            rs.triggers.append(trigger)
            _remember(rs, src, ("triggers", i), ("trigger", trigger.id))
    if data.get("learning") is not None:
        learning, found = validate(src, Learning, at=("learning",))
        out += found
        rs.learning = learning or rs.learning
    if data.get("accounts") is not None:
        if ("accounts",) in rs.where:
            file, line = rs.where[("accounts",)]
            out.append(src.problem(("accounts",), f"accounts: is already defined in {file} (line {line}): keep one"))
        else:
            accounts, found = validate(src, AccountRules, at=("accounts",))
            out += found
            rs.where[("accounts",)] = (src.file, src.line(("accounts",)))
            for i in range(len(accounts.stages) if accounts else 0):
                rs.where[("account_stage", str(i))] = (src.file, src.line(("accounts", "stages", i)))
            rs.accounts = accounts or rs.accounts
    return out


def _raw_id(item: Any) -> Any:
    return item.get("id") if isinstance(item, dict) else None


def _remember(rs: Ruleset, src: Located, loc: tuple[str | int, ...], key: tuple[str, ...]) -> None:
    """Where an item and each of its keys stand, for cross-check messages."""
    rs.where[(*key, "")] = rs.where[key] = (src.file, src.line(loc))
    item = src.get(loc)
    for name in item if isinstance(item, dict) else []:
        rs.where[(*key, str(name))] = (src.file, src.line((*loc, name)))
