"""Databases for tests, each migrated once and copied: a fresh migrated database per test on the local
PostgreSQL server, and a migrated SQLite file per project (Alembic's migrations from nothing take
seconds; a copy takes milliseconds). tests/integration/test_migrations.py, `outreach init` and the
wheel test migrate from nothing.

PostgreSQL tests use OUTREACH_TEST_PG (default: the trust-auth server on 127.0.0.1:5432). When it
is unreachable they skip, unless OUTREACH_REQUIRE_PG=1 (as .ci/run sets), which makes it a failure."""

from __future__ import annotations

import os
import queue
import shutil
import tempfile
import threading
import uuid
from pathlib import Path

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
    """Drop the session's template databases, if any were made, once every test database is dropped
    (at the end of the session)."""
    if _sqlite_template:
        shutil.rmtree(_sqlite_template.pop().parent, ignore_errors=True)
    _drops.join()
    if _template:
        drop_pg_database(_template.pop(), wait=True)
    if _undropped:
        raise RuntimeError("test databases left on the server:\n" + "\n".join(_undropped))


_sqlite_template: list[Path] = []


def _migrated_sqlite() -> Path:
    """A SQLite file migrated once per test process (each pytest-xdist worker makes its own)."""
    if not _sqlite_template:
        path = Path(tempfile.mkdtemp(prefix="outreach-template-")) / "template.db"
        url = f"sqlite:///{path}"
        db.migrate(url)
        db.make_engine(url).dispose()  # its last connection closes: SQLite folds the WAL into the file
        if path.with_name(path.name + "-wal").exists():
            raise RuntimeError(f"{path}: the write-ahead log is still there; a copy of the file alone would "
                               "miss part of the schema")
        _sqlite_template.append(path)
    return _sqlite_template[0]


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL with an absolute path (sqlite:////tmp/x.db), else None (a relative
    path is resolved by the engine from its own working folder; memory has no file)."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or "?" in url:
        return None
    path = Path(url[len(prefix):])
    return path if path.is_absolute() else None


def copy_migrated_sqlite(path: Path) -> None:
    """Create the SQLite database at `path` (which must not exist) as a copy of the migrated template,
    readable by its owner only, as the engine creates a new file (tests check the mode)."""
    data = _migrated_sqlite().read_bytes()
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
        out.write(data)


def fresh_pg_database() -> tuple[str, str]:
    """Create a migrated database of its own on the server; return (its URL, its name)."""
    import psycopg

    template = _migrated_template()
    name = f"outreach_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_URL.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return PG_URL.rsplit("/", 1)[0] + f"/{name}", name


def drop_pg_database(name: str, *, wait: bool = False) -> None:
    """Drop a test's database. This process's connections close now; the DROP itself (0.4 to 4 s on
    a busy machine: the server flushes and forgets the database's files) runs in a thread of its own
    while the next test goes on, unless `wait`. drop_template waits for them all."""
    db.dispose_all()
    if wait:
        _drop(name)
        return
    if not _dropper:
        _dropper.append(threading.Thread(target=_drop_queued, name="drop-test-databases", daemon=True))
        _dropper[0].start()
    _drops.put(name)


_drops: queue.Queue[str] = queue.Queue()
_dropper: list[threading.Thread] = []
_undropped: list[str] = []


def _drop_queued() -> None:
    while True:
        name = _drops.get()
        try:
            _drop(name)
        except Exception as exc:  # left on the server; the session goes on and its end names it
            _undropped.append(f"{name}: {exc}")
        finally:
            _drops.task_done()


def _drop(name: str) -> None:
    import psycopg

    with psycopg.connect(PG_URL.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
