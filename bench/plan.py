"""Planning: `Engine.plan(now)` over N contacts in the first stage (both `aware` steps due: 2N touches)
versus a raw INSERT ... SELECT of the same 2N touch rows into a twin database; then a re-plan with
nothing due, and `Engine.record` of one event that moves one contact (re-planning it)."""

from __future__ import annotations

import json
import statistics
import time
from datetime import UTC, datetime, timedelta
from functools import partial
from itertools import islice
from typing import Any

from common import (
    database,
    insert_sql,
    kinds,
    line,
    open_engine,
    parser,
    peak_rss_mb,
    rate,
    ratio,
    raw,
    scratch_copy,
    sizes,
    sql_time,
    summary,
    timed,
    workdir,
)
from sqlalchemy import select
from sqlalchemy.event import listen as event_listen
from sqlalchemy.event import remove as event_remove
from sqlmodel import col

from outreach.db import session_scope
from outreach.engine import Engine
from outreach.evidence import EvidenceIn
from outreach.kinds import Channel
from outreach.models import Touch, TouchStatus

STEPS = [("welcome", "nurture", "aware/welcome"), ("case-study", "nurture", "aware/case-study")]
TOUCH_COLS = ["contact_id", "dedupe_key", "stage", "stage_entry", "rule", "step", "interaction", "content", "channel",
              "channel_reason", "channel_fixed", "status", "due_at", "attempts", "created_at", "updated_at"]


def seed(engine: Engine, n: int, entered: datetime) -> None:
    """n contacts in `aware` since `entered`, with raw batched executemany."""
    conn, ph = raw(engine)
    cols = ["email", "title", "consent_email", "attributes", "stage", "stage_entered_at", "stage_entry",
            "created_at"]
    at = sql_time(engine, entered)
    rows = ((f"buyer{i}@company{i % 5000}.example", ["CTO", "CFO", "VP Sales"][i % 3], True,
             json.dumps({"industry": ["software", "finance"][i % 2]}), "aware", at, 1, at) for i in range(n))
    cur = conn.cursor()
    while batch := list(islice(rows, 5000)):
        cur.executemany(insert_sql("contact", cols, ph), batch)
    conn.commit()
    if engine.db.dialect.name == "postgresql":  # fresh statistics, as autovacuum would give a real table
        conn.cursor().execute("ANALYZE")
        conn.commit()
    conn.close()


def floor_insert_select(engine: Engine, now: datetime) -> int:
    """Both steps' touch rows, set-based, in one transaction: what the database must write anyway."""
    conn, ph = raw(engine)
    cur, total = conn.cursor(), 0
    cols = ", ".join(TOUCH_COLS)
    for step, interaction, content in STEPS:
        cur.execute(f"INSERT INTO touch ({cols}) SELECT id, id || ':aware:' || stage_entry || ':{step}', 'aware', "
                    f"stage_entry, 'playbook:aware', '{step}', '{interaction}', '{content}', 'email', "
                    f"'the default channel', {ph}, 'approved', {ph}, 0, {ph}, {ph} FROM contact WHERE stage = 'aware'",
                    (False, *[sql_time(engine, now)] * 3))
        total += cur.rowcount
    conn.commit()
    conn.close()
    return total


def floor_one(engine: Engine, now: datetime, cid: int, i: int) -> None:
    """One evidence row and one touch row, one commit: the least a recorded event that queues a touch costs."""
    conn, ph = raw(engine)
    at = sql_time(engine, now)
    cur = conn.cursor()
    cur.execute(insert_sql("evidence", ["contact_id", "type", "occurred_at", "recorded_at", "source", "data"], ph),
                (cid, "demo.requested", at, at, "bench", "{}"))
    cur.execute(insert_sql("touch", TOUCH_COLS, ph), (cid, f"floor:{i}", "evaluating", 2, "playbook:evaluating",
                                                      "strategy-session", "strategic", "x", "email", "", False,
                                                      "pending_approval", at, 0, at, at))
    conn.commit()
    conn.close()


