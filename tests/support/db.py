"""Databases for tests, each migrated once and copied: a fresh migrated database per test on the local
PostgreSQL server, and a migrated SQLite file per project (Alembic's migrations from nothing take
seconds; a copy takes milliseconds). tests/integration/test_migrations.py, `outreach init` and the
wheel test migrate from nothing.

PostgreSQL tests use OUTREACH_TEST_PG (default: the trust-auth server on 127.0.0.1:5432). When it
is unreachable they skip, unless OUTREACH_REQUIRE_PG=1 (as .ci/run sets), which makes it a failure."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
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
    """At the end of the session: drop the test databases left for it, and the templates."""
    if _sqlite_template:
        shutil.rmtree(_sqlite_template.pop().parent, ignore_errors=True)
    for thread, made in _spares:  # the unused spare: made from the template, so dropped before it
        thread.join()
        if made.get("name"):
            _to_drop.append(made["name"])
    _spares.clear()
    db.dispose_all()
    undropped = _drop_all([*_to_drop, *_template])  # no copy is being made of the template any more
    _to_drop.clear()
    _template.clear()
    if undropped:
        raise RuntimeError("test databases left on the server:\n" + "\n".join(undropped))


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
    """A migrated database of its own on the server; return (its URL, its name).

    A CREATE DATABASE takes 0.5 to 2 s on a busy machine, mostly the server's: each call takes the
    spare made in a thread during the previous test (or makes one, the first time) and starts the
    next spare."""
    template = _migrated_template()
    name = ""
    if _spares:
        thread, made = _spares.pop()
        thread.join()
        name = made.get("name", "")  # empty if making it failed: make one here, which says why
    if not name:
        name = _create_from(template)
    made_next: dict[str, str] = {}
    thread = threading.Thread(target=_make_spare, args=(template, made_next), name="spare-test-database",
                              daemon=True)
    thread.start()
    _spares.append((thread, made_next))
    return PG_URL.rsplit("/", 1)[0] + f"/{name}", name


_spares: list[tuple[threading.Thread, dict[str, str]]] = []


def _make_spare(template: str, made: dict[str, str]) -> None:
    try:
        made["name"] = _create_from(template)
    except Exception:  # the next fresh_pg_database makes its database itself, and that one raises
        pass


def _create_from(template: str) -> str:
    import psycopg

    name = f"outreach_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_URL.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return name


def drop_pg_database(name: str, *, wait: bool = False) -> None:
    """Drop a test's database. This process's connections close now; the DROP itself waits, unless
    `wait`, for the end of the session (drop_template), where they run ten at a time: PostgreSQL makes
    every DROP DATABASE wait for a checkpoint (0.4 s on a quiet server, 40 to 80 s measured while
    another client was writing gigabytes), and DROPs waiting together share one."""
    db.dispose_all()
    if wait:
        _drop(name)
    else:
        _to_drop.append(name)


_to_drop: list[str] = []


def _drop_all(names: list[str]) -> list[str]:
    """Drop `names` on a few connections at once; return what could not be dropped, and why."""
    def drop(name: str) -> str:
        try:
            _drop(name)
            return ""
        except Exception as exc:
            return f"{name}: {exc}"

    # DROPs waiting at the same moment share a checkpoint, so many at once; but not too many: three
    # test workers at the end of their sessions stay well inside max_connections (100 by default)
    with ThreadPoolExecutor(max_workers=10) as pool:
        return [why for why in pool.map(drop, names) if why]


def _drop(name: str) -> None:
    import psycopg

    with psycopg.connect(PG_URL.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
