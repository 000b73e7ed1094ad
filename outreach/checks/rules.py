"""Cross-checks of the merged rules: stages, interactions, steps and triggers that refer to each
other, the `if:` expressions, and event names. Each problem points at the line of the key at fault."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from jinja2 import TemplateSyntaxError, meta

from outreach.checks.templates import check_rule_content
from outreach.errors import ConfigError, Problem
from outreach.kinds import TASK_CHANNELS, TASK_OUTCOMES, Channel
from outreach.located_yaml import did_you_mean
from outreach.ruleset import Meeting, Ruleset, Step, dedupe, read_ruleset
from outreach.templating import compile_condition, environment

# SPEC section 9: the provider events. Any other dotted name may come from a website or CRM, so an
# unknown event is only worth a warning when it looks like a typo of one of these.
KNOWN_EVENTS = frozenset({
    "email.delivered", "email.opened", "email.clicked", "email.replied", "email.bounced", "email.complained",
    "email.unsubscribed", "email.resubscribed", "sms.delivered", "sms.failed", "sms.replied", "sms.opted_out",
    "sms.opted_in", "meeting.accepted", "meeting.declined", "meeting.tentative", "meeting.countered",
    *(f"{channel}.{outcome}" for channel, outs in TASK_OUTCOMES.items() for outcome in outs)})
CONDITION_NAMES = ("contact", "evidence", "now")

At = Callable[..., None]


def read_checked(rules_dir: Path, content_dir: Path | None = None) -> tuple[Ruleset | None, list[Problem]]:
    """The rules parsed and cross-checked (and held against content/ when given), with every problem."""
    rules, problems = read_ruleset(rules_dir)
    if rules is not None:
        problems += cross_check(rules)
        if content_dir is not None:
            problems += check_rule_content(rules, content_dir)
    return rules, dedupe(problems)


def load_checked(rules_dir: Path, content_dir: Path | None = None) -> Ruleset:
    """The rules, if they have no errors (warnings pass); else ConfigError listing every error."""
    rules, problems = read_checked(rules_dir, content_dir)
    errors = [p for p in problems if not p.warning]
    if errors or rules is None:
        raise ConfigError(errors or [Problem(f"{rules_dir.name}/", 1, "no rules")])
    return rules


def cross_check(rs: Ruleset) -> list[Problem]:
    out: list[Problem] = []
    broken = rs.broken

    def at(key: tuple[str, ...], message: str, warning: bool = False) -> None:
        k = key
        while k and k not in rs.where:
            k = k[:-1]
        file, line = rs.where.get(k, ("rules/", 1))
        out.append(Problem(file, line, message, warning))

    _check_stages(rs, broken, at)
    stage_ids = set(rs.stage_ids)
    experiments: dict[str, str] = {}  # experiment id -> the step that declares it
    for stage, steps in rs.playbooks.items():
        if rs.stages and stage not in stage_ids and ("stage", stage) not in broken:
            at(("playbook", stage), f"playbooks.{stage}: there is no stage '{stage}'{_hint(stage, rs.stage_ids)}")
        ids: set[str] = set()
        for step in steps:
            key: tuple[str, ...] = ("step", stage, step.id)
            if step.id in ids:
                at((*key, "id"), f"playbooks.{stage}: step id '{step.id}' is used twice: give each step its own id")
            ids.add(step.id)
            _check_use(rs, key, f"playbooks.{stage}.{step.id}", step.interaction, step.channel, step.meeting,
                       broken, at)
            for event in step.skip_if:
                _check_event(event, (*key, "skip_if"), at)
            _check_experiment(step, key, f"playbooks.{stage}.{step.id}", experiments, at)
            _check_targets(rs, key, f"playbooks.{stage}.{step.id}", step.role, step.account_stage, at)
            _check_attendees(rs, key, f"playbooks.{stage}.{step.id}", step.meeting, at)
    tids: set[str] = set()
    for tr in rs.triggers:
        key = ("trigger", tr.id)
        if tr.id in tids:
            at((*key, "id"), f"triggers: trigger id '{tr.id}' is used twice: give each trigger its own id")
        tids.add(tr.id)
        _check_use(rs, key, f"triggers.{tr.id}", tr.interaction, tr.channel, tr.meeting, broken, at)
        _check_event(tr.on, (*key, "on"), at)
        _check_attendees(rs, key, f"triggers.{tr.id}", tr.meeting, at)
        if tr.within is not None and tr.within <= tr.after:
            at((*key, "within"), f"triggers.{tr.id}: `within` must be longer than `after`, or the touch "
               "always expires before it is due")
        if tr.if_ is not None:
            message = condition_problem(tr.if_)
            if message:
                at((*key, "if"), f"triggers.{tr.id}.if {message}")
    _check_accounts(rs, at)
    return out


def _check_experiment(step: Step, key: tuple[str, ...], name: str, seen: dict[str, str], at: At) -> None:
    """Variants and their experiment go together; an experiment's id is unique across the rules."""
    exp = step.experiment
    if step.afters and exp is None:
        at((*key, "after"), f"{name}: `after` lists {len(step.afters)} cadence variants but the step has no "
           "`experiment: {id: ..., metric: stage_advance}`: add one so the split is measured")
        return
    if len(set(step.afters)) != len(step.afters) and len(set(step.contents)) < len(step.variants):
        at((*key, "after"), f"{name}: two cadence variants wait the same time: give each its own `after`")
    if step.variants and exp is None:
        at((*key, "content"), f"{name}: `content` lists {len(step.variants)} variants but the step has no "
           "`experiment: {id: ..., metric: stage_advance}`: add one so the split is measured")
    if exp is None:
        return
    if not step.variants:
        at((*key, "experiment"), f"{name}: an experiment needs content variants: write `content: [{step.content}, "
           "other/content]`")
    if len(set(step.variants)) != len(step.variants):
        at((*key, "content"), f"{name}: a content variant is listed twice")
    if exp.weights is not None and len(exp.weights) != len(step.variants):
        at((*key, "experiment"), f"{name}: experiment '{exp.id}' has {len(exp.weights)} weights for "
           f"{len(step.variants)} variants: give one weight per variant")
    if exp.weights is not None and exp.allocation == "adaptive":
        at((*key, "experiment"), f"{name}: `weights` only apply to `allocation: fixed` (adaptive sets its own)",
           warning=True)
    if exp.id in seen:
        at((*key, "experiment"), f"{name}: experiment id '{exp.id}' is already used by {seen[exp.id]}: "
           "give each experiment its own id")
    else:
        seen[exp.id] = name
