"""`plan --dry-run`: what the rules would queue now, without writing; with `--rules OTHER_DIR`, how
another version of the rules differs (what would be queued that is not now, and the reverse), so that
a pull request can carry its effect on real contacts."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from outreach.checks.rules import load_checked
from outreach.engine import Engine
from outreach.errors import ConfigError, Problem
from outreach.planner import PlanResult
from outreach.project import Project
from outreach.ruleset import Ruleset

EXAMPLES = 3
STATUS_WORDS = {"approved": "goes out when due", "pending_approval": "waits for the owning rep to approve it",
                "suppressed": "no channel can reach the contact, or the contact is in the holdout (the reason "
                              "says why)"}
Row = tuple[int, str | None, str, str | None, str]  # contact id, address, rule/step, channel, status


def step_keys(rules: Ruleset) -> list[str]:
    return [f"playbook:{stage}/{step.id}" for stage, steps in rules.playbooks.items() for step in steps]


def _cadences(rules: Ruleset | None, keys: list[str]) -> list[dict[str, str]]:
    """Per step key: each cadence variant's wait after stage entry (`after: [2d, 4d]`), else {}."""
    steps = {f"playbook:{stage}/{st.id}": st for stage, sts in (rules.playbooks.items() if rules else ())
             for st in sts}
    return [{v: _span(st.arm(v)[1]) for v in st.variants} if (st := steps.get(k)) and st.afters else {}
            for k in keys]


def _span(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def summary(result: PlanResult, rules: Ruleset | None = None, now: datetime | None = None) -> dict[str, Any]:
    """Per rule and step: how many contacts, by which channels and statuses, and a few examples.
    With `rules`, every step of them is listed, the ones with nothing due too."""
    channels: dict[str, Counter[str]] = defaultdict(Counter)
    statuses: dict[str, Counter[str]] = defaultdict(Counter)
    for _, _, key, channel, status in result.rows:
        channels[key][channel or "none"] += 1
        statuses[key][status] += 1
    keys = step_keys(rules) if rules else []
    keys += sorted(k for k in result.by_step if k not in keys)
    out: dict[str, Any] = {
        "would_queue": result.queued,
        "by_status": dict(result.by_status),
        "by_channel": dict(result.by_channel),
        "steps": [{"rule": key, "contacts": result.by_step.get(key, 0), "channels": dict(channels[key]),
                   "statuses": dict(statuses[key]), "examples": result.examples.get(key, []),
                   **({"variants": dict(result.variants[key])} if key in result.variants else {})} for key in keys],
    }
    for step_out, cadence in zip(out["steps"], _cadences(rules, keys), strict=True):
        if cadence:
            step_out["cadence"] = cadence
    if now is not None:
        out["now"] = now.isoformat()
    if rules is not None:
        out["triggers"] = [{"rule": f"trigger:{t.id}", "on": t.on} for t in rules.triggers]
    return out


def dry_run(engine: Engine, now: datetime) -> tuple[dict[str, Any], list[Row]]:
    result = engine.plan(now, dry_run=True)
    return summary(result, engine.project.rules, now), result.rows


def other_engine(engine: Engine, other: Path) -> Engine:
    """An engine on the same database and settings with the rules of OTHER (a project folder or its
    rules/ folder) and, when OTHER has one, its content/."""
    rules_dir = other if other.name == "rules" or any(other.glob("*.yaml")) else other / "rules"
    if not rules_dir.is_dir():
        raise ConfigError([Problem(str(other), 1, "no rules here: give a project folder or its rules/ folder")])
    root = rules_dir.parent if (rules_dir.parent / "content").is_dir() else engine.project.path
    try:
        rules = load_checked(rules_dir, root / "content")
    except ConfigError as exc:  # name the other folder, not to be confused with the project's own files
        raise ConfigError([Problem(f"{rules_dir.parent / p.file}", p.line, p.message, p.warning)
                           for p in exc.problems]) from None
    return Engine(Project(root, engine.project.settings, rules))


def compare(engine: Engine, other_rules: Path, now: datetime) -> dict[str, Any]:
    """Dry-run the current rules and OTHER's on the same contacts; diff them touch by touch."""
    current, cur_rows = dry_run(engine, now)
    proposed, new_rows = dry_run(other_engine(engine, other_rules), now)
    cur = {(r[0], r[2]): r for r in cur_rows}
    new = {(r[0], r[2]): r for r in new_rows}
    changed = [(cur[k], new[k]) for k in sorted(cur.keys() & new.keys()) if cur[k][3:] != new[k][3:]]
    return {
        "now": now.isoformat(), "rules": str(other_rules), "current": current, "proposed": proposed,
        "only_proposed": _group([new[k] for k in sorted(new.keys() - cur.keys())]),
        "only_current": _group([cur[k] for k in sorted(cur.keys() - new.keys())]),
        "changed": _group([b for _, b in changed], {b[:3]: a for a, b in changed}),
    }


def _group(rows: list[Row], before: dict[tuple[Any, ...], Row] | None = None) -> list[dict[str, Any]]:
    """Rows per rule and step: how many contacts, and a few examples (with what they were before)."""
    by_key: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        by_key[row[2]].append(row)
    out = []
    for key, items in by_key.items():
        examples = []
        for r in items[:EXAMPLES]:
            example: dict[str, Any] = {"contact": r[1], "channel": r[3], "status": r[4]}
            if before is not None:
                was = before[r[:3]]
                example["was"] = {"channel": was[3], "status": was[4]}
            examples.append(example)
        out.append({"rule": key, "contacts": len(items), "examples": examples})
    return out


def _counts(counter: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counter.items(), key=lambda kv: -kv[1])) or "-"


