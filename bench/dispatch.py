"""Dispatch: M approved touches sent by `Engine.dispatch` through the real SendGrid SDK to a Sandbox,
versus raw HTTP POSTs of the same bodies to the same sandbox with the same concurrency.

The sandbox runs in a child process, so that it does not share this process's GIL with the
dispatcher. Two floors: a new connection per POST (what the SDK does: urllib, no keep-alive) and one
kept-alive connection per thread (what any HTTP client could do)."""

from __future__ import annotations

import http.client
import json
import multiprocessing
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from common import ALWAYS, database, kinds, line, open_engine, parser, rate, ratio, summary, timed, workdir
from plan import seed
from sqlalchemy import func, select

from channels.sendgrid import build_mail
from outreach.batch_loads import contacts_by_id
from outreach.db import session_scope
from outreach.engine import Engine
from outreach.messages import build_message
from outreach.models import Touch
from outreach.sandbox.server import Sandbox


def _serve(conn: Any) -> None:
    with Sandbox(callbacks=False) as sb:
        conn.send(sb.url)
        conn.recv()  # until told to stop


@contextmanager
def sandbox() -> Iterator[str]:
    """A Sandbox in a child process; its base URL."""
    parent, child = multiprocessing.get_context("spawn").Pipe()
    proc = multiprocessing.get_context("spawn").Process(target=_serve, args=(child,), daemon=True)
    proc.start()
    try:
        yield parent.recv()
    finally:
        parent.send("stop")
        proc.join(10)


def received(url: str) -> int:
    return len(httpx.get(f"{url}/sandbox/messages", params={"kind": "email"}, timeout=60).json())


def bodies(engine: Engine) -> list[bytes]:
    """The Mail Send bodies of the sent touches, rendered again as the dispatcher rendered them."""
    p = engine.project
    with session_scope(engine.db) as s:
        touches = list(s.execute(select(Touch).where(Touch.status == "sent").order_by(Touch.id)).scalars())
        contacts = contacts_by_id(s, sorted({t.contact_id for t in touches}))
        return [json.dumps(build_mail(build_message(p.settings, p.content_dir, t, contacts[t.contact_id],
                                                    p.rules))).encode() for t in touches]


def post_all(url: str, payloads: list[bytes], workers: int, keep_alive: bool) -> float:
    """POST every body with `workers` threads; seconds taken. Every answer must be 202."""
    host = urlsplit(url).netloc
    headers = {"Authorization": "Bearer SG.bench", "Content-Type": "application/json", "Accept": "application/json"}
    local = threading.local()

    def post(body: bytes) -> int:
        conn = getattr(local, "conn", None) if keep_alive else None
        if conn is None:
            conn = local.conn = http.client.HTTPConnection(host, timeout=30)
        conn.request("POST", "/v3/mail/send", body, headers)
        response = conn.getresponse()
        response.read()
        if not keep_alive:
            conn.close()
        return response.status

    with ThreadPoolExecutor(workers) as pool:
        statuses, seconds = timed(lambda: list(pool.map(post, payloads)))
    assert set(statuses) == {202}, set(statuses)
    return seconds


def run(kind: str, m: int) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    with workdir() as tmp, database(kind, tmp, "dispatch") as db_url, sandbox() as url:
        engine = open_engine(tmp / "proj", db_url, **{
            "providers.email": "sendgrid", "sendgrid.api_key": "SG.bench", "sendgrid.api_base": url,
            "sendgrid.webhook_public_key": "unused: no webhooks in this bench",
            "policy.send_windows": {"email": ALWAYS, "sms": ALWAYS, "meeting": ALWAYS},
            "policy.caps": {"all": {"day": 100}}})
        seed(engine, m, now - timedelta(minutes=1))
        assert engine.plan(now).queued == m  # the welcome step: m approved email touches, due now
        workers, batch = engine.settings.dispatch.concurrency, engine.settings.dispatch.batch_size
        result, seconds = timed(lambda: engine.dispatch(now))
        with session_scope(engine.db) as s:
            sent = s.execute(select(func.count()).where(Touch.status == "sent")).scalar()
        assert result.sent == sent == m == received(url), (result, sent, received(url))
        payloads = bodies(engine)
        httpx.delete(f"{url}/sandbox/messages")
        fresh = post_all(url, payloads, workers, keep_alive=False)
        kept = post_all(url, payloads, workers, keep_alive=True)
        assert received(url) == 2 * m
    line(f"{kind} dispatch m={m:,}", seconds=seconds, msgs_per_s=rate(m, seconds), concurrency=workers,
         batch=batch)
    line(f"{kind} floor: POST, new connection", seconds=fresh, msgs_per_s=rate(m, fresh), ratio=ratio(seconds, fresh))
    line(f"{kind} floor: POST, keep-alive", seconds=kept, msgs_per_s=rate(m, kept), ratio=ratio(seconds, kept))
    return [{"db": kind, "what": f"dispatch {m:,} emails (SendGrid SDK)", "figure": f"{rate(m, seconds):,.0f} msgs/s",
             "ratio": ratio(seconds, fresh), "extra": f"x{ratio(seconds, kept):.1f} vs keep-alive POSTs"}]


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--m", type=int, default=None, help="touches (default 5,000; quick 500)")
    args = p.parse_args()
    m = args.m or (500 if args.quick else 5_000)
    rows = []
    for kind in kinds(args.pg):
        rows += run(kind, m)
    summary("dispatch", rows)


if __name__ == "__main__":
    main()
