"""APScheduler wiring. Each process runs only polling jobs; the work itself is claimed from the
database, so any number of workers can share one PostgreSQL database (APScheduler's job stores
must not be shared between processes). Planning runs on one leader at a time (an advisory lock)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import text

from channels.webhook_out import WebhookSender
from outreach.analytics.snapshots import take_snapshots
from outreach.analytics.targets import send_target_digests
from outreach.db import session_scope
from outreach.engine import Engine
from outreach.experiments.conclude import announce_verdicts
from outreach.kinds import Channel
from outreach.personal import prune

log = logging.getLogger(__name__)
PLAN_LOCK = 0x6F757472  # "outr": the advisory lock id of the planning leader


@contextmanager
def leader(engine: Engine) -> Iterator[bool]:
    """On PostgreSQL, yield True for the one process holding the planning lock; on SQLite, True."""
    db = engine.db
    if db.dialect.name != "postgresql":
        yield True
        return
    with db.connect() as conn:
        got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": PLAN_LOCK}).scalar())
        try:
            yield got
        finally:
            if got:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": PLAN_LOCK})
            conn.commit()


class Jobs:
    """The periodic jobs. Each swallows and logs its errors so that the next tick runs."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.busy = threading.Lock()
        self.dispatcher = engine.dispatcher()  # one per process: its rate limiters persist
        self.sender = WebhookSender()

    def plan(self) -> None:
        try:
            with leader(self.engine) as lead:
                if lead:
                    result = self.engine.plan(datetime.now(UTC))
                    if result.queued:
                        log.info("planned %d touch(es)", result.queued)
        except Exception:
            log.exception("plan job failed")

    def dispatch(self) -> None:
        if not self.busy.acquire(blocking=False):
            return  # the previous tick is still sending
        try:
            result = self.dispatcher.run_once(clock=lambda: datetime.now(UTC))
            if result.claimed:
                log.info("dispatch: %d claimed, %d sent, %d failed, %d waiting, %d retrying", result.claimed,
                         result.sent, result.failed, result.waiting, result.retried)
        except Exception:
            log.exception("dispatch job failed")
        finally:
            self.busy.release()

    def webhooks(self) -> None:
        """Outbound webhooks, on the planning leader only: one process posts, so each contact's events
        reach a receiver in order and once."""
        if not self.engine.settings.outbound_webhooks:
            return
        try:
            with leader(self.engine) as lead:
                if lead:
                    run = self.engine.deliver_webhooks(self.sender)
                    if run.delivered or run.failed or run.given_up:
                        log.info("webhooks: %d delivered, %d to retry, %d given up", run.delivered, run.failed,
                                 run.given_up)
        except Exception:
            log.exception("webhook delivery job failed")

    def verdicts(self) -> None:
        """`experiment.concluded` for verdicts newly reached, on the planning leader (told once)."""
        try:
            with leader(self.engine) as lead:
                if lead:
                    with session_scope(self.engine.db) as s:
                        queued = announce_verdicts(s, self.engine.project.rules,
                                                   self.engine.settings.outbound_webhooks, datetime.now(UTC))
                    if queued:
                        log.info("experiments: %d verdict webhook(s) queued", queued)
        except Exception:
            log.exception("experiment verdict job failed")

    def prune(self) -> None:
        """`retention:` applied on the planning leader (one process is enough)."""
        retention = self.engine.settings.retention
        if retention.message_bodies is None and retention.provider_payloads is None:
            return
        try:
            with leader(self.engine) as lead:
                if lead:
                    with session_scope(self.engine.db) as s:
                        done = prune(s, retention, datetime.now(UTC))
                    if done.messages or done.evidence or done.unattributed or done.webhook_events:
                        log.info("retention: emptied %d message(s) and %d evidence payload(s), deleted %d "
                                 "unattributed and %d outbound webhook event(s)", done.messages, done.evidence,
                                 done.unattributed, done.webhook_events)
        except Exception:
            log.exception("retention prune job failed")

    def housekeeping(self) -> None:
        try:
            expired, uncertain = self.engine.housekeeping(datetime.now(UTC))
            if expired or uncertain:
                log.info("housekeeping: %d expired, %d marked uncertain", expired, uncertain)
            if digests := self.engine.send_digests():
                log.info("housekeeping: %d rep digest(s) sent", digests)
        except Exception:
            log.exception("housekeeping job failed")

    def snapshots(self) -> None:
        """Keep yesterday's stage counts for the dashboards' history (idempotent: every worker may run it)."""
        try:
            with session_scope(self.engine.db) as s:
                live, rebuilt = take_snapshots(s, self.engine.project.rules.stage_ids, datetime.now(UTC))
            if live or rebuilt:
                log.info("stage snapshots: %d day(s) taken, %d reconstructed", live, rebuilt)
        except Exception:
            log.exception("snapshot job failed")
        try:  # the targets' daily email: once a day per owner, claimed in the database
            with session_scope(self.engine.db) as s:
                if sent := send_target_digests(s, self.engine.settings, self.engine.project.rules,
                                               self.engine.providers[Channel.EMAIL], datetime.now(UTC)):
                    log.info("targets: %d digest(s) of missed targets sent", sent)
        except Exception:
            log.exception("target digest job failed")


def start_scheduler(engine: Engine) -> tuple[BackgroundScheduler, Jobs]:
    d = engine.settings.dispatch
    jobs = Jobs(engine)
    scheduler = BackgroundScheduler(timezone=UTC, job_defaults={"coalesce": True, "max_instances": 1,
                                                                "misfire_grace_time": 30})
    scheduler.add_job(jobs.plan, "interval", seconds=d.plan_every.total_seconds(), id="plan",
                      replace_existing=True, next_run_time=datetime.now(UTC))
    scheduler.add_job(jobs.dispatch, "interval", seconds=d.poll_every.total_seconds(), id="dispatch",
                      replace_existing=True, next_run_time=datetime.now(UTC))
    settings = engine.settings
    if settings.outbound_webhooks:  # config is read once per process: no receivers, no job
        scheduler.add_job(jobs.webhooks, "interval", seconds=d.poll_every.total_seconds(), id="webhooks",
                          replace_existing=True, next_run_time=datetime.now(UTC))
    if settings.retention.message_bodies is not None or settings.retention.provider_payloads is not None:
        scheduler.add_job(jobs.prune, "interval", hours=1, id="prune", replace_existing=True,
                          next_run_time=datetime.now(UTC))
    scheduler.add_job(jobs.housekeeping, "interval", seconds=60, id="housekeeping", replace_existing=True,
                      next_run_time=datetime.now(UTC))
    # every 10 minutes, so yesterday is taken live within LIVE_WITHIN (an hour) of its end
    if settings.outbound_webhooks:  # verdicts move slowly: a look every 10 minutes is plenty
        scheduler.add_job(jobs.verdicts, "interval", seconds=600, id="verdicts", replace_existing=True,
                          next_run_time=datetime.now(UTC))
    scheduler.add_job(jobs.snapshots, "interval", seconds=600, id="snapshots", replace_existing=True,
                      next_run_time=datetime.now(UTC))
    scheduler.start()
    return scheduler, jobs
