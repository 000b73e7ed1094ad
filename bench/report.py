"""Report: each dashboard widget over N contacts with a year of stage changes, touches and evidence.

Contacts come in over 365 days; half move to interested, a quarter on to evaluating, and fewer
further (some skipping a stage); each contact has two sent touches and a fifth of the touches an
answer or an opt-out. Each widget is timed on its own, for a 30-day and a 365-day period, then the
whole report; then the daily snapshots are backfilled and the 365-day history read from them. The
floor is `SELECT stage, count(*) FROM contact GROUP BY stage` on the same database."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from itertools import islice
from typing import Any

from common import database, kinds, line, open_engine, parser, ratio, raw, sql_time, summary, timed, workdir
from sqlalchemy import text
from sqlmodel import Session

from outreach.analytics import activity, funnel
from outreach.analytics.build import build_report
from outreach.analytics.model import Filters
from outreach.analytics.snapshots import take_snapshots
from outreach.db import session_scope
from outreach.engine import Engine

START = datetime(2025, 12, 1, tzinfo=UTC)
NOW = datetime(2026, 12, 1, 0, 20, tzinfo=UTC)
OWNERS = [f"rep{i}@example.com" for i in range(20)]
INDUSTRIES = ["software", "retail", "finance", "health", "energy"]
PATHS = [("aware", "interested", 2), ("interested", "evaluating", 4), ("evaluating", "deciding", 16),
         ("deciding", "customer", 64)]


def _batches(rows: Iterator[tuple[Any, ...]], cur: Any, sql: str) -> None:
    while batch := list(islice(rows, 5000)):
        cur.executemany(sql, batch)


def seed(engine: Engine, n: int) -> dict[str, int]:
    conn, ph = raw(engine)
    cur = conn.cursor()
    t = lambda at: sql_time(engine, at)  # noqa: E731

    def created(i: int) -> datetime:
        return START + timedelta(days=i % 365, hours=i % 24)

    def contacts() -> Iterator[tuple[Any, ...]]:
        for i in range(1, n + 1):
            attrs = f'{{"industry": "{INDUSTRIES[i % len(INDUSTRIES)]}", "region": "r{i % 7}"}}'
            yield (i, f"b{i}@c{i % 5000}.example", OWNERS[i % len(OWNERS)], attrs, "aware", t(created(i)), 0,
                   t(created(i)))

    _batches(contacts(), cur, f"INSERT INTO contact (id, email, owner, attributes, stage, stage_entered_at, "
                              f"stage_entry, created_at) VALUES ({', '.join([ph] * 8)})")
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

    _batches(moves(), cur, f"INSERT INTO stagechange (contact_id, from_stage, to_stage, at) "
                           f"VALUES ({ph}, {ph}, {ph}, {ph})")
    # the contact's stage: its last change's
    cur.execute("UPDATE contact SET stage = (SELECT s.to_stage FROM stagechange s WHERE s.contact_id = contact.id "
                "ORDER BY s.at DESC, s.id DESC LIMIT 1) WHERE EXISTS (SELECT 1 FROM stagechange s "
                "WHERE s.contact_id = contact.id)")

    def touches() -> Iterator[tuple[Any, ...]]:
        for i in range(1, n + 1):
            for k, (step, interaction, channel) in enumerate([("welcome", "nurture", "email"),
                                                              ("case-study", "nurture", "email")]):
                at = t(created(i) + timedelta(days=4 * k, hours=1))
                status = "expired" if (i + k) % 50 == 0 else "pending_approval" if (i + k) % 97 == 0 else "sent"
                yield (i, f"{i}:{step}", "aware", 0, "playbook:aware", step, interaction, "aware/" + step, channel,
                       status, at, at if status == "sent" else None, at, at,
                       "nobody approved it in time" if status == "expired" else None, "the default channel", False, 0)

    _batches(touches(), cur, f"INSERT INTO touch (contact_id, dedupe_key, stage, stage_entry, rule, step, "
                             f"interaction, content, channel, status, due_at, sent_at, created_at, updated_at, reason, "
                             f"channel_reason, channel_fixed, attempts) VALUES ({', '.join([ph] * 18)})")
    cur.execute("SELECT count(*) FROM touch")
    n_touches = cur.fetchone()[0]

    def evidence() -> Iterator[tuple[Any, ...]]:
        cur2 = conn.cursor()
        cur2.execute("SELECT id, contact_id, sent_at FROM touch WHERE status = 'sent' AND id % 5 = 0")
        for tid, cid, sent in cur2.fetchall():
            kind = "email.unsubscribed" if tid % 45 == 0 else "email.clicked"
            yield (cid, kind, sent, sent, "bench", tid, "email", "nurture", f"e{tid}", "{}")
        cur2.execute("SELECT id, contact_id, sent_at FROM touch WHERE status = 'sent'")  # every send delivered
        for tid, cid, sent in cur2.fetchall():
            yield (cid, "email.delivered", sent, sent, "bench", tid, "email", "nurture", f"d{tid}", "{}")

    _batches(evidence(), cur, f"INSERT INTO evidence (contact_id, type, occurred_at, recorded_at, source, touch_id, "
                              f"channel, interaction, dedupe_key, data) VALUES ({', '.join([ph] * 10)})")
    cur.execute("SELECT count(*) FROM evidence")
    n_evidence = cur.fetchone()[0]
    conn.commit()
    cur.execute("ANALYZE")  # fresh statistics, as autovacuum (or a long-lived SQLite file) would have
    conn.commit()
    conn.close()
    return {"contacts": n, "stage_changes": changes, "touches": n_touches, "evidence": n_evidence}


def best(fn: Callable[[], Any], runs: int) -> float:
    return min(timed(fn)[1] for _ in range(runs))


def widgets(s: Session, engine: Engine, f: Filters) -> dict[str, Callable[[], Any]]:
    """Each widget as build_report runs it (the history here with no snapshot kept: the worst case)."""
    rules = engine.project.rules
    stages = rules.stage_ids
    moved = funnel.timeline(stages, None, active_since=f.start)
    return {
        "funnel+history, nothing kept": lambda: funnel.daily_counts(s, len(stages), funnel.timeline(stages, None),
                                                                    f.days()),
        "conversion+velocity": lambda: funnel.moves(s, stages, f, moved),
        "steps+channels": lambda: activity.steps(s, rules, f, activity.sent_touches(s, f, timedelta(days=14))),
        "queue": lambda: activity.queue(s, f),
        "whole report, nothing kept": lambda: build_report(s, rules, f),
        "whole report, one owner": lambda: build_report(s, rules, Filters(f.since, f.until, OWNERS[3])),
        "whole report, stage now evaluating": lambda: build_report(s, rules, replace(f, stage="evaluating")),
        "whole report, playbook aware": lambda: build_report(s, rules, replace(f, playbook="playbook:aware")),
        "whole report, industry=retail": lambda: build_report(s, rules, replace(f, attrs=(("industry", "retail"),))),
    }


def run(kind: str, n: int, runs: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    with workdir() as tmp, database(kind, tmp, "report") as url:
        engine = open_engine(tmp / "proj", url)
        sizes, seed_s = timed(lambda: seed(engine, n))
        line(f"{kind} seed", seconds=seed_s, **sizes)
        rules = engine.project.rules
        stages = rules.stage_ids
        with session_scope(engine.db) as s:
            floor = best(lambda: s.execute(text("SELECT stage, count(*) FROM contact GROUP BY stage")).all(), runs)
            line(f"{kind} floor: contacts per stage", ms=floor * 1000)
            for days in (30, 365):
                f = Filters(NOW.date() - timedelta(days=days), NOW.date() - timedelta(days=1))
                for name, fn in widgets(s, engine, f).items():
                    seconds = best(fn, runs)
                    line(f"{kind} {days}d {name}", seconds=seconds, x_floor=ratio(seconds, floor))
                    out.append({"db": kind, "what": f"{name}, {days} days, {n:,} contacts",
                                "figure": f"{seconds:.2f} s", "ratio": ratio(seconds, floor), "extra": ""})
        with session_scope(engine.db) as s:
            (live, rebuilt), backfill = timed(lambda: take_snapshots(s, stages, NOW))
        line(f"{kind} snapshot backfill", seconds=backfill, live_days=live, reconstructed_days=rebuilt)
        out.append({"db": kind, "what": f"snapshot backfill, {rebuilt} days", "figure": f"{backfill:.2f} s",
                    "ratio": ratio(backfill, floor), "extra": ""})
        with session_scope(engine.db) as s:
            f = Filters(date(2025, 12, 1), NOW.date() - timedelta(days=1))
            seconds = best(lambda: build_report(s, rules, f, today=NOW.date()), runs)
            line(f"{kind} whole report, 365 kept days", seconds=seconds, x_floor=ratio(seconds, floor))
            out.append({"db": kind, "what": f"whole report over 365 kept days, {n:,} contacts",
                        "figure": f"{seconds:.2f} s", "ratio": ratio(seconds, floor), "extra": ""})
    return out


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--n", type=int, default=None,
                   help="contacts (default 200,000; quick 10,000; the target is 1,000,000)")
    args = p.parse_args()
    n = args.n or (10_000 if args.quick else 200_000)
    rows: list[dict[str, Any]] = []
    for kind in kinds(args.pg):
        rows += run(kind, n, 1 if args.quick else 3)
    summary("report", rows)


if __name__ == "__main__":
    main()
