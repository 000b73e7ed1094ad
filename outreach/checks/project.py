"""The project as a whole: every problem of config, rules, templates and rule tests (`outreach check`),
and the checked way to open a project and to reload its rules."""

from __future__ import annotations

import logging
from pathlib import Path

from outreach.checks.rules import load_checked, read_checked
from outreach.checks.templates import check_samples
from outreach.config import Settings, load_settings
from outreach.context import sample_context
from outreach.errors import ConfigError, Problem
from outreach.project import Project, project_dir
from outreach.ruletests import load_scenarios, scenario_files
from outreach.templating import environment

log = logging.getLogger(__name__)


def open_project(path: str | Path | None = None, *, migrate: bool = True) -> Project:
    """Open a project whose rules pass every check (ConfigError listing the problems otherwise)."""
    return Project.open(path, migrate=migrate, load_rules=load_checked)


def reload_rules(project: Project) -> list[Problem]:
    """Swap in the rules on disk if they pass every check; otherwise keep the last good ones."""
    try:
        rules = load_checked(project.rules_dir, project.content_dir)
    except ConfigError as exc:
        for p in exc.problems:
            log.error("rules not reloaded, keeping the last good ones: %s", p)
        return exc.problems
    project.replace_rules(rules)
    environment.cache_clear()
    log.info("rules reloaded from %s", project.rules_dir)
    return []


def check_project(path: str | Path | None) -> list[Problem]:
    """Every problem (and warning) of config, rules, templates and rule tests, without touching the database."""
    root = project_dir(path)
    settings = Settings()
    try:
        settings = load_settings(root)
        problems: list[Problem] = []
    except ConfigError as exc:
        problems = list(exc.problems)
    if not (root / "rules").is_dir():
        problems.append(Problem("rules/", 1, "no rules/ folder"))
        return problems
    rules, found = read_checked(root / "rules", root / "content")
    stage = rules.stages[min(1, len(rules.stages) - 1)].id if rules and rules.stages else "aware"
    problems += found + check_samples(root / "content", sample_context(settings, stage))
    if rules is not None and not any(not p.warning for p in problems):  # the rule tests refer to valid rules
        project = Project(root, settings, rules)
        problems += load_scenarios(project, scenario_files(project))[1]
    return problems
