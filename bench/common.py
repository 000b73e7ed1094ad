"""What the benchmarks share: fresh projects on SQLite or PostgreSQL, raw DBAPI connections for the
floors, timing, peak memory, and the one-line JSON summary that bench/run.py collects."""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/x.py` puts bench/ first, not the project
    sys.path.insert(0, str(ROOT))

from outreach import db  # noqa: E402
from outreach.engine import Engine  # noqa: E402
from outreach.project import Project  # noqa: E402
from tests.support import make_project  # noqa: E402
from tests.support.db import drop_pg_database, fresh_pg_database, pg_available  # noqa: E402

T = TypeVar("T")
SUMMARY = "SUMMARY "
ALWAYS = {"days": "mon-sun", "hours": "00:00-24:00"}


def parser(doc: str | None, kept: bool = False) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="small sizes: a smoke run, not figures to quote")
    p.add_argument("--pg", action="store_true", help="also on PostgreSQL (OUTREACH_TEST_PG, default 127.0.0.1:5432)")
    if kept:
        p.add_argument("--db-url", default=None, metavar="URL[,URL...]",
                       help="instead of seeding: PostgreSQL databases built by `bench/report.py --keep` (e.g. "
                            "1,000,000 contacts and 10,000,000 evidence rows), each timed in turn on a copy of it, "
                            "so the kept ones stay as they were")
    return p


@contextmanager
def scratch_copy(url: str) -> Iterator[str]:
    """The URL of a copy of the PostgreSQL database at `url` (CREATE DATABASE ... TEMPLATE, file by file:
    a 4 GB database in about a minute), dropped afterwards."""
    import psycopg

    if not url.startswith("postgresql"):
        raise SystemExit(f"--db-url {url}: a PostgreSQL database (made by bench/report.py --pg --keep)")
    server, source = url.rsplit("/", 1)
    name = f"bench_copy_{uuid.uuid4().hex[:10]}"
    db.dispose_all()  # a template must have no other connection
    # a background job ignores SIGINT: let SIGTERM unwind too, so that the copy is dropped
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with psycopg.connect(server.replace("+psycopg", "") + "/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{source}" STRATEGY FILE_COPY')
    try:
        yield f"{server}/{name}"
    finally:
        drop_pg_database(name)


def sizes(url: str) -> dict[str, int]:
    """Rows in the tables that make a database big."""
    import psycopg

    with psycopg.connect(url.replace("+psycopg", "")) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # type: ignore[index]
                for t in ("contact", "touch", "evidence")}


def kinds(pg: bool) -> list[str]:
    if not pg:
        return ["sqlite"]
    why = pg_available()
    if why:
        raise SystemExit(f"--pg: {why}")
    return ["sqlite", "postgresql"]


@contextmanager
def database(kind: str, tmp: Path, name: str) -> Iterator[str]:
    """A URL of an empty database: a SQLite file under `tmp`, or a new database on the PG server."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp / (name + '.db')}"
        return
    url, dbname = fresh_pg_database()
    try:
        yield url
    finally:
        drop_pg_database(dbname)


@contextmanager
def workdir() -> Iterator[Path]:
    tmp = Path(tempfile.mkdtemp(prefix="outreach-bench-"))
    try:
        yield tmp
    finally:
        db.dispose_all()
        shutil.rmtree(tmp, ignore_errors=True)


def open_engine(root: Path, url: str, **overrides: object) -> Engine:
    """The example project (rules, content, config) on `url`, migrated."""
    return Engine(Project.open(make_project(root, url, **overrides)))


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def peak_rss_mb() -> float:
    """This process's peak resident set so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def raw(engine: Engine) -> Any:
    """A DBAPI connection from the engine's pool (SQLite pragmas applied) and its placeholder."""
    conn = engine.db.raw_connection()
    return conn, "?" if engine.db.dialect.name == "sqlite" else "%s"


def sql_time(engine: Engine, at: datetime) -> Any:
    """A time as SQLAlchemy stores it: SQLite keeps naive UTC text, PostgreSQL takes the datetime."""
    if engine.db.dialect.name == "sqlite":
        return at.replace(tzinfo=None).isoformat(" ", "microseconds")
    return at


def insert_sql(table: str, columns: list[str], ph: str) -> str:
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join([ph] * len(columns))})"


def rate(count: float, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def ratio(seconds: float, floor: float) -> float:
    return seconds / floor if floor > 0 else float("inf")


def line(label: str, **figures: Any) -> None:
    """One plain line of figures: `label  key=value  key=value`."""
    parts = []
    for key, value in figures.items():
        text = f"{value:,.3f}" if isinstance(value, float) and abs(value) < 10 else \
            f"{value:,.0f}" if isinstance(value, float | int) and not isinstance(value, bool) else str(value)
        parts.append(f"{key}={text}")
    print(f"{label:<40} " + "  ".join(parts), flush=True)


def summary(bench: str, rows: list[dict[str, Any]]) -> None:
    """The machine-readable last line: [{"db", "what", "figure", "ratio"}...]."""
    print(SUMMARY + json.dumps({"bench": bench, "rows": rows}), flush=True)
