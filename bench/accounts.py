"""Account stages: `refresh_stages` over A accounts of 10 members each (members' stages and roles
spread so that about a third of the accounts advance), versus a floor that only reads every member's
(account, id, email, role, stage) row with the DBAPI; then the same refresh again, when nothing moves."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from itertools import islice

from common import (
    database,
    insert_sql,
    kinds,
    line,
    open_engine,
    parser,
    ratio,
    raw,
    sql_time,
    summary,
    timed,
    workdir,
)

from outreach.accounts.store import refresh_stages
from outreach.db import session_scope
from outreach.engine import Engine

MEMBERS = 10
ROLES = ["economic_buyer", "champion", "technical_evaluator", "user", "legal", None]
STAGES = ["aware", "aware", "aware", "interested", "evaluating"]


def seed(engine: Engine, accounts: int, now: datetime) -> None:
    conn, ph = raw(engine)
    cur = conn.cursor()
    at = sql_time(engine, now)
    acc_rows = ((f"ACC-{a}", f"Company {a}", f"company{a}.example", "", json.dumps({}), at, at)
                for a in range(accounts))
    while batch := list(islice(acc_rows, 5000)):
        cur.executemany(insert_sql("account", ["id", "name", "domain", "stage", "stage_proof", "created_at",
                                               "updated_at"], ph), batch)
    cols = ["email", "attributes", "stage", "stage_entered_at", "stage_entry", "created_at", "account_id", "role"]
    rows = ((f"p{m}@company{a}.example", "{}", STAGES[(a * 7 + m * 3) % len(STAGES)] if a % 3 == 0 else "aware",
             at, 1, at, f"ACC-{a}",
             ROLES[(a + m) % len(ROLES)]) for a in range(accounts) for m in range(MEMBERS))
    while batch := list(islice(rows, 5000)):
        cur.executemany(insert_sql("contact", cols, ph), batch)
    conn.commit()
    if engine.db.dialect.name == "postgresql":
        cur.execute("ANALYZE")
        conn.commit()
    conn.close()


def floor_read(engine: Engine) -> int:
    conn, _ph = raw(engine)
    cur = conn.cursor()
    cur.execute("SELECT account_id, id, email, role, stage FROM contact WHERE account_id IS NOT NULL")
    n = len(cur.fetchall())
    conn.close()
    return n


def run(kind: str, accounts: int) -> list[dict[str, object]]:
    now = datetime(2026, 3, 2, 15, tzinfo=UTC)
    with workdir() as tmp, database(kind, tmp, "accounts") as url:
        engine = open_engine(tmp / "proj", url)
        seed(engine, accounts, now)
        rules = engine.project.rules
        ids = [f"ACC-{a}" for a in range(accounts)]

        def refresh() -> int:
            with session_scope(engine.db) as s:
                return len(refresh_stages(s, rules.accounts, rules.stage_ids, ids, now, rules.account_rule_at))

        moved, seconds = timed(refresh)
        again, seconds_again = timed(refresh)
        members, floor = timed(lambda: floor_read(engine))
        line(f"{kind} refresh {accounts:,} accounts", members=members, moved=moved, seconds=seconds,
             accounts_per_s=accounts / seconds, x_floor=ratio(seconds, floor))
        line(f"{kind} refresh again (nothing moves)", moved=again, seconds=seconds_again,
             x_floor=ratio(seconds_again, floor))
        return [{"db": kind, "what": f"account stages, {accounts:,} x {MEMBERS}", "figure": f"{seconds:.1f} s",
                 "ratio": round(ratio(seconds, floor), 1)}]


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--accounts", type=int, default=0, help="accounts (default 100,000; --quick 5,000)")
    args = p.parse_args()
    accounts = args.accounts or (5_000 if args.quick else 100_000)
    rows = []
    for kind in kinds(args.pg):
        rows += run(kind, accounts)
    summary("accounts", rows)


if __name__ == "__main__":
    main()
