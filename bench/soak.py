"""A soak run on PostgreSQL: real `outreach run` and `outreach worker` processes sending through the
sandbox, whose scripted buyer answers every channel, with a rep approving and a website posting
evidence through the API, and faults injected; then the invariants, checked from the database and
the sandbox's log. Exits 1 and names the invariant that broke (issue 12).

    python bench/soak.py --minutes 2 --contacts 300            # what .ci/run runs
    python bench/soak.py --minutes 60 --contacts 3000 --workers 2
    python bench/soak.py --faults none                         # or a subset: kill,restart,503,sandbox,db

`kill` SIGKILLs a worker (and starts it again): the live processes' heartbeats must settle what it
held `sending` within a minute; `dead_worker_sending_max_s` is the longest such a touch stayed `sending`.

Each run works in a new PostgreSQL database (OUTREACH_TEST_PG's server, uniquely named, dropped
afterwards unless --keep) and a temporary project folder."""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from bisect import bisect_right
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/soak.py` puts bench/ first, not the project
    sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from sqlalchemy import text  # noqa: E402

from outreach import db, tokens  # noqa: E402
from outreach.learning import counts as learning_counts  # noqa: E402
from outreach.project import Project  # noqa: E402
from tests.support import make_project  # noqa: E402
from tests.support.db import PG_URL, drop_pg_database, drop_template, fresh_pg_database, pg_available  # noqa: E402

# One zone per offset round the clock, so that whatever the hour the soak starts, most buyers are in
# their working day (the engine sends, and the faults meet real sends) and the rest are outside their
# windows (the engine must hold them).
ZONES = ["Pacific/Honolulu", "America/Anchorage", "America/Los_Angeles", "America/Denver", "America/Chicago",
         "America/New_York", "America/Halifax", "America/Sao_Paulo", "Atlantic/South_Georgia", "Atlantic/Azores",
         "Europe/London", "Europe/Berlin", "Europe/Athens", "Africa/Nairobi", "Asia/Dubai", "Asia/Karachi",
         "Asia/Kolkata", "Asia/Dhaka", "Asia/Bangkok", "Asia/Singapore", "Asia/Tokyo", "Australia/Sydney",
         "Pacific/Noumea", "Pacific/Auckland"]
WORKING_HOURS = range(9, 19)  # local hours at the start that stay inside every channel's window for an hour


def zones_by_hour(now: datetime) -> tuple[list[str], list[str]]:
    """The zones where it is working time now, and the others."""
    working = [z for z in ZONES if now.astimezone(ZoneInfo(z)).hour in WORKING_HOURS]
    return working, [z for z in ZONES if z not in working]


WINDOWS = {"email": ("06:00", "23:00"), "sms": ("08:00", "21:00"), "meeting": ("07:00", "22:00")}
CAPS = {"all": 4, "sms": 2}  # a day, per contact, in the contact's zone
SMS_RATE = 2.0
FAULTS = ("kill", "restart", "503", "sandbox", "db")
TWILIO_TOKEN = "soak-twilio-token"
ACCOUNT = "AC" + "5" * 32

RULES = """version: 1
stages:
  - id: aware
  - id: interested
    reached_by: [email.clicked, email.replied, sms.replied]
  - id: evaluating
    reached_by: [meeting.accepted, demo.requested, {event: pricing.viewed, count: 2, within: 14d}]
  - id: deciding
    reached_by: [proposal.requested]
interactions:
  strategic: {channels: [meeting, email]}
  routine:   {channels: [email, sms]}
  reminder:  {channels: [sms, email]}
  nurture:   {channels: [email]}
learning: {similar_by: [title, industry], explore: 0.05}
playbooks:
  aware:
    - {id: welcome, after: 0s, interaction: nurture, content: aware/welcome}
    - {id: case-study, after: 1m, interaction: nurture, content: aware/case-study, skip_if: [email.clicked]}
  interested:
    - {id: check-in, after: 20s, interaction: routine, content: interested/check-in, approval: rep}
    - {id: webinar-reminder, after: 1m, interaction: reminder, content: interested/webinar-reminder}
  evaluating:
    - {id: strategy-session, after: 0s, interaction: strategic, content: evaluating/strategy-session,
       approval: rep, meeting: {duration: 45m}}
triggers:
  - {id: demo-confirmation, on: demo.requested, interaction: reminder, content: evaluating/demo-confirmation,
     within: 1d}
"""

# The buyer, by the part of the address the contact generator gives each kind of buyer.
BUYER = """
- {match: {to: "*.click@*"}, on: email, after: 2s, do: click, url: "https://example.com/pricing"}
- {match: {to: "*.reply@*"}, on: email, after: 3s, do: reply, text: "Interesting. Can we talk next week?"}
- {match: {to: "*.unsub@*"}, on: email, after: 2s, do: unsubscribe}
- {match: {to: "*.bounce@*"}, on: email, after: 1s, do: bounce}
- {match: {to: "*"}, on: email, after: 4s, do: open}
- {match: {to: "*"}, on: invite, after: 3s, do: accept, comment: "See you then"}
- {match: {to: "+1212*"}, on: sms, after: 2s, do: stop}
- {match: {to: "+1646*"}, on: sms, after: 2s, do: reply, text: "Yes please"}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None,
         timeout: float = 10.0) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={
        "Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as answer:
            raw = answer.read()
            is_json = answer.headers.get("Content-Type", "").startswith("application/json")
            return answer.status, json.loads(raw) if raw and is_json else None
    except urllib.error.HTTPError as exc:
        return exc.code, None


def wait_for(url: str, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            http("GET", url, timeout=2.0)
            return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"soak: {url} did not answer within {timeout:.0f} s")


def rss_mb(pid: int) -> float | None:
    try:
        for row in Path(f"/proc/{pid}/status").read_text().splitlines():
            if row.startswith("VmRSS:"):
                return int(row.split()[1]) / 1024
    except OSError:
        return None
    return None  # pragma: no cover


@dataclass
class Proc:
    name: str
    argv: list[str]
    log: Path
    env: dict[str, str]
    popen: subprocess.Popen[bytes] | None = None
    exits: list[tuple[int | None, float]] = field(default_factory=list)  # (code, seconds to stop)

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT, env=self.env,
                                          cwd=self.log.parent)

    def stop(self, timeout: float = 60.0) -> None:
        """SIGTERM, as systemd, Docker and Kubernetes stop a service; SIGKILL only after `timeout`."""
        if self.popen is None:
            return
        if self.popen.poll() is not None:  # it stopped by itself before we asked: a crash
            self.exits.append((self.popen.returncode, -1.0))
            self.popen = None
            return
        started = time.monotonic()
        self.popen.send_signal(signal.SIGTERM)
        try:
            code: int | None = self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()
            code = None
        self.exits.append((code, time.monotonic() - started))
        self.popen = None


class Soak:
    def __init__(self, args: argparse.Namespace, work: Path, url: str) -> None:
        self.args = args
        self.work = work
        self.url = url
        self.rnd = random.Random(args.seed)
        self.root = work / "proj"
        self.sandbox_port, self.engine_port = free_port(), free_port()
        self.sandbox_url = f"http://127.0.0.1:{self.sandbox_port}"
        self.engine_url = f"http://127.0.0.1:{self.engine_port}"
        self.secret = secrets.token_hex(32)
        self.emails: list[str] = []
        self.consent: dict[str, tuple[bool, bool]] = {}  # email -> (email consent, sms consent) as imported
        self.messages: dict[str, dict[str, Any]] = {}  # the sandbox's accepted messages, by provider id
        self.duplicate_ids: list[str] = []
        self.emitted: dict[tuple[Any, ...], dict[str, Any]] = {}
        self.api_answers: Counter[int] = Counter()
        self.approvals = 0
        self.rss: dict[tuple[str, int], list[tuple[float, float]]] = defaultdict(list)
        self.faults: list[tuple[str, float, float]] = []  # (what, started, ended) in epoch seconds
        self.killed: list[str] = []  # the worker ids (Touch.claimed_by) of the workers SIGKILLed
        self.stop_loops = threading.Event()
        self.lock = threading.Lock()
        self.started = time.time()
        self.figures: dict[str, Any] = {}
        self.elapsed = 0.0
        env = {**os.environ, "PYTHONPATH": str(ROOT), "OUTREACH_PROJECT": str(self.root)}
        cli = [sys.executable, "-m", "outreach.cli"]
        key_file = work / "sandbox-key.pem"
        inbound = tokens.short_mac(self.secret, "inbound-parse", 24)
        self.sandbox = Proc("sandbox", [*cli, "sandbox", "--port", str(self.sandbox_port), "--key-file",
                                        str(key_file), "--engine-url", self.engine_url, "--twilio-token",
                                        TWILIO_TOKEN, "--inbound-url",
                                        f"{self.engine_url}/webhooks/sendgrid/inbound?token={inbound}",
                                        "--script", str(work / "buyer.yaml")], work / "sandbox.log", env)
        self.run = Proc("run", [*cli, "run", "--project", str(self.root), "--port", str(self.engine_port)],
                        work / "run.log", env)
        self.workers = [Proc(f"worker{i}", [*cli, "worker", "--project", str(self.root)], work / f"worker{i}.log",
                             env) for i in range(args.workers)]
        self.cli = cli
        self.env = env

    # --- setting up -------------------------------------------------------------------------------

    def setup(self) -> None:
        (self.work / "buyer.yaml").write_text(BUYER)
        self.sandbox.start()
        wait_for(f"{self.sandbox_url}/sandbox/keys")
        _, keys = http("GET", f"{self.sandbox_url}/sandbox/keys")
        windows = {ch: {"days": "mon-sun", "hours": f"{a}-{b}"} for ch, (a, b) in WINDOWS.items()}
        make_project(self.root, self.url, **{
            "providers.email": "sendgrid", "providers.sms": "twilio",
            "sendgrid.api_key": "SG.soak", "sendgrid.api_base": self.sandbox_url,
            "sendgrid.webhook_public_key": keys["sendgrid_webhook_public_key"],
            "twilio.account_sid": ACCOUNT, "twilio.auth_token": TWILIO_TOKEN, "twilio.api_base": self.sandbox_url,
            "server.public_url": self.engine_url, "server.port": self.engine_port, "server.secret_key": self.secret,
            "sender.sms_rate": SMS_RATE, "policy.send_windows": windows,
            "policy.caps": {k: {"day": v} for k, v in CAPS.items()},
            "dispatch.poll_every": "2s", "dispatch.plan_every": "15s", "dispatch.retry_base": "2s",
            "dispatch.batch_size": 50, "dispatch.sending_lease": "2m"})
        (self.root / "rules" / "nurture.yaml").write_text(RULES)
        # Six members an account: the example's 3 touches a day per account, and 3 days' pause after one
        # member answers, would hold most of their touches, and the soak wants sends (and SMS).
        accounts = self.root / "rules" / "accounts.yaml"
        accounts.write_text(accounts.read_text().replace("daily_cap: 3 ", "daily_cap: 20")
                            .replace("for: 3d ", "for: 20s"))
        self.write_contacts(self.root / "contacts.csv")
        self.cli_run("contacts", "import", str(self.root / "contacts.csv"))
        out = self.cli_run("users", "add", "site@soak.example", "--role", "marketer", "--no-password")
        found = re.search(r"API token \(shown once\): (\S+)", out)
        if not found:
            raise SystemExit(f"soak: no API token in: {out}")
        self.token = found.group(1)
        self.cli_run("users", "add", "rep@soak.example", "--role", "rep", "--no-password")

    def cli_run(self, *argv: str) -> str:
        done = subprocess.run([*self.cli, *argv, "--project", str(self.root)], env=self.env, capture_output=True,
                              text=True, timeout=300, cwd=self.root)
        if done.returncode not in (0, 1):
            raise SystemExit(f"soak: outreach {' '.join(argv)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
        return done.stdout

    def write_contacts(self, path: Path) -> None:
        kinds = ["click", "reply", "quiet", "quiet", "unsub", "bounce", "click", "quiet"]
        working, closed = zones_by_hour(datetime.now(UTC))
        rows = ["email,phone,first_name,last_name,company,title,timezone,owner,consent_email,consent_sms,industry"]
        for i in range(self.args.contacts):
            kind = kinds[i % len(kinds)]
            area = ("212", "646", "415", "415")[i % 4]  # 212: texts STOP, 646: replies, 415: silent
            phone = f"+1{area}{2000000 + i:07d}"
            email = f"b{i}.{kind}@soak{i % 50}.example"  # the account, as the company
            ce, cs = self.rnd.random() > 0.05, self.rnd.random() > 0.15
            self.consent[email] = (ce, cs)
            self.emails.append(email)
            pool = closed if i % 4 == 3 else working  # a quarter outside their windows
            zone = pool[(i // 4) % len(pool)]
            rows.append(f"{email},{phone},Buyer{i},Soak,Co{i % 50},{('CTO', 'VP Sales', 'Engineer')[i % 3]},"
                        f"{zone},rep@soak.example,{'yes' if ce else 'no'},{'yes' if cs else 'no'},"
                        f"{('software', 'finance', 'retail')[i % 3]}")
        path.write_text("\n".join(rows) + "\n")

    # --- running ----------------------------------------------------------------------------------

    def start_engine(self) -> None:
        self.run.start()
        for w in self.workers:
            w.start()
        wait_for(f"{self.engine_url}/docs")

    def loops(self) -> list[threading.Thread]:
        def every(seconds: float, fn: Any) -> None:
            while not self.stop_loops.wait(seconds):
                try:
                    fn()
                except OSError:
                    pass  # the sandbox or the engine is down for a fault: the next round catches up

        jobs = [(2.0, self.sample_rss), (10.0, self.collect_sandbox), (15.0, self.post_evidence),
                (20.0, self.approve)]
        threads = [threading.Thread(target=every, args=job, daemon=True) for job in jobs]
        for t in threads:
            t.start()
        return threads

    def sample_rss(self) -> None:
        now = time.time()
        for p in [self.run, *self.workers]:
            popen = p.popen  # stop() may clear it meanwhile
            if popen is not None and popen.poll() is None and (mb := rss_mb(popen.pid)) is not None:
                self.rss[(p.name, popen.pid)].append((now, mb))

    def collect_sandbox(self) -> None:
        """The sandbox forgets on restart and keeps its last 1,000 posts: gather both as we go."""
        _, messages = http("GET", f"{self.sandbox_url}/sandbox/messages", timeout=30)
        _, emitted = http("GET", f"{self.sandbox_url}/sandbox/emitted", timeout=30)
        with self.lock:
            for m in messages or []:
                self.messages.setdefault(m.get("message_id") or m.get("sid"), m)
            for e in emitted or []:
                self.emitted[(e["at"], e["kind"], e["url"], json.dumps(e["posted"], sort_keys=True)[:200])] = e

    def post_evidence(self) -> None:
        """The website: pricing views and demo requests for a few contacts."""
        n = self.args.contacts
        for i in self.rnd.sample(range(n), min(5, n)):
            item = {"contact": {"email": self.emails[i]},
                    "type": self.rnd.choice(["pricing.viewed", "pricing.viewed", "demo.requested"]),
                    "occurred_at": datetime.now(UTC).isoformat(), "id": f"site-{secrets.token_hex(6)}", "data": {}}
            try:
                code, _ = http("POST", f"{self.engine_url}/api/evidence", item,
                               {"Authorization": f"Bearer {self.token}"}, timeout=30)
            except OSError:
                code = 0  # the engine is down (restarting): the website would try later
            with self.lock:
                self.api_answers[code] += 1

    def approve(self) -> None:
        self.cli_run("queue", "approve", "--all")
        self.approvals += 1

    def fault_kill(self) -> None:
        """SIGKILL a worker, whatever it holds, and start it again (a host lost, the OOM killer)."""
        target = self.workers[0] if self.workers else self.run
        popen = target.popen
        if popen is None or popen.poll() is not None:
            return
        began = time.time()
        with psycopg.connect(self.url.replace("+psycopg", ""), autocommit=True) as conn:
            row = conn.execute("SELECT id FROM worker WHERE pid = %s", (popen.pid,)).fetchone()
        if row is not None:
            self.killed.append(row[0])
        popen.kill()
        popen.wait()
        target.popen = None
        target.start()
        self.faults.append((f"{target.name} SIGKILLed", began, time.time()))

    def fault_restart(self) -> None:
        began = time.time()
        self.run.stop()
        time.sleep(2)
        self.run.start()
        wait_for(f"{self.engine_url}/docs")
        self.faults.append(("restart of run", began, time.time()))

    def fault_503(self) -> None:
        began = time.time()
        http("POST", f"{self.sandbox_url}/sandbox/faults", {"status": 503, "count": 20})
        self.faults.append(("provider answers 503 x20", began, time.time()))

    def fault_sandbox(self, seconds: float) -> None:
        began = time.time()
        self.collect_sandbox()
        self.sandbox.stop()
        time.sleep(seconds)
        self.sandbox.start()
        wait_for(f"{self.sandbox_url}/sandbox/keys")
        self.faults.append((f"provider stopped {seconds:.0f} s", began, time.time()))

    def fault_db(self) -> None:
        """Every connection of the engine's processes to its database dropped at once."""
        began = time.time()
        name = self.url.rsplit("/", 1)[1]
        with psycopg.connect(PG_URL.replace("+psycopg", ""), autocommit=True) as conn:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s "
                         "AND pid <> pg_backend_pid()", (name,))
        self.faults.append(("database connections dropped", began, time.time()))

    def soak(self) -> None:
        minutes = self.args.minutes
        total = minutes * 60
        chosen = set(FAULTS) if self.args.faults == "all" else {f for f in self.args.faults.split(",") if f}
        plan = [(0.15, "kill", self.fault_kill), (0.30, "restart", self.fault_restart), (0.45, "503", self.fault_503),
                (0.55, "sandbox", lambda: self.fault_sandbox(min(60.0, 0.1 * total))),
                (0.70, "db", self.fault_db)]
        self.start_engine()
        threads = self.loops()
        begin = time.time()
        for at, name, fn in plan:
            if name not in chosen:
                continue
            time.sleep(max(0.0, begin + at * total - time.time()))
            print(f"soak: fault at {time.time() - begin:.0f} s: {name}", flush=True)
            fn()
        time.sleep(max(0.0, begin + total - time.time()))
        self.stop_loops.set()
        for t in threads:
            t.join(30)
        time.sleep(self.args.drain)  # answers to the last sends come back
        self.collect_sandbox()
        self.run.stop()
        for w in self.workers:
            w.stop()
        self.collect_sandbox()
        self.sandbox.stop()
        self.elapsed = time.time() - begin

    # --- the invariants ---------------------------------------------------------------------------

    def check(self) -> list[str]:
        broken: list[str] = []
        engine = db.make_engine(self.url)
        with engine.connect() as c:
            touches = [dict(r._mapping) for r in c.execute(text(
                "SELECT t.id, t.status, t.channel, t.sent_at, t.claimed_at, t.claimed_by, t.updated_at, t.reason, "
                "t.provider_message_id, t.contact_id, "
                "c.email, c.phone, c.timezone FROM touch t JOIN contact c ON c.id = t.contact_id"))]
            suppressions = c.execute(text("SELECT contact_id, channel, at FROM suppression")).all()
            status_orphans = c.execute(text(
                "SELECT count(*) FROM evidence WHERE source = 'twilio' AND touch_id IS NULL "
                "AND (type LIKE 'provider.%' OR type IN ('sms.delivered', 'sms.failed'))")).scalar_one()
            early_left = c.execute(text(
                "SELECT count(*) FROM unattributedevent u JOIN touch t ON t.provider_message_id = "
                "u.provider_message_id")).scalar_one()
            evidence = c.execute(text("SELECT count(*) FROM evidence")).scalar_one()
            retried = c.execute(text("SELECT count(*) FROM touch WHERE status = 'sent' AND attempts > 1")).scalar_one()
            unattributed = c.execute(text("SELECT count(*) FROM unattributedevent")).scalar_one()
        sent = [t for t in touches if t["status"] == "sent"]
        by_status = Counter(t["status"] for t in touches)
        self.figures = {"contacts": self.args.contacts, "touches": len(touches),
                                        **{f"status_{k}": v for k, v in sorted(by_status.items())},
                                        "sent_after_retries": retried, "evidence": evidence,
                                        "unattributed": unattributed}

        # no touch sent twice; every acceptance recorded
        per_touch = Counter(str((m.get("custom_args") or {}).get("outreach_touch_id")) for m in self.messages.values()
                            if m["kind"] == "email")
        twice = [tid for tid, n in per_touch.items() if n > 1]
        if twice:
            broken.append(f"no touch sent twice: touches {twice[:10]} reached the provider more than once")
        # nothing left `sending` or `uncertain`, but a send whose answer was lost with the database
        def lost_with_db(t: dict[str, Any]) -> bool:
            return t["claimed_at"] is not None and any(
                what.startswith("database") and a - 60 <= t["claimed_at"].timestamp() <= b + 60
                for what, a, b in self.faults)

        def killed_mid_send(t: dict[str, Any]) -> bool:  # uncertain, never left `sending`
            return t["status"] == "uncertain" and t["claimed_by"] in self.killed

        unknown = [t for t in touches if t["status"] in ("sending", "uncertain")]
        excused = [t for t in unknown if lost_with_db(t) or killed_mid_send(t)]
        stranded = [t["id"] for t in unknown if not (lost_with_db(t) or killed_mid_send(t))]
        if stranded:
            broken.append(f"no touch left sending (or uncertain) but when the database was lost mid-send: "
                          f"{len(stranded)} touch(es), e.g. {stranded[:10]}")
        self.figures["outcome_lost_with_db"] = len([t for t in excused if lost_with_db(t)])
        # a SIGKILLed worker's touches: settled by the others' heartbeats, how long after their claim
        orphans = [t for t in touches if (t["claimed_by"] in self.killed and "recovery" in (t["reason"] or ""))
                   or killed_mid_send(t)]
        waited = max(((t["updated_at"] - t["claimed_at"]).total_seconds() for t in orphans), default=0.0)
        self.figures["dead_worker_touches"] = len(orphans)
        self.figures["dead_worker_sending_max_s"] = round(waited, 1)
        if waited > 60:
            broken.append(f"a dead worker's touches settled within a minute: one stayed sending {waited:.0f} s")
        recorded = {t["provider_message_id"] for t in sent}
        excused_ids = {str(t["id"]) for t in excused}
        excused_phones = {t["phone"] for t in excused if t["channel"] == "sms"}
        missing = [mid for mid, m in self.messages.items() if mid not in recorded and not (
            str((m.get("custom_args") or {}).get("outreach_touch_id")) in excused_ids or m.get("to") in excused_phones)]
        if missing:
            broken.append(f"every provider acceptance recorded: {len(missing)} accepted message(s) not recorded "
                          f"as sent, e.g. {missing[:5]}")
        self.figures["provider_accepted"] = len(self.messages)

        # no send after a suppression (decided after it) or without consent
        suppressed = {(cid, ch): at for cid, ch, at in suppressions}
        late = [t["id"] for t in sent if (at := suppressed.get((t["contact_id"], "sms" if t["channel"] == "sms" else
                                                                "email"))) is not None and at < t["claimed_at"]]
        if late:
            broken.append(f"no send after a suppression: {len(late)} touch(es) claimed after theirs, e.g. {late[:10]}")
        no_consent = [t["id"] for t in sent if not self.consent[t["email"]][1 if t["channel"] == "sms" else 0]]
        if no_consent:
            broken.append(f"no send without consent: {len(no_consent)} touch(es), e.g. {no_consent[:10]}")

        # caps and windows per contact and day, in the contact's zone
        days: Counter[tuple[int, str, Any]] = Counter()
        outside = []
        for t in sent:
            zone = ZoneInfo(t["timezone"] or "UTC")
            local = t["sent_at"].astimezone(zone)
            days[(t["contact_id"], "all", local.date())] += 1
            days[(t["contact_id"], t["channel"], local.date())] += 1
            start, end = WINDOWS[t["channel"]]
            decided = t["claimed_at"].astimezone(zone).strftime("%H:%M")
            if not start <= decided < end:
                outside.append(t["id"])
        over = [(k, n) for k, n in days.items() if k[1] in CAPS and n > CAPS[k[1]]]
        if over:
            broken.append(f"caps held per contact and day: {len(over)} contact-day(s) over, e.g. {over[:5]}")
        if outside:
            broken.append(f"send windows held: {len(outside)} touch(es) sent outside, e.g. {outside[:10]}")

        # the SMS rate of the one number, across every process
        stamps = sorted(t["sent_at"].timestamp() for t in sent if t["channel"] == "sms")
        busiest = max((bisect_right(stamps, s + 10.0) - i for i, s in enumerate(stamps)), default=0)
        self.figures["sms_max_in_10s"] = busiest
        if busiest > SMS_RATE * 10 * 1.1 + 2:
            broken.append(f"SMS rate held across processes: {busiest} SMS in 10 s against {SMS_RATE:g} a second")
        if status_orphans:
            broken.append(f"status callbacks tied by MessageSid: {status_orphans} recorded without their touch")
        if early_left:
            broken.append(f"status callbacks tied by MessageSid: {early_left} kept unattributed though their "
                          "send is recorded")

        # learning counts equal a recount
        project = Project.open(self.root)
        with db.session_scope(project.engine) as s:
            if learning_counts.stored(s) != learning_counts.recount(s, project.rules):
                broken.append("learning counts equal a recount: they differ")

        # no 5xx to a provider or the website; clean stops
        fives = [e for e in self.emitted.values() if (e.get("status") or 0) >= 500]
        if fives:
            broken.append(f"no 5xx answered to a provider: {len(fives)}, e.g. "
                          f"{[(e['kind'], e['status']) for e in fives[:5]]}")
        # what the engine answered anybody, from its access log (Twilio's callbacks are not in the sandbox's)
        answered = Counter(m.group(1) for m in re.finditer(r'"POST /(?:webhooks|api)/\S* HTTP/[\d.]+" (\d{3})',
                                                             self.run.log.read_text(errors="replace")))
        self.figures["engine_answers"] = dict(sorted(answered.items()))
        run5 = sum(n for code, n in answered.items() if code.startswith("5"))
        if run5:
            broken.append(f"no 5xx answered to a provider or the API: the engine's log shows {run5}")
        api5 = sum(n for code, n in self.api_answers.items() if code >= 500)
        if api5:
            broken.append(f"no 5xx answered to the API: {api5} evidence post(s)")
        for p in [self.run, *self.workers]:
            bad = [f"{code} {'by itself' if took < 0 else 'on SIGTERM'}" for code, took in p.exits
                   if code != 0 or took < 0]
            if bad:
                broken.append(f"clean stop on SIGTERM, no crash: {p.name} exited {bad}")
        self.figures.update(posts_to_engine=len(self.emitted), api_posts=dict(self.api_answers),
                            approvals=self.approvals, run_stop_s=[round(s, 1) for _, s in self.run.exits])

        # memory flat after warm-up: each process that lived long enough, second quarter vs last
        for (name, pid), samples in self.rss.items():
            if len(samples) < 20:
                continue
            q = len(samples) // 4
            warm = sorted(mb for _, mb in samples[q:2 * q])[q // 2]
            end = sorted(mb for _, mb in samples[-q:])[q // 2]
            self.figures[f"rss_mb_{name}_{pid}"] = f"{samples[0][1]:.0f}->{warm:.0f}->{end:.0f}"
            if end - warm > max(30.0, 0.3 * warm):
                broken.append(f"RSS flat after warm-up: {name} (pid {pid}) grew from {warm:.0f} to {end:.0f} MB")
        return broken


def main() -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=2.0)
    p.add_argument("--contacts", type=int, default=300)
    p.add_argument("--workers", type=int, default=2, help="`outreach worker` processes beside `outreach run`")
    p.add_argument("--faults", default="all", help=f"all, none, or a comma list of {','.join(FAULTS)}")
    p.add_argument("--drain", type=float, default=15.0, help="seconds after the soak for answers to come back")
    p.add_argument("--seed", type=int, default=12)
    p.add_argument("--keep", action="store_true", help="keep the database and folder, for a look afterwards")
    args = p.parse_args()
    if args.faults == "none":
        args.faults = ""
    unknown = {f for f in args.faults.split(",") if f} - {*FAULTS, "all"}
    if unknown:
        p.error(f"unknown fault(s): {', '.join(sorted(unknown))}")
    if why := pg_available():
        print(f"soak: {why}", file=sys.stderr)
        return 2
    # a SIGTERM (a CI timeout) still stops the processes and drops the database
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    url, name = fresh_pg_database()
    work = Path(tempfile.mkdtemp(prefix="outreach-soak-"))
    soak = Soak(args, work, url)
    try:
        soak.setup()
        print(f"soak: {args.contacts} contacts, run + {args.workers} worker(s), {args.minutes:g} min, "
              f"faults: {args.faults or 'none'}; logs in {work}" + (f", database {name}" if args.keep else ""),
              flush=True)
        soak.soak()
        broken = soak.check()
    finally:
        for proc in [soak.run, *soak.workers, soak.sandbox]:
            proc.stop(10)
        db.dispose_all()
        drop_template()
        if not args.keep:
            drop_pg_database(name)
    for key, value in soak.figures.items():
        print(f"  {key:<28} {value}")
    for what, a, b in soak.faults:
        print(f"  fault {what:<22} at {a - soak.started:5.0f} s, {b - a:.1f} s")
    if broken:
        for b in broken:
            print(f"soak: BROKEN: {b}", flush=True)
        return 1
    print(f"soak: every invariant held ({soak.elapsed:.0f} s)", flush=True)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
