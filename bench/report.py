"""Report: each dashboard widget over N contacts with a year of stage changes, touches and evidence.

Contacts come in over 365 days; half move to interested, a quarter on to evaluating, and fewer
further (some skipping a stage); each contact has two sent touches and a fifth of the touches an
answer or an opt-out. Each widget is timed on its own, for a 30-day and a 365-day period, then the
whole report; then the daily snapshots are backfilled and the 365-day history read from them. The
floor is `SELECT stage, count(*) FROM contact GROUP BY stage` on the same database."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Any

from common import database, kinds, line, open_engine, parser, ratio, raw, sql_time, summary, timed, workdir
from sqlalchemy import text
from sqlmodel import Session

from outreach.analytics import activity, funnel, paths, targets
from outreach.analytics.build import build_report, deliverability, sent_touches
from outreach.analytics.model import Filters
from outreach.analytics.parts import part_of
from outreach.analytics.scope import contact_where
from outreach.analytics.snapshots import take_snapshots
from outreach.db import session_scope
from outreach.engine import Engine
from outreach.models import Target
from tests.support.db import PG_URL

START = datetime(2025, 12, 1, tzinfo=UTC)
NOW = datetime(2026, 12, 1, 0, 20, tzinfo=UTC)
OWNERS = [f"rep{i}@example.com" for i in range(20)]
INDUSTRIES = ["software", "retail", "finance", "health", "energy"]
PATHS = [("aware", "interested", 2), ("interested", "evaluating", 4), ("evaluating", "deciding", 16),
         ("deciding", "customer", 64)]


def _load(conn: Any, kind: str, table: str, columns: list[str], rows: Iterator[tuple[Any, ...]]) -> None:
    """Bulk rows: COPY on PostgreSQL, executemany in batches of 5,000 on SQLite (not the engine's paths)."""
    cur = conn.cursor()
    if kind == "postgresql":
        with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(['?'] * len(columns))})"
    while batch := list(islice(rows, 5000)):
        cur.executemany(sql, batch)


def _indexes(conn: Any, kind: str, tables: list[str]) -> list[str]:
    """Drop the tables' secondary indexes (a bulk load then builds each once, sorted, instead of keeping
    it row by row) and return the statements that build them again."""
    cur = conn.cursor()
    made: list[str] = []
    for table in tables:
        if kind == "postgresql":
            cur.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s AND indexname NOT IN "
                        "(SELECT conname FROM pg_constraint)", (table,))
        else:
            cur.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? "
                        "AND sql IS NOT NULL", (table,))
        for name, sql in cur.fetchall():
            cur.execute(f'DROP INDEX "{name}"')
            made.append(sql)
    return made


def _plus(kind: str, expr: str, hours: str) -> str:
    """SQL: the time `expr` plus `hours` (an SQL integer expression) hours, stored as the engine stores it."""
    if kind == "postgresql":
        return f"({expr} + ({hours}) * interval '1 hour')"
    return f"(strftime('%Y-%m-%d %H:%M:%S', {expr}, '+' || ({hours}) || ' hours') || '.000000')"