def _check_targets(rs: Ruleset, key: tuple[str, ...], name: str, roles: list[str], account_stages: list[str],
                   at: At) -> None:
    """A step's `role` and `account_stage` name a committee role and a stage that exist."""
    known_roles = rs.accounts.roles
    for role in roles:
        if role not in known_roles:
            at((*key, "role"), f"{name}.role: '{role}' is not a committee role{_hint(role, known_roles)}")
    for stage in account_stages:
        if rs.stages and stage not in rs.stage_ids:
            at((*key, "account_stage"), f"{name}.account_stage: there is no stage '{stage}'"
               f"{_hint(stage, rs.stage_ids)}")


def _check_attendees(rs: Ruleset, key: tuple[str, ...], name: str, meeting: Meeting | None, at: At) -> None:
    """A meeting's `attendees` name committee roles and experts of the `accounts:` section."""
    want = meeting.attendees if meeting is not None else None
    if want is None:
        return
    for role in want.roles:
        if role not in rs.accounts.roles:
            at((*key, "meeting"), f"{name}.meeting.attendees: '{role}' is not a committee role"
               f"{_hint(role, rs.accounts.roles)}")
    experts = sorted(rs.accounts.experts)
    for expert in want.experts:
        if expert not in rs.accounts.experts:
            at((*key, "meeting"), f"{name}.meeting.attendees: no expert '{expert}' under accounts: experts:"
               f"{_hint(expert, experts) if experts else ' (name them there: solutions_engineer: sam@example.com)'}")


def _check_accounts(rs: Ruleset, at: At) -> None:
    """The `accounts:` stages name stages and roles that exist."""
    roles = rs.accounts.roles
    for i, rule in enumerate(rs.accounts.stages):
        key = ("account_stage", str(i))
        need = rule.when.need
        for stage in (rule.stage, need.stage):
            if rs.stages and stage not in rs.stage_ids:
                at(key, f"accounts.stages[{i}]: there is no stage '{stage}'{_hint(stage, rs.stage_ids)}")
        if need.role and need.role not in roles:
            at(key, f"accounts.stages[{i}]: '{need.role}' is not a committee role{_hint(need.role, roles)}")
    for event in rs.accounts.pause.after:
        _check_event(event, ("accounts",), at)


