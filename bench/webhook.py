"""SendGrid Event Webhook: signed batches of 1,000 events POSTed over one kept-alive connection to
/webhooks/sendgrid/events of `outreach run` (a child process, as users run it) over C contacts with one
sent email each, versus raw executemany INSERTs of 1,000 evidence rows into the same database. The mix:
delivered, open, processed, click (moves the contact to `interested` and re-plans it), bounce,
unsubscribe; then the first batch again (all repeats). `--preload-evidence N` first fills the evidence
table with N rows (raw bulk insert), to see ingest on a large database."""

from __future__ import annotations

import json
import random
import statistics
import time
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Any

from common import (
    database,
    insert_sql,
    kinds,
    line,
    open_engine,
    parser,
    rate,
    ratio,
    raw,
    sql_time,
    summary,
    timed,
    workdir,
)
from live import QUIET, Client, percentile, served
from plan import TOUCH_COLS, seed

from channels.sendgrid_webhooks import parse_events, verify_event_signature
from outreach.engine import Engine
from outreach.sandbox import sendgrid as sg

URL = "/webhooks/sendgrid/events"
MIX = [("delivered", 40), ("open", 35), ("processed", 10), ("click", 10), ("bounce", 3), ("unsubscribe", 2)]
EVIDENCE_COLS = ["contact_id", "type", "occurred_at", "recorded_at", "source", "touch_id", "channel", "interaction",
                 "dedupe_key", "data"]


def seed_sent(engine: Engine, c: int, at: datetime) -> None:
    """One sent welcome email per contact; contact i has touch i and message id sgmsg<i>."""
    conn, ph = raw(engine)
    t = sql_time(engine, at)
    cols = [*TOUCH_COLS, "sent_at", "provider", "provider_message_id"]
    rows = ((i, f"{i}:aware:1:welcome", "aware", 1, "playbook:aware", "welcome", "nurture", "aware/welcome", "email",
             "the default channel", False, "sent", t, 1, t, t, t, "sendgrid", f"sgmsg{i}") for i in range(1, c + 1))
    cur = conn.cursor()
    while batch := list(islice(rows, 5000)):
        cur.executemany(insert_sql("touch", cols, ph), batch)
    conn.commit()
    conn.close()


def batches(c: int, count: int, size: int) -> list[list[dict[str, Any]]]:
    rnd = random.Random(7)
    names = [name for name, weight in MIX for _ in range(weight)]
    stamp = int(time.time()) - 60
    out = []
    for b in range(count):
        events = []
        for j in range(size):
            i, name = rnd.randint(1, c), rnd.choice(names)
            ev = {"email": f"buyer{i - 1}@company{(i - 1) % 5000}.example", "timestamp": stamp, "event": name,
                  "sg_event_id": f"bench-{b}-{j}", "sg_message_id": f"sgmsg{i}.filter0001.16648.5515E0B88.0",
                  "outreach_touch_id": str(i), "category": ["nurture"]}
            if name == "click":
                ev["url"] = "https://example.com/pricing"
            elif name == "bounce":
                ev.update(type="bounce", reason="550 5.1.1 unknown user", status="5.1.1")
            events.append(ev)
        out.append(events)
    return out


def floor_insert(engine: Engine, size: int, tag: int, now: datetime) -> float:
    """`size` evidence rows, raw executemany, one commit."""
    conn, ph = raw(engine)
    at = sql_time(engine, now)
    rows = [(1 + j % 1000, "email.opened", at, at, "sendgrid", 1 + j % 1000, "email", "nurture",
             f"floor-{tag}-{j}", json.dumps({"event": "open", "sg_event_id": f"floor-{tag}-{j}"}))
            for j in range(size)]

    def insert() -> None:
        conn.cursor().executemany(insert_sql("evidence", EVIDENCE_COLS, ph), rows)
        conn.commit()

    seconds = timed(insert)[1]
    conn.close()
    return seconds


def preload(engine: Engine, n: int, c: int, at: datetime) -> float:
    """n evidence rows over the c contacts (the mix's types, a day before `at`), raw executemany in
    batches of 20,000; seconds taken."""
    conn, ph = raw(engine)
    t = sql_time(engine, at - timedelta(days=1))
    types = [{"delivered": "email.delivered", "open": "email.opened", "processed": "provider.processed",
              "click": "email.clicked", "bounce": "email.bounced", "unsubscribe": "email.unsubscribed"}[name]
             for name, weight in MIX for _ in range(weight)]
    data = json.dumps({"event": "preloaded"})
    rows = ((1 + j % c, types[j % len(types)], t, t, "sendgrid", 1 + j % c, "email", "nurture", f"pre-{j}", data)
            for j in range(n))
    start = time.perf_counter()
    cur = conn.cursor()
    while batch := list(islice(rows, 20_000)):
        cur.executemany(insert_sql("evidence", EVIDENCE_COLS, ph), batch)
        conn.commit()
    if engine.db.dialect.name == "postgresql":
        conn.cursor().execute("ANALYZE")
        conn.commit()
    conn.close()
    return time.perf_counter() - start


