"""A project folder (config.yaml, rules/, content/) opened: settings, rules, database engine."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine

from outreach import db
from outreach.config import Settings, load_settings
from outreach.ruleset import Ruleset, load_ruleset

RulesLoader = Callable[[Path, Path], Ruleset]  # (rules/, content/) -> the rules

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

    @property
    def replica(self) -> Engine | None:
        """The read-only engine on `database_replica`, or None when it is not set."""
        url = self.settings.database_replica
        return db.make_engine(url, read_only=True) if url else None

    @classmethod
    def open(cls, path: str | Path | None = None, *, migrate: bool = True,
             load_rules: RulesLoader | None = None) -> Project:
        """Open the project folder: settings, rules, and (with `migrate`) the database brought up to date.
        Raise ConfigError (every problem) if settings or rules do not parse. The rules are only parsed
        unless `load_rules` checks them: outreach.checks.project.open_project is the checked way in."""
        root = project_dir(path)
        settings = load_settings(root)
        rules = load_rules(root / "rules", root / "content") if load_rules else load_ruleset(root / "rules")
        project = cls(root, settings, rules)
        if migrate:
            db.migrate(settings.database)
        return project

    def replace_rules(self, rules: Ruleset) -> None:
        """Swap in rules that were checked (outreach.checks.project.reload_rules does)."""
        with self._lock:
            self.rules = rules
