"""`plan --dry-run`: what the rules would queue now, and how another version of them differs."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from .planner import PlanResult


def summary(result: PlanResult) -> dict[str, Any]:
    return {
        "would_queue": result.queued,
        "by_status": dict(result.by_status),
        "by_channel": dict(result.by_channel),
        "steps": [{"rule": key, "contacts": n, "examples": result.examples.get(key, [])}
                  for key, n in sorted(result.by_step.items())],
    }


def compare(engine: Any, other_rules: Path, now: datetime) -> dict[str, Any]:
    """Dry-run the current rules and OTHER_DIR's rules on the same contacts and compare per step."""
    from .engine import Engine
    from .project import Project
    from .ruleset import load_ruleset

    rules_dir = other_rules if other_rules.name == "rules" or any(other_rules.glob("*.yaml")) \
        else other_rules / "rules"
    content = rules_dir.parent / "content"
    candidate_rules = load_ruleset(rules_dir, content if content.is_dir() else engine.project.content_dir)
    current = summary(engine.plan(now, dry_run=True))
    other = Engine(Project(content.parent if content.is_dir() else engine.project.path,
                           engine.project.settings, candidate_rules))
    proposed = summary(other.plan(now, dry_run=True))
    cur = {s["rule"]: s["contacts"] for s in current["steps"]}
    new = {s["rule"]: s["contacts"] for s in proposed["steps"]}
    return {
        "current": current, "proposed": proposed,
        "only_proposed": {k: v for k, v in new.items() if k not in cur},
        "only_current": {k: v for k, v in cur.items() if k not in new},
        "changed": {k: {"current": cur[k], "proposed": new[k]} for k in cur.keys() & new.keys()
                    if cur[k] != new[k]},
    }
