"""The database engine and sessions. SQLite (WAL) by default, PostgreSQL by URL; Alembic migrates."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Connection, CursorResult, Engine, Executable, Result, Table, delete, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlmodel import Session, create_engine

from outreach.errors import DatabaseUnavailable

_MIGRATIONS = Path(__file__).parent / "migrations"
_engines: dict[str, Engine] = {}
READ_ONLY = "outreach_read_only"  # in a Session's info: its engine's connections refuse writes


def make_engine(url: str, read_only: bool = False) -> Engine:
    """One engine per URL per process. `read_only`: a replica's, every connection refusing writes
    (PostgreSQL's default_transaction_read_only, SQLite's query_only), so that a write sent there by
    mistake fails at once instead of landing in a database nobody reads back."""
    key = f"ro:{url}" if read_only else url
    if key in _engines:
        return _engines[key]
    if read_only:
        engine = _read_only_engine(url)
    elif url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "do_connect", _private_file)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()
    else:
        engine = create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)
    _engines[key] = engine
    return engine


def _read_only_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _query_only(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA query_only=ON")
            cur.close()

        return engine
    # a replica that does not answer: an error within seconds, not a page that hangs
    return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True,
                         connect_args={"connect_timeout": 5, "options": "-c default_transaction_read_only=on"})


def _private_file(_dialect: Any, _record: Any, cargs: Any, cparams: Any) -> None:
    """Create a new SQLite database file readable by its owner only (0600) just before SQLite opens it
    (SQLite would create it with the umask's mode, often world-readable; its WAL files take the
    database's mode). An existing file is left as it is."""
    name = cargs[0] if cargs else cparams.get("database")
    if not isinstance(name, str) or not name or name == ":memory:" or name.startswith("file:"):
        return
    try:
        os.close(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError:  # there already, or not ours to make: SQLite says so if it matters
        pass


def forget(url: str) -> None:
    """Close and forget the engine of `url`, a database going away (on SQLite its last connection closing
    folds the write-ahead log into the file, which may then be copied alone)."""
    engine = _engines.pop(url, None)
    if engine is not None:
        engine.dispose()


def dispose_all() -> None:
    for engine in _engines.values():
        engine.dispose()
    _engines.clear()


# The newest migration's revision (tests/integration/test_migrations.py checks it is Alembic's head): a database
# already there is not handed to Alembic, whose import and scripts cost a third of a second at every start
# of every command.
HEAD = "0018_report_parts"


def at_head(engine: Engine) -> bool:
    """Whether the schema is at HEAD (False too when it has no version table yet)."""
    try:
        with engine.connect() as conn:
            return set(conn.execute(text("SELECT version_num FROM alembic_version")).scalars()) == {HEAD}
    except DBAPIError:
        return False


def migrate(url: str) -> None:
    """Bring the schema to the newest revision (idempotent; run at every start)."""
    if at_head(make_engine(url)):
        return
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["engine"] = make_engine(url)
    command.upgrade(cfg, "head")


def rows_changed(result: Result[Any]) -> int:
    """How many rows an UPDATE or DELETE run through a session changed (its result is a cursor's)."""
    return cast(CursorResult[Any], result).rowcount or 0


_UPSERTS: dict[tuple[str, str, tuple[str, ...], tuple[str, ...]], Executable] = {}


def add_to_counters(session: Session | Connection, table: Table, keys: Sequence[str], counts: Sequence[str],
                    rows: Sequence[Mapping[str, object]], *, drop_zero: bool = False) -> None:
    """Add each row's `counts` to the counters of its `keys`, inserting the keys not there yet: one upsert
    per 500 rows, its statement built once (the dispatcher counts every send, and building it each time
    cost a quarter of a simulated run). Callers sort the rows when concurrent writers may meet, so rows
    lock in one order (no deadlock on PostgreSQL). `drop_zero`: then the counters left at 0 go."""
    if not rows:
        return
    bind = session.get_bind() if isinstance(session, Session) else session
    cache_key = (bind.dialect.name, table.name, tuple(keys), tuple(counts))
    if cache_key not in _UPSERTS:
        stmt = (postgresql if bind.dialect.name == "postgresql" else sqlite).insert(table)
        _UPSERTS[cache_key] = stmt.on_conflict_do_update(
            index_elements=list(keys), set_={c: table.c[c] + stmt.excluded[c] for c in counts})
    for i in range(0, len(rows), 500):
        session.execute(_UPSERTS[cache_key], rows[i:i + 500])
    if drop_zero:
        session.execute(delete(table).where(*(table.c[c] == 0 for c in counts)))


def read_only(session: Session) -> bool:
    """Whether `session` reads a replica (read_scope's): it must not write, not even a cache."""
    return bool(session.info.get(READ_ONLY))


@contextmanager
def read_scope(engine: Engine, setting: str) -> Iterator[Session]:
    """A session on a read-only engine (make_engine(url, read_only=True)), rolled back at the end. It
    connects at once: a database that cannot be reached raises DatabaseUnavailable naming `setting`
    (the config key that gave its URL) rather than an error from deep in a query."""
    with Session(engine, expire_on_commit=False) as session:
        session.info[READ_ONLY] = True
        try:
            session.connection()
        except OperationalError as exc:
            where = engine.url.render_as_string(hide_password=True)
            why = str(exc.orig or exc).strip().splitlines()[0] if (exc.orig or exc) else "no answer"
            raise DatabaseUnavailable(
                f"{setting} ({where}) cannot be reached: {why}. The dashboards and reports read from it: "
                f"check that the replica is up, or set {setting} empty to read from database") from None
        try:
            yield session
        finally:
            session.rollback()


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
