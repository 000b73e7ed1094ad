"""The local PostgreSQL server for tests: is it there, and a fresh migrated database per test.

PostgreSQL tests use OUTREACH_TEST_PG (default: the trust-auth server on 127.0.0.1:5432). When it
is unreachable they skip, unless OUTREACH_REQUIRE_PG=1 (as .ci/run sets), which makes it a failure."""

from __future__ import annotations

import os
import uuid

import pytest

from outreach import db

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


def drop_template() -> None:
    """Drop the session's template database, if one was made (at the end of the session)."""
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