def _example(e: dict[str, Any]) -> str:
    was = e.get("was")
    if was:
        return (f"{e['contact']} ({was['channel'] or 'none'}, {was['status']} -> "
                f"{e['channel'] or 'none'}, {e['status']})")
    return f"{e['contact']} ({e['channel'] or 'none'}, {e['status']})"


def text(data: dict[str, Any]) -> list[str]:
    """The dry run as a table a marketer can read."""
    when = data.get("now", "")[:16].replace("T", " ")
    lines = [f"If the planner ran now ({when} UTC), it would queue {data['would_queue']} touch(es). "
             "Nothing was written.", ""]
    width = max([len(s["rule"]) for s in data["steps"]] + [len("rule / step")])
    lines.append(f"{'rule / step':<{width}}  {'contacts':>8}  {'channels':<20}  statuses")
    for s in data["steps"]:
        lines.append(f"{s['rule']:<{width}}  {s['contacts']:>8}  {_counts(s.get('channels', {})):<20}  "
                     f"{_counts(s.get('statuses', {}))}")
        if s.get("variants"):  # an experiment's split (the holdout gets no touch)
            lines.append(f"{'':<{width}}  split: {_counts(s['variants'])}")
        if s.get("cadence"):  # cadence variants: each planned now, due this long after stage entry
            lines.append(f"{'':<{width}}  cadence: " + ", ".join(f"{v} after {a}" for v, a in s["cadence"].items()))
        if s["examples"]:
            lines.append(f"{'':<{width}}  for example: " + "; ".join(_example(e) for e in s["examples"]))
    shown = {status for s in data["steps"] for status in s.get("statuses", {})}
    legend = [f"{k}: {v}" for k, v in STATUS_WORDS.items() if k in shown]
    if legend:
        lines += ["", "Statuses: " + "; ".join(legend) + "."]
    if data.get("triggers"):
        lines += ["", "Triggers react to new evidence, so a dry run does not show them: " + ", ".join(
            f"{t['rule']} (on {t['on']})" for t in data["triggers"]) + "."]
    return lines


def compare_text(data: dict[str, Any]) -> list[str]:
    """Current rules against the proposed ones: the counts per step, then touch by touch."""
    cur = {s["rule"]: s["contacts"] for s in data["current"]["steps"]}
    new = {s["rule"]: s["contacts"] for s in data["proposed"]["steps"]}
    keys = [*cur, *(k for k in new if k not in cur)]
    width = max([len(k) for k in keys] + [len("rule / step")])
    when = data["now"][:16].replace("T", " ")
    lines = [f"The rules in {data['rules']} against the current ones, if the planner ran now ({when} UTC). "
             "Nothing was written.", "",
             f"{'rule / step':<{width}}  {'now':>6}  {'proposed':>8}  change"]
    for k in keys:
        a, b = cur.get(k, 0), new.get(k, 0)
        lines.append(f"{k:<{width}}  {a:>6}  {b:>8}  {f'{b - a:+d}' if a != b else ''}")
    lines.append(f"{'total':<{width}}  {data['current']['would_queue']:>6}  {data['proposed']['would_queue']:>8}")
    for title, key in (("Would be queued with the proposed rules, not with the current ones", "only_proposed"),
                       ("Would be queued with the current rules, not with the proposed ones", "only_current"),
                       ("Queued by both, but by another channel or status", "changed")):
        groups = data[key]
        total = sum(g["contacts"] for g in groups)
        lines += ["", f"{title}: {total if total else 'none'}"]
        for g in groups:
            lines.append(f"  {g['rule']}: {g['contacts']} contact(s), for example "
                         + "; ".join(_example(e) for e in g["examples"]))
    return lines
