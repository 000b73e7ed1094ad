"""A project folder (config.yaml, rules/, content/) opened: settings, rules, database engine."""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine

from outreach import db
from outreach.config import Settings, load_settings
from outreach.errors import ConfigError, Problem
from outreach.ruleset import Ruleset, load_ruleset, read_ruleset

log = logging.getLogger(__name__)


def project_dir(path: str | Path | None) -> Path:
    return Path(path or os.environ.get("OUTREACH_PROJECT") or ".").resolve()


@dataclass
class Project:
    path: Path
    settings: Settings
    rules: Ruleset
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def rules_dir(self) -> Path:
        return self.path / "rules"

    @property
    def content_dir(self) -> Path:
        return self.path / "content"

    @property
    def engine(self) -> Engine:
        return db.make_engine(self.settings.database)

    @classmethod
    def open(cls, path: str | Path | None = None, *, migrate: bool = True) -> Project:
        """Load and validate the project; raise ConfigError (every problem) if it is invalid."""
        root = project_dir(path)
        settings = load_settings(root)
        rules = load_ruleset(root / "rules", root / "content")
        project = cls(root, settings, rules)
        if migrate:
            db.migrate(settings.database)
        return project

    def reload_rules(self) -> list[Problem]:
        """Swap in the rules on disk if they validate; otherwise keep the last good ones."""
        try:
            rules = load_ruleset(self.rules_dir, self.content_dir)
        except ConfigError as exc:
            for p in exc.problems:
                log.error("rules not reloaded, keeping the last good ones: %s", p)
            return exc.problems
        with self._lock:
            self.rules = rules
        from outreach.content import environment

        environment.cache_clear()
        log.info("rules reloaded from %s", self.rules_dir)
        return []


def check_project(path: str | Path | None) -> list[Problem]:
    """Every problem (and warning) of config, rules, templates and rule tests, without touching the database."""
    root = project_dir(path)
    from outreach.config import Settings
    from outreach.content import check_samples, sample_context

    settings = Settings()
    try:
        settings = load_settings(root)
        problems: list[Problem] = []
    except ConfigError as exc:
        problems = list(exc.problems)
    if not (root / "rules").is_dir():
        problems.append(Problem("rules/", 1, "no rules/ folder"))
        return problems
    rules, found = read_ruleset(root / "rules", root / "content")
    stage = rules.stages[min(1, len(rules.stages) - 1)].id if rules and rules.stages else "aware"
    problems += found + check_samples(root / "content", sample_context(settings, stage))
    if rules is not None and not any(not p.warning for p in problems):  # the rule tests refer to valid rules
        from outreach.ruletests import load_scenarios, scenario_files

        project = Project(root, settings, rules)
        problems += load_scenarios(project, scenario_files(project))[1]
    return problems
