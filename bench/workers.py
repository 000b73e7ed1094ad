"""Workers: M approved touches dispatched on PostgreSQL by 1, 2 and 4 worker processes at once, through
the real SendGrid SDK to a Sandbox in its own child process. Issue 19's target: 2 workers at least
1.6x one.

Each worker is a child process that opens the project as `outreach worker` does and runs the
dispatcher's loop (claim a batch with SKIP LOCKED, send, record) until nothing is due; all of them
start on one signal once their imports are done, so start-up is not timed. The floor: the same Mail
Send bodies POSTed from one process with as many threads as one worker sends at once, a new
connection per POST (the SDK's own transport), in the same run. PostgreSQL only (SQLite has one
writer: more processes do not send faster there)."""

from __future__ import annotations

import multiprocessing
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from common import ALWAYS, database, line, open_engine, parser, rate, ratio, summary, workdir
from dispatch import bodies, post_all, received, sandbox
from plan import seed
from sqlalchemy import func, select

from outreach.db import session_scope
from outreach.models import Touch
from tests.support.db import pg_available

COUNTS = (1, 2, 4)


def _work(root: str, worker_id: str, go: Any, out: Any) -> None:
    """One worker process: open the project, wait for the signal, dispatch until nothing is due."""
    from outreach.engine import Engine
    from outreach.project import Project

    engine = Engine(Project.open(Path(root), migrate=False), worker_id=worker_id)
    dispatcher = engine.dispatcher()
    out.put(("ready", worker_id, 0))
    go.wait()
    result = dispatcher.run_once(clock=lambda: datetime.now(UTC))
    out.put(("done", worker_id, result.sent))


def dispatch_with(root: Path, n: int) -> tuple[float, int]:
    """Seconds for n worker processes to send everything due; how many they sent."""
    ctx = multiprocessing.get_context("spawn")
    go, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_work, args=(str(root), f"bench-{i}", go, out), daemon=True) for i in range(n)]
    for p in procs:
        p.start()
    for _ in procs:
        assert out.get(timeout=120)[0] == "ready"
    start = time.perf_counter()
    go.set()
    sent = sum(out.get(timeout=600)[2] for _ in procs)
    seconds = time.perf_counter() - start
    for p in procs:
        p.join(30)
    return seconds, sent


def run(m: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    rates: dict[int, float] = {}
    # the project's batch (200) where M leaves every worker many batches; smaller at --quick, or one
    # worker would claim most of the touches in one go and the others wait
    batch = 200 if m >= 3_000 else max(10, m // 20)
    with workdir() as tmp, sandbox() as url:
        for n in COUNTS:
            with database("postgresql", tmp, f"workers{n}") as db_url:
                now = datetime.now(UTC)
                root = tmp / f"proj{n}"
                engine = open_engine(root, db_url, **{
                    "providers.email": "sendgrid", "sendgrid.api_key": "SG.bench", "sendgrid.api_base": url,
                    "sendgrid.webhook_public_key": "",
                    "policy.send_windows": {"email": ALWAYS, "sms": ALWAYS, "meeting": ALWAYS},
                    "policy.caps": {"all": {"day": 100}}, "dispatch.batch_size": batch})
                seed(engine, m, now - timedelta(minutes=1))
                assert engine.plan(now).queued == m
                httpx.delete(f"{url}/sandbox/messages")
                seconds, sent = dispatch_with(root, n)
                with session_scope(engine.db) as s:
                    done = s.execute(select(func.count()).where(Touch.status == "sent")).scalar()
                assert sent == done == m == received(url), (sent, done, m, received(url))
                if n == 1:  # the floor, from the bodies the engine sent
                    payloads = bodies(engine)
                    httpx.delete(f"{url}/sandbox/messages")
                    floor = post_all(url, payloads, engine.settings.dispatch.concurrency, keep_alive=False)
                    line("floor: POST, new connection", seconds=floor, msgs_per_s=rate(m, floor))
                engine.db.dispose()
            rates[n] = rate(m, seconds)
            line(f"postgresql {n} worker(s) m={m:,}", seconds=seconds, msgs_per_s=rates[n], batch=batch,
                 vs_one=rates[n] / rates[1], ratio=ratio(seconds, floor))
            rows.append({"db": "postgresql", "what": f"dispatch {m:,} emails, {n} worker process(es)",
                         "figure": f"{rates[n]:,.0f} msgs/s", "ratio": ratio(seconds, floor),
                         "extra": f"x{rates[n] / rates[1]:.2f} one worker's rate"})
    return rows


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--m", type=int, default=None, help="touches per run (default 3,000; quick 300)")
    args = p.parse_args()
    if why := pg_available():
        raise SystemExit(f"workers.py needs PostgreSQL: {why}")
    m = args.m or (300 if args.quick else 3_000)
    summary("workers", run(m))


if __name__ == "__main__":
    main()