def run(kind: str, c: int, count: int, evidence: int = 0, size: int = 1000) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    key = sg.load_or_create_key(None)
    with workdir() as tmp, database(kind, tmp, "webhook") as url:
        engine = open_engine(tmp / "proj", url, **{"sendgrid.webhook_public_key": sg.public_key_b64(key)}, **QUIET)
        seed(engine, c, now - timedelta(hours=1))
        seed_sent(engine, c, now - timedelta(minutes=30))
        engine.plan(now)  # what `outreach run` would plan at start, done before it starts
        if evidence:
            seconds = preload(engine, evidence, c, now)
            line(f"{kind} preloaded evidence", rows=evidence, seconds=seconds, rows_per_s=rate(evidence, seconds))
        bodies = [json.dumps(events).encode() for events in batches(c, count, size)]
        warm = json.dumps(batches(c, 1, 10)[0]).encode().replace(b"bench-0-", b"warm-")
        # signed before the clock starts: signing is the sender's work, not the server's
        signed = [(body, {**sg.sign(key, body), "Content-Type": "application/json"}) for body in [warm, *bodies]]
        with served(tmp / "proj") as server:
            client = Client(server.base)

            def post(body: bytes, headers: dict[str, str]) -> dict[str, int]:
                status, answer = client.post(URL, body, headers)
                assert status == 200, (status, answer[:2000])
                return dict(json.loads(answer))

            post(*signed[0])  # imports, caches, the connection
            times = []
            cpu = server.cpu()
            for body, headers in signed[1:]:
                got, seconds = timed(lambda: post(body, headers))  # noqa: B023 (called at once)
                assert got["recorded"] == size and not got["unmatched"], got
                times.append(seconds)
            cpu = (server.cpu() - cpu) / count
            again, repeat_s = timed(lambda: post(*signed[1]))
            assert again["duplicates"] == size, again
            client.close()
        headers = sg.sign(key, bodies[0])
        parse_s = timed(lambda: (verify_event_signature(sg.public_key_b64(key), bodies[0], *headers.values()),
                                 parse_events(bodies[0])))[1]
        floors = [floor_insert(engine, size, b, now) for b in range(count)]
    batch, p99, floor = statistics.median(times), percentile(times, 99), statistics.median(floors)
    total = sum(times)
    where = f" ({evidence:,} evidence rows)" if evidence else ""
    line(f"{kind} webhook {size:,} events x{count}{where}", median_ms=batch * 1000, p99_ms=p99 * 1000,
         events_per_s=rate(size * count, total), server_cpu_ms=cpu * 1000, floor_ms=floor * 1000,
         ratio=ratio(batch, floor), contacts=c)
    line(f"{kind} webhook repeat (all duplicates)", ms=repeat_s * 1000, ratio=ratio(repeat_s, floor))
    line(f"{kind} verify + parse only (in process)", ms=parse_s * 1000)
    return [{"db": kind, "what": f"webhook batch of {size:,} events{where}", "figure": f"{batch * 1000:,.0f} ms",
             "ratio": ratio(batch, floor),
             "extra": f"{rate(size * count, total):,.0f} events/s, p99 {p99 * 1000:,.0f} ms, "
                      f"server CPU {cpu * 1000:,.0f} ms"},
            {"db": kind, "what": f"webhook batch repeated (duplicates){where}", "figure": f"{repeat_s * 1000:,.0f} ms",
             "ratio": ratio(repeat_s, floor), "extra": ""}]


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--contacts", type=int, default=None,
                   help="contacts with a sent email (default 20,000; quick 5,000)")
    p.add_argument("--batches", type=int, default=None, help="batches of 1,000 events (default 30; quick 3)")
    p.add_argument("--preload-evidence", type=int, default=0, metavar="N",
                   help="fill the evidence table with N rows first (e.g. 10000000)")
    args = p.parse_args()
    c = args.contacts or (5_000 if args.quick else 20_000)
    count = args.batches or (3 if args.quick else 30)
    rows = []
    for kind in kinds(args.pg):
        rows += run(kind, c, count, args.preload_evidence)
    summary("webhook", rows)


if __name__ == "__main__":
    main()
