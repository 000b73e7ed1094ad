"""Stopping an experiment: record it (the planner then sends the promoted variant, or the control, to
everyone), and the change to make in the rules file, which stays the source of truth: printed, or
written in place with only the step's `content` and `experiment` lines changed."""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlmodel import Session

from outreach.checks.rules import read_checked
from outreach.config import OutboundWebhook
from outreach.errors import ConfigError, InvalidInput, NotFound
from outreach.experiments.conclude import announce_stop
from outreach.experiments.results import declared, stops
from outreach.models import ExperimentStop, utcnow
from outreach.ruleset import Ruleset


@dataclass(frozen=True)
class Edit:
    """The rules file's lines `first`..`last` (1-based, inclusive) become `new`."""

    file: str  # as the rules name it: rules/nurture.yaml
    first: int
    last: int
    old: list[str]
    new: list[str]

    def text(self) -> str:
        return "\n".join([f"{self.file}:{self.first}: replace", *(f"- {line}" for line in self.old),
                          "with", *(f"+ {line}" for line in self.new)])


def stop(session: Session, rules: Ruleset, exp_id: str, promote: str | None, actor: str) -> ExperimentStop:
    """Record the stop; a promoted content must be one of the experiment's variants."""
    exp = next((e for e in declared(rules) if e.id == exp_id), None)
    if exp is None:
        if exp_id in stops(session):
            raise InvalidInput(f"experiment '{exp_id}' is already stopped")
        known = ", ".join(e.id for e in declared(rules)) or "none"
        raise NotFound(f"no experiment '{exp_id}' in the rules (running: {known})")
    if promote is not None and promote not in exp.variants:
        raise InvalidInput(f"'{promote}' is not a variant of experiment '{exp_id}' ({', '.join(exp.variants)})")
    record = session.get(ExperimentStop, exp_id)
    if record is None:
        record = ExperimentStop(id=exp_id, rule=exp.rule, step=exp.step, metric=exp.metric,
                                allocation=exp.allocation, variants=list(exp.variants), stopped_by=actor,
                                within_seconds=int(exp.within.total_seconds()), min_sample=exp.min_sample)
    record.promoted = promote
    record.stopped_at = utcnow()
    session.add(record)
    session.flush()
    return record


def _extent(lines: list[str], index: int) -> int:
    """The last line index of the value of the key at lines[index]: the lines below it indented more
    than the key (or, for a block value, a list at the key's own indentation)."""
    prefix = re.match(r"^(\s*(?:-\s+)?)", lines[index])
    key_col = len(prefix.group(1)) if prefix else 0
    block = lines[index].split("#")[0].rstrip().endswith(":")
    end = index
    for j in range(index + 1, len(lines)):
        stripped = lines[j].strip()
        if not stripped or stripped.startswith("#"):
            continue
        col = len(lines[j]) - len(lines[j].lstrip(" "))
        if col > key_col or (block and col == key_col and stripped.startswith("- ")):
            end = j
            continue
        break
    return end


def rules_edit(root: Path, rules: Ruleset, exp_id: str, content: str) -> Edit:
    """The edit that makes the step send variant `content` alone: its `content:` line names the variant's
    content, its `after:` line (for cadence variants) the variant's wait, and the `experiment:` key
    (with the lines of its value) goes."""
    exp = next((e for e in declared(rules) if e.id == exp_id), None)
    if exp is None:
        raise NotFound(f"no experiment '{exp_id}' in the rules: nothing to change there")
    key = ("step", exp.stage, exp.step)
    step = next(st for st in rules.playbooks[exp.stage] if st.id == exp.step)
    chosen, wait = step.arm(content)
    (file, c_line), (_, e_line) = rules.where[(*key, "content")], rules.where[(*key, "experiment")]
    lines = (root / file).read_text(encoding="utf-8").splitlines()
    # key -> (first line index, last line index, its new line or None to remove it)
    spans: dict[str, tuple[int, int, str | None]] = {}
    for name, value in (("content", chosen), ("after", _span(wait) if step.afters else None),
                        ("experiment", None)):
        if name == "after" and value is None:
            continue
        where = rules.where.get((*key, name))
        if where is None or where[0] != file:
            raise InvalidInput(f"{file}:{c_line}: cannot find the step's `{name}`: edit it by hand")
        i = where[1] - 1
        at = re.match(rf"^(\s*(?:-\s+)?){name}:\s*", lines[i])
        if not at:
            raise InvalidInput(f"{file}:{c_line}: the step is not written one key per line: change `content` "
                               f"to {chosen}{f' and `after` to {value}' if name == 'after' else ''} and remove "
                               "`experiment` by hand")
        last = _extent(lines, i)
        comment = re.search(r"\s+#.*$", lines[i]) if last == i and value is not None else None
        spans[name] = (i, last, None if value is None else
                       f"{at.group(1)}{name}: {value}{comment.group(0) if comment else ''}")
    ordered = sorted(spans.values())
    if any(a[1] >= b[0] for a, b in itertools.pairwise(ordered)):
        raise InvalidInput(f"{file}:{c_line}: cannot tell `content` from `experiment`: edit them by hand")
    del e_line
    first, last = ordered[0][0], ordered[-1][1]
    new: list[str] = []
    i = first
    while i <= last:
        span = next((sp for sp in ordered if sp[0] == i), None)
        if span is None:
            new.append(lines[i])
            i += 1
            continue
        if span[2] is not None:
            new.append(span[2])
        i = span[1] + 1
    return Edit(file, first + 1, last + 1, lines[first:last + 1], new)


def _span(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def apply_edit(root: Path, edit: Edit) -> str:
    """Write the edit; returns the file's previous text (to put back if the result does not check)."""
    path = root / edit.file
    before = path.read_text(encoding="utf-8")
    lines = before.splitlines()
    lines[edit.first - 1:edit.last] = edit.new
    path.write_text("\n".join(lines) + ("\n" if before.endswith("\n") else ""), encoding="utf-8")
    return before


@dataclass(frozen=True)
class Stopped:
    content: str  # what the step sends to everyone from now on
    promoted: bool
    edit: Edit | None  # the change to make in the rules file (None: made by hand, see note)
    written: bool
    note: str | None = None


def stop_experiment(session: Session, rules: Ruleset, root: Path, exp_id: str, promote: str | None,
                    write: bool, actor: str, receivers: Sequence[OutboundWebhook] = ()) -> Stopped:
    """Stop (and promote), and the rules change: printed, or with `write` made, checked, and put back if
    the rules would no longer pass `outreach check` (ConfigError says why). The CLI and the page call it;
    `receivers` get `experiment.concluded` (queued in the caller's transaction, gone if it rolls back)."""
    exp = next((e for e in declared(rules) if e.id == exp_id), None)
    content = promote or (exp.variants[0] if exp else "")
    edit, note = None, None
    if exp is not None and content:
        try:
            edit = rules_edit(root, rules, exp_id, content)
        except InvalidInput as exc:
            if write:
                raise
            note = str(exc)
    record = stop(session, rules, exp_id, promote, actor)
    announce_stop(session, rules, receivers, record, record.stopped_at)
    if not write or edit is None:
        return Stopped(content, promote is not None, edit, False, note)
    before = apply_edit(root, edit)
    problems = [p for p in read_checked(root / "rules", root / "content")[1] if not p.warning]
    if problems:  # never leave the rules broken
        (root / edit.file).write_text(before, encoding="utf-8")
        raise ConfigError(problems)
    return Stopped(content, promote is not None, edit, True, note)
