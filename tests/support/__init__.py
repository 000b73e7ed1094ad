"""What the tests share, imported explicitly (`from tests.support import at, make_project`); the
conftest.py files hold fixtures only. `db` has the PostgreSQL helpers, `web` the web app's seed and
test client, `payloads` the provider payloads in tests/fixtures."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import yaml

from tests.support.db import copy_migrated_sqlite, sqlite_file

ROOT = Path(__file__).resolve().parents[2]  # the repository: the example project lives at its top
FIXTURES = ROOT / "tests" / "fixtures"  # provider payloads (see its README.md)
ALWAYS = {"days": "mon-sun", "hours": "00:00-24:00"}  # a send window that never closes


def at(text: str) -> datetime:
    """A UTC time from '2026-03-02 10:00'."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def make_project(root: Path, database: str, *, migrated: bool = True, **overrides: object) -> Path:
    """Copy the example project to `root` with `database` and config overrides (dotted keys).

    A SQLite database at an absolute path that does not exist yet is made as a copy of one migrated
    once per test process, unless `migrated=False` (then the first open migrates it from nothing)."""
    root.mkdir(parents=True, exist_ok=True)
    if migrated and (file := sqlite_file(database)) is not None and file.parent.is_dir() and not file.exists():
        copy_migrated_sqlite(file)
    for name in ("rules", "content"):
        shutil.copytree(ROOT / name, root / name, ignore=shutil.ignore_patterns("tests"))
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    config["database"] = database
    for key, value in overrides.items():
        node = config
        *parents, last = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    (root / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    shutil.copy(ROOT / "contacts.csv", root / "contacts.csv")
    return root