def run(kind: str, n: int, moves: int) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    with workdir() as tmp, database(kind, tmp, "plan") as url, database(kind, tmp, "floor") as floor_url:
        engine, floor = open_engine(tmp / "proj", url), open_engine(tmp / "floorproj", floor_url)
        seed(engine, n, now - timedelta(days=5))
        seed(floor, n, now - timedelta(days=5))
        planned, plan_s = timed(lambda: engine.plan(now))
        plan_rss = peak_rss_mb()  # the whole process so far: the seed streams in batches of 5,000
        assert planned.queued == 2 * n, planned.queued
        floor_rows, floor_s = timed(lambda: floor_insert_select(floor, now))
        assert floor_rows == 2 * n, floor_rows
        line(f"{kind} plan n={n:,}", touches=planned.queued, seconds=plan_s, touches_per_s=rate(2 * n, plan_s),
             floor_s=floor_s, floor_touches_per_s=rate(2 * n, floor_s), ratio=ratio(plan_s, floor_s),
             peak_rss_mb=plan_rss)
        again, replan_s = timed(lambda: engine.plan(now))
        assert again.queued == 0, again.queued
        line(f"{kind} re-plan, nothing due", seconds=replan_s, us_per_contact=replan_s / n * 1e6,
             vs_plan=ratio(replan_s, plan_s))
        record_s: list[float] = []
        cpu_s: list[float] = []
        one_s: list[float] = []
        statements = [0]

        def count(*_: object) -> None:
            statements[0] += 1

        engine.record([EvidenceIn(type="demo.requested", occurred_at=now, contact_id=n, source="bench")], now)  # warm
        event_listen(engine.db, "before_cursor_execute", count)
        for i in range(moves):  # a demo request moves the contact to `evaluating`: a trigger and a step queue
            cid = 1 + i * (n // moves)
            event = EvidenceIn(type="demo.requested", occurred_at=now, contact_id=cid, source="bench")
            cpu = time.process_time()  # CPU time as well: on a shared machine the wall clock waits for a core
            result, seconds = timed(partial(engine.record, [event], now))
            cpu_s.append(time.process_time() - cpu)
            assert len(result.stage_changes) == 1
            record_s.append(seconds)
            one_s.append(timed(partial(floor_one, floor, now, cid, i))[1])
        event_remove(engine.db, "before_cursor_execute", count)
        rec, one = statistics.median(record_s), statistics.median(one_s)
        p99 = max(0, -(-99 * moves // 100) - 1)  # nearest rank: the target's measure
        worst = sorted(record_s)[p99]
        line(f"{kind} record 1 event + re-plan", median_ms=rec * 1000, p99_ms=worst * 1000,
             cpu_median_ms=statistics.median(cpu_s) * 1000, cpu_p99_ms=sorted(cpu_s)[p99] * 1000,
             statements=statements[0] / moves, floor_ms=one * 1000, ratio=ratio(rec, one), runs=moves)
    return [{"db": kind, "what": f"plan {n:,} contacts ({2 * n:,} touches)",
             "figure": f"{rate(2 * n, plan_s):,.0f} touches/s", "ratio": ratio(plan_s, floor_s),
             "extra": f"{plan_s:.1f} s; peak RSS {plan_rss:.0f} MB"},
            {"db": kind, "what": "re-plan, nothing due", "figure": f"{replan_s:.2f} s",
             "ratio": ratio(replan_s, floor_s),
             "extra": f"{replan_s / n * 1e6:.1f} us/contact; floor: the INSERT..SELECT"},
            {"db": kind, "what": "record 1 event + re-plan 1 contact", "figure": f"{rec * 1000:.1f} ms",
             "ratio": ratio(rec, one), "extra": f"p99 {worst * 1000:.1f} ms over {moves} runs; "
                                                                  f"{statements[0] / moves:.0f} statements"}]


def floor_kept(engine: Engine, count: int, now: datetime) -> float:
    """`count` touch rows by one INSERT ... SELECT over the contacts (as many rows per contact as it takes)
    into the same database, then rolled back: the write any plan of that many touches makes, with the
    touch table's indexes at their size."""
    conn, ph = raw(engine)
    cur = conn.cursor()
    cur.execute("SELECT count(*) FROM contact")
    per = max(1, -(-count // cur.fetchone()[0]))
    start = time.perf_counter()
    cur.execute(f"INSERT INTO touch ({', '.join(TOUCH_COLS)}) SELECT id, 'floor:' || id || ':' || g.k, stage, "
                f"stage_entry, 'playbook:' || stage, 'floor', 'nurture', 'x', 'email', 'the default channel', "
                f"false, 'approved', {ph}, 0, {ph}, {ph} FROM contact CROSS JOIN generate_series(1, {per}) AS g(k) "
                f"LIMIT {count}", [sql_time(engine, now)] * 3)
    seconds = time.perf_counter() - start
    conn.rollback()
    conn.close()
    return seconds


def run_kept(url: str, moves: int, book: int) -> list[dict[str, Any]]:
    """The plan, the re-plan and one recorded event on a copy of a database seeded by bench/report.py:
    contacts over a year in every stage, two sent touches each and their evidence. The plan is timed in
    its two parts: the planner's touches, then a slot for each new meeting touch (`Engine.plan` does
    both in one transaction), the slots for the first `book` contacts only (0: all), as a rate."""
    now = datetime.now(UTC)
    size = sizes(url)
    label = f"postgresql {size['contact']:,} contacts, {size['evidence']:,} evidence"
    with workdir() as tmp, scratch_copy(url) as copy:
        engine = open_engine(tmp / "proj", copy)
        with session_scope(engine.db) as s:
            planned, plan_s = timed(lambda: engine.planner().plan(s, now))
            waiting = s.execute(select(col(Touch.contact_id)).where(
                col(Touch.channel) == Channel.MEETING, col(Touch.meeting_start).is_(None),
                col(Touch.status).in_((TouchStatus.PENDING, TouchStatus.APPROVED))).order_by(
                col(Touch.due_at), col(Touch.id))).scalars().all()
            some = list(dict.fromkeys(waiting))[:book] if book else None
            booked, book_s = timed(lambda: engine.book_meetings(s, some))
        plan_rss = peak_rss_mb()
        tried = len(waiting) if some is None else len(some)  # one meeting each; some find no free slot
        per_meeting = book_s / max(1, tried)
        whole_s = plan_s + per_meeting * len(waiting)  # the slots not booked here at the rate measured
        with session_scope(engine.db) as s:  # the planner alone: Engine.plan would book every slot left
            again, replan_s = timed(lambda: engine.planner().plan(s, now))
        floor_s = floor_kept(engine, max(1, planned.queued), now)
        line(f"{label}: plan, the planner", touches=planned.queued, seconds=plan_s,
             touches_per_s=rate(planned.queued, plan_s), floor_s=floor_s, ratio=ratio(plan_s, floor_s),
             peak_rss_mb=plan_rss)
        line(f"{label}: plan, meeting slots", meetings=len(waiting), tried=tried, booked=booked, seconds=book_s,
             ms_per_meeting=per_meeting * 1000, all_slots_s=per_meeting * len(waiting))
        line(f"{label}: plan, whole", seconds=whole_s, touches_per_s=rate(planned.queued, whole_s),
             ratio=ratio(whole_s, floor_s), estimated="no" if booked >= len(waiting) else "yes")
        line(f"{label}: re-plan", touches=again.queued, seconds=replan_s,
             us_per_contact=replan_s / size["contact"] * 1e6)
        record_s = []
        for i in range(moves):  # contacts across the table; some move to `evaluating`, some are past it
            cid = 1 + i * (size["contact"] // moves)
            event = EvidenceIn(type="demo.requested", occurred_at=now, contact_id=cid, source="bench")
            record_s.append(timed(partial(engine.record, [event], now))[1])
        p99 = sorted(record_s)[max(0, -(-99 * moves // 100) - 1)]
        line(f"{label}: record 1 event", median_ms=statistics.median(record_s) * 1000, p99_ms=p99 * 1000, runs=moves)
    whose = f"{size['contact']:,} contacts, {size['evidence']:,} evidence"
    return [{"db": "postgresql", "what": f"plan, the planner, {whose} ({planned.queued:,} touches)",
             "figure": f"{rate(planned.queued, plan_s):,.0f} touches/s", "ratio": ratio(plan_s, floor_s),
             "extra": f"{plan_s:.1f} s; peak RSS {plan_rss:.0f} MB"},
            {"db": "postgresql", "what": f"plan, meeting slots, {whose} ({len(waiting):,} meetings)",
             "figure": f"{per_meeting * 1000:.1f} ms a meeting", "ratio": 0.0,
             "extra": f"{tried:,} tried ({booked:,} found a slot) in {book_s:.1f} s; all: "
                      f"{per_meeting * len(waiting):,.0f} s"},
            {"db": "postgresql", "what": f"re-plan, nothing due, {whose}",
             "figure": f"{replan_s:.2f} s", "ratio": ratio(replan_s, floor_s), "extra": ""},
            {"db": "postgresql", "what": f"record 1 event + re-plan, {whose}",
             "figure": f"{statistics.median(record_s) * 1000:.1f} ms", "ratio": 0.0,
             "extra": f"p99 {p99 * 1000:.1f} ms over {moves} runs"}]


def main() -> None:
    p = parser(__doc__, kept=True)
    p.add_argument("--n", type=int, default=None, help="contacts (default 200,000; quick 20,000)")
    p.add_argument("--book", type=int, default=2000,
                   help="with --db-url: book the meeting slots of this many contacts and take the rest at that "
                        "rate (0: all; default 2,000: one at a time, all of a million contacts' take hours)")
    args = p.parse_args()
    n = args.n or (20_000 if args.quick else 200_000)
    rows = []
    if args.db_url:
        for url in args.db_url.split(","):
            rows += run_kept(url, 20 if args.quick else 100, args.book)
        summary("plan", rows)
        return
    for kind in kinds(args.pg):
        rows += run(kind, n, 20 if args.quick else 200)  # 200: a p99 that is not just the worst run
    summary("plan", rows)


if __name__ == "__main__":
    main()