def seed(engine: Engine, n: int, evidence_rows: int) -> dict[str, int]:
    """N contacts over 365 days, their stage changes, 2N touches, and evidence up to `evidence_rows`:
    contacts and stage changes generated here, touches and evidence by INSERT ... SELECT in the database."""
    conn, _ = raw(engine)
    kind = engine.db.dialect.name
    cur = conn.cursor()
    t = lambda at: sql_time(engine, at)  # noqa: E731
    if kind == "sqlite":
        cur.execute("PRAGMA cache_size = -1000000")  # 1 GB: the load's indexes stay in memory
    else:
        cur.execute("SET maintenance_work_mem = '512MB'")
    rebuild = _indexes(conn, kind, ["contact", "stagechange", "touch", "evidence"])

    def created(i: int) -> datetime:
        return START + timedelta(days=i % 365, hours=i % 24)

    def contacts() -> Iterator[tuple[Any, ...]]:
        for i in range(1, n + 1):
            attrs = f'{{"industry": "{INDUSTRIES[i % len(INDUSTRIES)]}", "region": "r{i % 7}"}}'
            yield (i, f"b{i}@c{i % 5000}.example", OWNERS[i % len(OWNERS)], attrs, "aware", t(created(i)), 0,
                   t(created(i)))

    _load(conn, kind, "contact", ["id", "email", "owner", "attributes", "stage", "stage_entered_at", "stage_entry",
                                  "created_at"], contacts())
    changes = 0

    def moves() -> Iterator[tuple[Any, ...]]:
        nonlocal changes
        for i in range(1, n + 1):
            at = created(i)
            for frm, to, every in PATHS:
                if i % every:
                    break
                at += timedelta(days=1 + i % 11, hours=i % 7)
                if at >= NOW:
                    break
                if to == "interested" and i % 12 == 0:  # a few skip interested
                    continue
                changes += 1
                yield (i, frm if not (to == "evaluating" and i % 12 == 0) else "aware", to, t(at))

    _load(conn, kind, "stagechange", ["contact_id", "from_stage", "to_stage", "at"], moves())
    cur.execute("CREATE INDEX ix_bench_sc ON stagechange (contact_id, at)")
    # the contact's stage: its last change's
    cur.execute("UPDATE contact SET stage = (SELECT s.to_stage FROM stagechange s WHERE s.contact_id = contact.id "
                "ORDER BY s.at DESC, s.id DESC LIMIT 1) WHERE EXISTS (SELECT 1 FROM stagechange s "
                "WHERE s.contact_id = contact.id)")
    for k, step in enumerate(["welcome", "case-study"]):  # two touches per contact, in the database
        at = _plus(kind, "created_at", str(4 * 24 * k + 1))
        status = (f"CASE WHEN (id + {k}) % 50 = 0 THEN 'expired' WHEN (id + {k}) % 97 = 0 "
                  f"THEN 'pending_approval' ELSE 'sent' END")
        cur.execute(
            "INSERT INTO touch (contact_id, dedupe_key, stage, stage_entry, rule, step, interaction, content, "
            "channel, status, due_at, sent_at, created_at, updated_at, reason, channel_reason, channel_fixed, "
            f"attempts) SELECT id, CAST(id AS TEXT) || ':{step}', 'aware', 0, 'playbook:aware', '{step}', "
            f"'nurture', 'aware/{step}', 'email', {status}, {at}, CASE WHEN {status} = 'sent' THEN {at} END, {at}, "
            f"{at}, CASE WHEN {status} = 'expired' THEN 'nobody approved it in time' END, 'the default channel', "
            "false, 0 FROM contact")
    cur.execute("SELECT count(*) FROM touch")
    n_touches = cur.fetchone()[0]
    cols = "contact_id, type, occurred_at, recorded_at, source, touch_id, channel, interaction, data"
    # what the providers report of each send: delivered (all), opened (two in five), clicked (one in five,
    # an unsubscribe instead for one touch in 45)
    for kind_sql, cond, later in [("'email.delivered'", "true", "0"), ("'email.opened'", "id % 5 IN (1, 2)", "2"),
                                  ("CASE WHEN id % 45 = 0 THEN 'email.unsubscribed' ELSE 'email.clicked' END",
                                   "id % 5 = 0", "3")]:
        at = _plus(kind, "sent_at", later)
        cur.execute(f"INSERT INTO evidence ({cols}) SELECT contact_id, {kind_sql}, {at}, {at}, 'bench', id, "
                    f"'email', 'nurture', '{{}}' FROM touch WHERE status = 'sent' AND {cond}")
    cur.execute("SELECT count(*) FROM evidence")
    so_far = cur.fetchone()[0]
    # the rest: page visits spread over each contact's first days, k per contact
    per = max(0, -(-(evidence_rows - so_far) // n))
    if per:
        if kind == "postgresql":
            series = f"CROSS JOIN generate_series(0, {per - 1}) AS k(x)"
        else:
            series = f", (WITH RECURSIVE k(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM k WHERE x < {per - 1}) "
            series += "SELECT x FROM k) AS k"
        at = _plus(kind, "created_at", "(k.x * 37 + id % 29) % 2000")
        cur.execute(f"INSERT INTO evidence ({cols}) SELECT id, 'web.visited', {at}, {at}, 'bench', NULL, NULL, "
                    f"NULL, '{{}}' FROM contact {series} WHERE id + k.x * {n} <= {evidence_rows - so_far}")
    cur.execute("SELECT count(*) FROM evidence")
    n_evidence = cur.fetchone()[0]
    cur.execute("DROP INDEX ix_bench_sc")
    for sql in rebuild:
        cur.execute(sql)
    conn.commit()
    conn.close()
    _vacuumed(engine, [])
    return {"contacts": n, "stage_changes": changes, "touches": n_touches, "evidence": n_evidence}


def _vacuumed(engine: Engine, tables: list[str]) -> None:
    """Fresh statistics (and on PostgreSQL the visibility map, which index-only scans need), as autovacuum
    would have after a bulk load, or a long-lived SQLite file: `tables`, or everything."""
    conn, _ = raw(engine)
    if engine.db.dialect.name == "postgresql":
        conn.driver_connection.autocommit = True  # VACUUM runs outside a transaction
        conn.cursor().execute(f"VACUUM (ANALYZE) {', '.join(tables)}")
        conn.driver_connection.autocommit = False
    else:
        for table in tables or [""]:
            conn.cursor().execute(f"ANALYZE {table}")
        conn.commit()
    conn.close()


def best(fn: Callable[[], Any], runs: int) -> float:
    return min(timed(fn)[1] for _ in range(runs))


TARGET_S = 2.0  # the bound for every widget


def narrowings(f: Filters) -> dict[str, Filters]:
    """The filters the dashboard offers, each alone: everybody, one owner (a twentieth of the contacts), the
    stage now (evaluating: about a fifth), an attribute (industry = retail: a fifth, read by its expression
    index) and a playbook (aware: it touched every contact); then two combinations (a rep's buyers at one
    stage; the widest: a fifth of the contacts, all touched by the playbook)."""
    return {"": f, ", one owner": replace(f, owner=OWNERS[3]), ", stage now evaluating": replace(f, stage="evaluating"),
            ", industry=retail": replace(f, attrs=(("industry", "retail"),)),
            ", playbook aware": replace(f, playbook="playbook:aware"),
            # two filters at once have no kept part: counted from the rows of the contacts they keep
            ", one owner at stage evaluating": replace(f, owner=OWNERS[3], stage="evaluating"),
            ", industry=retail and playbook aware": replace(f, attrs=(("industry", "retail"),),
                                                           playbook="playbook:aware")}


def widgets(s: Session, engine: Engine, f: Filters, rebuilt: bool) -> dict[str, Callable[[], Any]]:
    """Each widget as build_report and the dashboard run it, from the kept stage paths, over everybody and
    narrowed (and with `rebuilt`, the same rebuilt from every stage change, as before they were kept)."""
    rules = engine.project.rules
    stages = rules.stage_ids
    one = replace(f, owner=OWNERS[3])
    out: dict[str, Callable[[], Any]] = {}
    for label, g in narrowings(f).items():
        where = contact_where(g, owner=False)
        out |= {  # as build_report reads them: a part's kept counts (each filter here is one alone)
            f"history, nothing kept{label}": lambda g=g, where=where: paths.daily_counts(
                s, len(stages), g.owner, where, g.days(), part=part_of(g)),
            f"conversion+velocity{label}": lambda g=g: paths.moves(s, stages, g),
            f"steps+channels{label}": lambda g=g: activity.steps(s, rules, g, sent_touches(s, rules, g)),
            f"queue{label}": lambda g=g: activity.queue(s, g),
            f"deliverability{label}": lambda g=g: deliverability(s, rules, g),
        }
    out["target: conversion within the period"] = lambda: targets.point(
        s, rules, Target(owner="m@example.com", metric="conversion", op=">=", threshold=0.25, stage="interested",
                         within_days=(f.until - f.since).days + 1), f.until, 20)
    if rebuilt:
        out |= {
            "history, rebuilt from the stage changes": lambda: funnel.daily_counts(
                s, len(stages), funnel.timeline(stages, None), f.days()),
            "conversion+velocity, rebuilt": lambda: funnel.moves(s, stages, f, funnel.timeline(
                stages, None, active_since=f.start)),
            "conversion+velocity, one owner, rebuilt": lambda: funnel.moves(s, stages, one, funnel.timeline(
                stages, OWNERS[3], active_since=f.start)),
            "steps+channels, from the touches": lambda: activity.steps(s, rules, f, activity.sent_touches(
                s, f, timedelta(days=14))),
            "deliverability, from the evidence": lambda: activity.deliverability(s, f),
        }
    return out | {f"whole report, nothing kept{label}": lambda g=g: build_report(s, rules, g)
                  for label, g in narrowings(f).items()}


@contextmanager
def kept_database(kind: str, tmp: Path, keep: Path | None, n: int, ev: int,
                  pg_name: str | None = None) -> Iterator[tuple[str, bool]]:
    """(URL, already seeded?): a fresh database, or with `keep` one kept between runs (a SQLite file in
    that folder, a PostgreSQL database named `pg_name` or after the sizes), seeded once."""
    if keep is None:
        with database(kind, tmp, "report") as url:
            yield url, False
        return
    keep.mkdir(parents=True, exist_ok=True)
    done = keep / f"report-{n}-{ev}.{kind}.done"
    if kind == "sqlite":
        url = f"sqlite:///{keep / f'report-{n}-{ev}.db'}"
    else:
        import psycopg

        name = pg_name or f"bench_report_{n}_{ev}"
        with psycopg.connect(PG_URL.replace("+psycopg", ""), autocommit=True) as conn:
            if not done.exists():
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                conn.execute(f'CREATE DATABASE "{name}"')
        url = PG_URL.rsplit("/", 1)[0] + f"/{name}"
    if not done.exists() and kind == "sqlite":
        Path(url.removeprefix("sqlite:///")).unlink(missing_ok=True)
    yield url, done.exists()
    done.touch()


def run(kind: str, n: int, ev: int, runs: int, keep: Path | None, periods: list[int], rebuilt: bool,
        reuse: bool = False, pg_name: str | None = None) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []

    def report(what: str, seconds: float, floor: float) -> None:
        line(f"{kind} {what}", seconds=seconds, x_floor=ratio(seconds, floor),
             under_2s="yes" if seconds < TARGET_S else "NO")
        out.append({"db": kind, "what": f"{what}, {n:,} contacts", "figure": f"{seconds:.2f} s",
                    "ratio": ratio(seconds, floor), "extra": "" if seconds < TARGET_S else "over 2 s"})

    with workdir() as tmp, kept_database(kind, tmp, keep, n, ev, pg_name) as (url, seeded):
        engine = open_engine(tmp / "proj", url)
        if not seeded:
            sizes, seed_s = timed(lambda: seed(engine, n, ev))
            line(f"{kind} seed", seconds=seed_s, **sizes)
        if periods == [0]:
            return out
        rules = engine.project.rules
        stages = rules.stage_ids
        if not reuse:
            with session_scope(engine.db) as s:  # as a database from before the counts were kept: built once
                for table in ("stagepath", "stageflow", "stagestay", "pathstate", "senttouch", "sentday", "eventday",
                              "contactpart", "contactmark"):
                    s.execute(text(f"DELETE FROM {table}"))
        with session_scope(engine.db) as s:
            built, backfill = timed(lambda: paths.refresh(s, stages))
        line(f"{kind} kept counts backfill", seconds=backfill, contacts=built)
        # as autovacuum would after the backfill's bulk inserts
        _vacuumed(engine, ["stagepath", "senttouch", "contactpart", "stageflow", "stagestay", "sentday", "eventday"])
        out.append({"db": kind, "what": f"kept counts backfill, {n:,} contacts", "figure": f"{backfill:.2f} s",
                    "ratio": 0.0, "extra": "once, when the migration lands"})
        with session_scope(engine.db) as s:
            floor = best(lambda: s.execute(text("SELECT stage, count(*) FROM contact GROUP BY stage")).all(), runs)
            line(f"{kind} floor: contacts per stage", ms=floor * 1000)
            for days in periods:
                f = Filters(NOW.date() - timedelta(days=days), NOW.date() - timedelta(days=1))
                for name, fn in widgets(s, engine, f, rebuilt).items():
                    report(f"{days}d {name}", best(fn, runs), floor)
        for moved in (1, 1000):  # a rep's contacts handed over: the triggers mark them, the refresh moves them
            with session_scope(engine.db) as s:
                s.execute(text("UPDATE contact SET owner = CASE WHEN owner = :a THEN :b ELSE :a END "
                               "WHERE id IN (SELECT id FROM contact ORDER BY id LIMIT :n)"),
                          {"a": OWNERS[1], "b": OWNERS[2], "n": moved})
            with session_scope(engine.db) as s:
                recounted, seconds = timed(lambda: paths.refresh(s, stages))
            line(f"{kind} refresh after {moved} contacts changed owner", seconds=seconds, contacts=recounted)
            out.append({"db": kind, "what": f"refresh after {moved:,} contacts changed owner", "figure":
                        f"{seconds:.2f} s", "ratio": ratio(seconds, floor), "extra": ""})
        with session_scope(engine.db) as s:
            s.execute(text("DELETE FROM stagesnapshot"))
            s.execute(text("DELETE FROM snapshotday"))
        with session_scope(engine.db) as s:
            (live, rebuilt), backfill = timed(lambda: take_snapshots(s, stages, NOW))
        line(f"{kind} snapshot backfill", seconds=backfill, live_days=live, reconstructed_days=rebuilt)
        out.append({"db": kind, "what": f"snapshot backfill, {rebuilt} days", "figure": f"{backfill:.2f} s",
                    "ratio": ratio(backfill, floor), "extra": ""})
        with session_scope(engine.db) as s:
            f = Filters(date(2025, 12, 1), NOW.date() - timedelta(days=1))
            report("whole report over 365 kept days", best(lambda: build_report(s, rules, f, today=NOW.date()), runs),
                   floor)
    return out


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--n", type=int, default=None,
                   help="contacts (default 200,000; quick 10,000; the issue's target is 1,000,000)")
    p.add_argument("--evidence", type=int, default=None,
                   help="evidence rows (default: the sends' own, about 2.2 per contact; the issue's is 10,000,000)")
    p.add_argument("--runs", type=int, default=None, help="best of this many (default 3; quick 1)")
    p.add_argument("--keep", type=Path, default=None,
                   help="a folder to keep the seeded databases in and reuse them on the next run with the same sizes")
    p.add_argument("--only-pg", action="store_true", help="PostgreSQL only")
    p.add_argument("--pg-name", default=None,
                   help="with --keep: the kept PostgreSQL database's name (default bench_report_N_M), so that two "
                        "runs of the same sizes need not share one")
    p.add_argument("--rebuilt", action="store_true",
                   help="also time conversion, velocity and history rebuilt from the stage changes (slow at 1,000,000)")
    p.add_argument("--reuse-kept", action="store_true",
                   help="with --keep: keep the kept counts of the last run (no backfill timed)")
    p.add_argument("--seed-only", action="store_true", help="build the databases (with --keep) and stop")
    p.add_argument("--days", default="30,365", help="the periods to time, in days (default 30,365)")
    args = p.parse_args()
    n = args.n or (10_000 if args.quick else 200_000)
    ev = args.evidence or 0
    rows: list[dict[str, Any]] = []
    for kind in kinds(args.pg or args.only_pg):
        if args.only_pg and kind != "postgresql":
            continue
        rows += run(kind, n, ev, args.runs or (1 if args.quick else 3), args.keep,
                    [0] if args.seed_only else [int(d) for d in args.days.split(",")], args.rebuilt, args.reuse_kept,
                    args.pg_name)
    summary("report", rows)


if __name__ == "__main__":
    main()