def _check_stages(rs: Ruleset, broken: set[tuple[str, str]], at: At) -> None:
    seen: set[str] = set()
    for st in rs.stages:
        if st.id in seen:
            at(("stage", st.id, "id"), f"stages: stage '{st.id}' is listed twice")
        seen.add(st.id)
        for j, cond in enumerate(st.reached_by):
            _check_event(cond.event, ("reached_by", st.id, str(j)), at)
            if cond.within is not None and cond.count == 1:
                at(("reached_by", st.id, str(j)), f"stages.{st.id}.reached_by: `within` counts from the first "
                   f"of `count` events; with count 1 it does nothing", warning=True)
    if not rs.stages or ("stages", "*") in broken:
        return  # the order is not known when a stage did not validate
    first = rs.stages[0]
    if first.reached_by:
        at(("stage", first.id, "reached_by"), f"stages: the first stage '{first.id}' is where buyers start: "
           "it takes no `reached_by`")
    for st in rs.stages[1:]:
        if not st.reached_by:
            at(("stage", st.id), f"stages: stage '{st.id}' has no `reached_by`: nobody could ever reach it")
    # next_stage picks the furthest stage proven, so a condition that a later stage repeats is dead
    for i, st in enumerate(rs.stages):
        for j, cond in enumerate(st.reached_by):
            later = next((s for s in rs.stages[i + 1:] if cond in s.reached_by), None)
            if later is not None:
                at(("reached_by", st.id, str(j)), f"stages.{st.id}.reached_by: {cond.event} also proves the "
                   f"later stage '{later.id}', so it never leads to '{st.id}'", warning=True)


def _check_use(rs: Ruleset, key: tuple[str, ...], name: str, interaction: str, channel: str | None,
               meeting: Meeting | None, broken: set[tuple[str, str]], at: At) -> None:
    inter = rs.interactions.get(interaction)
    if inter is None:
        if ("interaction", interaction) not in broken:
            at((*key, "interaction"), f"{name}: unknown interaction '{interaction}'"
               f"{_hint(interaction, list(rs.interactions))}")
        return
    if channel in TASK_CHANNELS:  # a rep's task: a step's own channel, never an interaction's
        if name.startswith("triggers."):
            at((*key, "channel"), f"{name}: a {channel} is a task for a rep, set on a playbook step; a trigger "
               "sends a message (email, sms or meeting)")
        if meeting is not None:
            at((*key, "meeting"), f"{name}: a {channel} task cannot also be a meeting invite")
        return
    if channel and channel not in inter.channels:
        at((*key, "channel"), f"{name}: channel '{channel}' is not one of interaction '{interaction}''s channels "
           f"({', '.join(inter.channels)})")
        return
    if channel == Channel.MEETING and meeting is None:
        at((*key, "channel"), f"{name}: a meeting step needs `meeting: {{duration: ...}}`")
    if meeting is not None and Channel.MEETING not in ([channel] if channel else inter.channels):
        at((*key, "meeting"), f"{name}: `meeting` is set but this step never uses the meeting channel",
           warning=True)


def _check_event(event: str, key: tuple[str, ...], at: At) -> None:
    if event in KNOWN_EVENTS:
        return
    hint = did_you_mean(event, sorted(KNOWN_EVENTS))
    if hint:
        at(key, f"'{event}' is not an event the providers send{hint}", warning=True)


def condition_problem(expression: str) -> str | None:
    """Why an `if:` expression is wrong (does not compile, or uses a name it cannot see), or None."""
    env = environment()
    try:
        compile_condition(expression)
        names = meta.find_undeclared_variables(env.parse("{{ (" + expression + ") }}"))
    except TemplateSyntaxError as exc:
        return f"does not compile: {exc.message}"
    except Exception as exc:  # the sandbox's own checks
        return f"does not compile: {exc}"
    unknown = sorted(n for n in names if n not in CONDITION_NAMES and n not in env.globals)
    if unknown:
        return (f"uses '{unknown[0]}', which it cannot see{_hint(unknown[0], list(CONDITION_NAMES))} "
                f"(an `if:` sees {', '.join(CONDITION_NAMES)})")
    return None


def _hint(word: str, choices: list[str]) -> str:
    return did_you_mean(word, choices) or (f" (known: {', '.join(sorted(set(choices)))})" if choices else "")
