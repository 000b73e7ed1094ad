"""Shared fixtures: a fresh copy of the example project on SQLite or on the local PostgreSQL.

PostgreSQL tests use OUTREACH_TEST_PG (default: the trust-auth server on 127.0.0.1:5432). When it
is unreachable they skip, unless OUTREACH_REQUIRE_PG=1 (as .ci/run sets), which makes it a failure."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from outreach import db
from outreach.engine import Engine
from outreach.project import Project

ROOT = Path(__file__).resolve().parent.parent
ALWAYS = {"days": "mon-sun", "hours": "00:00-24:00"}  # a send window that never closes
PG_URL = os.environ.get("OUTREACH_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def pg_available() -> str | None:
    """None if PostgreSQL answers, else why not."""
    try:
        import psycopg

        with psycopg.connect(PG_URL.replace("+psycopg", ""), connect_timeout=3):
            return None
    except Exception as exc:
        return f"PostgreSQL at {PG_URL} is not reachable: {exc}"


def require_pg() -> None:
    why = pg_available()
    if why is None:
        return
    if os.environ.get("OUTREACH_REQUIRE_PG") == "1":
        pytest.fail(f"OUTREACH_REQUIRE_PG=1 but {why}")
    pytest.skip(why)


_template: list[str] = []


def _migrated_template() -> str:
    """A database migrated once per test session; each test copies it, which is much cheaper than
    migrating a new database every time."""
    import psycopg

    if not _template:
        name = f"outreach_tmpl_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(PG_URL.replace("+psycopg", ""), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = PG_URL.rsplit("/", 1)[0] + f"/{name}"
        db.migrate(url)
        db.dispose_all()
        _template.append(name)
    return _template[0]


@pytest.fixture(scope="session", autouse=True)
def _drop_template() -> Iterator[None]:
    yield
    if _template:
        drop_pg_database(_template.pop())


def fresh_pg_database() -> tuple[str, str]:
    """Create a migrated database of its own on the server; return (its URL, its name)."""
    import psycopg

    template = _migrated_template()
    name = f"outreach_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_URL.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return PG_URL.rsplit("/", 1)[0] + f"/{name}", name


def drop_pg_database(name: str) -> None:
    import psycopg

    db.dispose_all()
    with psycopg.connect(PG_URL.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def make_project(root: Path, database: str, **overrides: object) -> Path:
    """Copy the example project to `root` with `database` and config overrides (dotted keys)."""
    root.mkdir(parents=True, exist_ok=True)
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


def at(text: str) -> datetime:
    """A UTC time from '2026-03-02 10:00'."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


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
