"""Fixtures only (helpers live in tests/support): a fresh copy of the example project on SQLite or
on the local PostgreSQL, and the tier markers.

Every test lives in a tier folder and is marked with its name: `unit` (pure decisions, fast),
`integration` (the engine on SQLite and PostgreSQL, providers against local servers) and
`acceptance` (the CLI in a subprocess, HTTP, the browser). `python -m pytest tests/unit` (or
`-m unit`) is the fast run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from outreach import db
from outreach.engine import Engine
from outreach.project import Project
from tests.support import make_project
from tests.support.db import drop_pg_database, drop_template, fresh_pg_database, require_pg

TESTS = Path(__file__).resolve().parent
TIERS = ("unit", "integration", "acceptance")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test with its tier, from the folder it lives in; a test outside one is an error."""
    for item in items:
        parts = item.path.resolve().relative_to(TESTS).parts
        if len(parts) < 2 or parts[0] not in TIERS:
            raise pytest.UsageError(f"{item.nodeid}: a test lives in one of tests/{{{','.join(TIERS)}}}/")
        item.add_marker(parts[0])


@pytest.fixture(scope="session", autouse=True)
def _drop_template() -> Iterator[None]:
    yield
    drop_template()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'outreach.db'}"
        db.dispose_all()
        return
    yield request.getfixturevalue("pg_url")


@pytest.fixture
def project_path(tmp_path: Path, database: str) -> Path:
    return make_project(tmp_path / "proj", database)


@pytest.fixture
def engine(project_path: Path) -> Engine:
    return Engine(Project.open(project_path))


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    path = make_project(tmp_path / "proj", f"sqlite:///{tmp_path / 'outreach.db'}")
    yield Engine(Project.open(path))
    db.dispose_all()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh migrated PostgreSQL database of the test's own (for PostgreSQL-only behaviour)."""
    require_pg()
    url, name = fresh_pg_database()
    try:
        yield url
    finally:
        drop_pg_database(name)


@pytest.fixture
def pg_engine(tmp_path: Path, pg_url: str) -> Engine:
    """The example project on its own PostgreSQL database."""
    return Engine(Project.open(make_project(tmp_path / "pgproj", pg_url)))
