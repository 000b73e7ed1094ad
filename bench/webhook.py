"""SendGrid Event Webhook: signed batches of 1,000 events POSTed to /webhooks/sendgrid/events (FastAPI
TestClient, in process) over C contacts with one sent email each, versus raw executemany INSERTs of
1,000 evidence rows into the same database. The mix: delivered, open, processed, click (moves the
contact to `interested` and re-plans it), bounce, unsubscribe; then the first batch again (all repeats)."""

from __future__ import annotations

import json
import random
import statistics
import time
import warnings
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
    rate,
    ratio,
    raw,
    sql_time,
    summary,
    timed,
    workdir,
)
from plan import TOUCH_COLS, seed

from channels.sendgrid_webhooks import parse_events, verify_event_signature
from outreach.engine import Engine
from outreach.sandbox import sendgrid as sg
from outreach.web.app import create_app

with warnings.catch_warnings():  # starlette's notice that httpx is deprecated for its TestClient
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

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


def run(kind: str, c: int, count: int, size: int = 1000) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    key = sg.load_or_create_key(None)
    with workdir() as tmp, database(kind, tmp, "webhook") as url:
        engine = open_engine(tmp / "proj", url, **{"sendgrid.webhook_public_key": sg.public_key_b64(key)})
        seed(engine, c, now - timedelta(hours=1))
        seed_sent(engine, c, now - timedelta(minutes=30))
        bodies = [json.dumps(events).encode() for events in batches(c, count, size)]
        client = TestClient(create_app(engine))

        def post(body: bytes) -> dict[str, int]:
            headers = {**sg.sign(key, body), "Content-Type": "application/json"}
            response = client.post(URL, content=body, headers=headers)
            assert response.status_code == 200, response.text
            return dict(response.json())

        post(json.dumps(batches(c, 1, 10)[0]).encode().replace(b"bench-0-", b"warm-"))  # imports, caches
        times = []
        for body in bodies:
            got, seconds = timed(partial(post, body))
            assert got["recorded"] == size and not got["unmatched"], got
            times.append(seconds)
        again, repeat_s = timed(lambda: post(bodies[0]))
        assert again["duplicates"] == size, again
        headers = sg.sign(key, bodies[0])
        parse_s = timed(lambda: (verify_event_signature(sg.public_key_b64(key), bodies[0], *headers.values()),
                                 parse_events(bodies[0])))[1]
        floors = [floor_insert(engine, size, b, now) for b in range(count)]
    batch, floor = statistics.median(times), statistics.median(floors)
    line(f"{kind} webhook {size:,} events x{count}", median_ms=batch * 1000, events_per_s=rate(size, batch),
         floor_ms=floor * 1000, ratio=ratio(batch, floor), contacts=c)
    line(f"{kind} webhook repeat (all duplicates)", ms=repeat_s * 1000, ratio=ratio(repeat_s, floor))
    line(f"{kind} verify + parse only", ms=parse_s * 1000)
    return [{"db": kind, "what": f"webhook batch of {size:,} events", "figure": f"{batch * 1000:,.0f} ms",
             "ratio": ratio(batch, floor), "extra": f"{rate(size, batch):,.0f} events/s"},
            {"db": kind, "what": "webhook batch repeated (duplicates)", "figure": f"{repeat_s * 1000:,.0f} ms",
             "ratio": ratio(repeat_s, floor), "extra": ""}]


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--contacts", type=int, default=None,
                   help="contacts with a sent email (default 20,000; quick 5,000)")
    p.add_argument("--batches", type=int, default=None, help="batches of 1,000 events (default 10; quick 3)")
    args = p.parse_args()
    c = args.contacts or (5_000 if args.quick else 20_000)
    count = args.batches or (3 if args.quick else 10)
    rows = []
    for kind in kinds(args.pg):
        rows += run(kind, c, count)
    summary("webhook", rows)


if __name__ == "__main__":
    main()
