"""Twilio status callbacks: single signed callbacks (form-encoded, X-Twilio-Signature over the public
URL and the form, as Twilio signs them) POSTed to /webhooks/twilio/status of `outreach run` (a child
process, as users run it) from several threads of another process, each on its own kept-alive
connection. C contacts have one sent SMS each; every SMS gets `sent` then `delivered`. The floor is
GET /healthz on the same server, from the same threads and connections: the HTTP stack with no work."""

from __future__ import annotations

import statistics
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from common import database, kinds, line, open_engine, parser, rate, summary, timed, workdir
from live import QUIET, Client, percentile, served
from plan import seed
from twilio.request_validator import RequestValidator
from webhook import seed_sent

PATH = "/webhooks/twilio/status"
Request = tuple[str, str, bytes, dict[str, str]]  # method, path, body, headers
TOKEN = "bench-auth-token"
SID = "AC" + "0" * 32


def callbacks(url: str, c: int) -> list[tuple[bytes, dict[str, str]]]:
    """`sent` then `delivered` for every contact's SMS: (form body, headers), signed."""
    validator = RequestValidator(TOKEN)
    out = []
    for status in ("sent", "delivered"):
        for i in range(1, c + 1):
            form = {"MessageSid": f"SM{i:032x}", "SmsSid": f"SM{i:032x}", "AccountSid": SID,
                    "MessageStatus": status, "SmsStatus": status, "To": f"+1555{i:07d}", "From": "+15550000000",
                    "ApiVersion": "2010-04-01"}
            headers = {"Content-Type": "application/x-www-form-urlencoded",
                       "X-Twilio-Signature": validator.compute_signature(url, form)}
            out.append((urlencode(form).encode(), headers))
    return out


def hammer(base: str, requests: list[Request], threads: int) -> tuple[list[float], float]:
    """Send every (method, path, body, headers) from `threads` threads, one kept-alive connection each;
    the seconds of each request and of the whole. Every answer must be 200."""
    local = threading.local()

    def one(req: Request) -> float:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = Client(base)
        method, path, body, headers = req

        def call() -> tuple[int, bytes]:
            if method == "GET":
                client.conn.request("GET", path)
                response = client.conn.getresponse()
                return response.status, response.read()
            return client.post(path, body, headers)

        (status, answer), seconds = timed(call)
        assert status == 200, (status, answer[:500])
        return seconds

    with ThreadPoolExecutor(threads) as pool:
        times, total = timed(lambda: list(pool.map(one, requests)))
    return times, total


def run(kind: str, c: int, threads: int) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    with workdir() as tmp, database(kind, tmp, "twilio") as db_url:
        engine = open_engine(tmp / "proj", db_url, **{"twilio.account_sid": SID, "twilio.auth_token": TOKEN},
                             **QUIET)
        seed(engine, c, now - timedelta(hours=1))
        # contact i's SMS has MessageSid SM<i, 32 hex digits>
        seed_sent(engine, c, now - timedelta(minutes=30), "sms", "twilio", lambda i: f"SM{i:032x}")
        engine.plan(now)  # what `outreach run` would plan at start, done before it starts
        signed = callbacks(engine.settings.server.public_url.rstrip("/") + PATH, c)
        posts = [("POST", PATH, body, headers) for body, headers in signed]
        with served(tmp / "proj") as server:
            hammer(server.base, [("GET", "/healthz", b"", {})] * 200 + posts[:20], threads)  # warm: imports
            cpu = server.cpu()
            times, total = hammer(server.base, posts[20:], threads)
            cpu = server.cpu() - cpu
            floor_cpu = server.cpu()
            floor_times, floor_total = hammer(server.base, [("GET", "/healthz", b"", {})] * len(times), threads)
            floor_cpu = server.cpu() - floor_cpu
        with engine.db.connect() as conn:
            recorded = conn.exec_driver_sql("SELECT count(*) FROM evidence WHERE source = 'twilio'").scalar()
        assert recorded == len(signed), (recorded, len(signed))  # every callback recorded once
    n = len(times)
    p50, p99 = statistics.median(times), percentile(times, 99)
    line(f"{kind} twilio callbacks x{n:,} ({threads} threads)", per_s=rate(n, total), p50_ms=p50 * 1000,
         p99_ms=p99 * 1000, server_cpu_ms=cpu / n * 1000, ratio=total / floor_total)
    line(f"{kind} floor: GET /healthz x{n:,}", per_s=rate(n, floor_total),
         p50_ms=statistics.median(floor_times) * 1000, p99_ms=percentile(floor_times, 99) * 1000,
         server_cpu_ms=floor_cpu / n * 1000)
    return [{"db": kind, "what": f"Twilio status callbacks ({threads} threads)", "figure": f"{rate(n, total):,.0f}/s",
             "ratio": total / floor_total, "extra": f"p50 {p50 * 1000:,.1f} ms, p99 {p99 * 1000:,.1f} ms, "
                                                          f"server CPU {cpu / n * 1000:,.2f} ms each"}]


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--contacts", type=int, default=None,
                   help="contacts with a sent SMS, two callbacks each (default 3,000; quick 300)")
    p.add_argument("--threads", type=int, default=4, help="client threads, one connection each (default 4)")
    args = p.parse_args()
    c = args.contacts or (300 if args.quick else 3_000)
    rows = []
    for kind in kinds(args.pg):
        rows += run(kind, c, args.threads)
    summary("twilio", rows)


if __name__ == "__main__":
    main()
