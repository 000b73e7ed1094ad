"""The engine facade: what the CLI, the web app and the scheduler call. One instance per process."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from sqlalchemy import Connection, delete
from sqlalchemy import Engine as DbEngine
from sqlmodel import Session, col

from channels.base import OutgoingMessage, Provider, SendResult
from channels.outbox import OutboxProvider
from outreach.accounts.store import accounts_of, committee, member_ids, pause_for_answers, refresh_stages
from outreach.analytics import paths
from outreach.config import Settings
from outreach.content import available_channels
from outreach.context import Lazy
from outreach.counters import apply_counters
from outreach.db import read_scope, session_scope
from outreach.digest import send_digests
from outreach.dispatcher import Dispatcher, DispatchResult, expire, recover
from outreach.evidence import EvidenceIn, RecordResult, early_callbacks, record, take_unattributed
from outreach.inbox import pause_for_out_of_office
from outreach.learning.counts import count_evidence, count_sends
from outreach.learning.learner import ChannelLearner
from outreach.meetings import RepCalendar, book_unbooked
from outreach.messages import build_message
from outreach.models import Channel, Contact, SignInFailure, Touch
from outreach.one_off import is_one_off
from outreach.outbound import DeliveryRun, Poster, deliver_due, enqueue_record
from outreach.planner import Planner, PlanResult
from outreach.preferences import ChannelLearning, Learner
from outreach.project import Project
from outreach.ruleset import Ruleset
from outreach.senders import RepCache, Sender, sender_for
from outreach.tasks import complete
from outreach.workers import new_worker_id

log = logging.getLogger(__name__)
SIGN_IN_KEPT = 24 * 3600  # seconds: well past the sign-in limit's window (15 minutes)


def make_providers(project: Project) -> dict[str, Provider]:
    """Providers by channel, built from config. Each provider's SDK is imported only when that provider is
    configured (twilio and sendgrid together add about 0.15 s to every process start)."""
    s = project.settings
    email: Provider
    if s.providers.email == "sendgrid":
        from channels.sendgrid import SendGridProvider

        email = SendGridProvider(s.sendgrid.api_key, s.sendgrid.api_base, s.sendgrid.timeout)
    elif s.providers.email == "smtp":
        from channels.smtp import SmtpProvider

        email = SmtpProvider(s.smtp.host, s.smtp.port, s.smtp.username, s.smtp.password, s.smtp.starttls,
                             s.smtp.timeout)
    else:
        email = OutboxProvider()
    sms: Provider
    if s.providers.sms == "twilio":
        from channels.twilio_sms import TwilioSmsProvider

        sms = TwilioSmsProvider(s.twilio.account_sid, s.twilio.auth_token, s.twilio.api_base,
                                s.sender.sms_from, s.twilio.messaging_service_sid, s.twilio.timeout)
    else:
        sms = OutboxProvider()
    return {Channel.EMAIL: email, Channel.SMS: sms, Channel.MEETING: email}


class Engine:
    def __init__(self, project: Project, providers: dict[str, Provider] | None = None,
                 worker_id: str | None = None) -> None:
        self.project = project
        self._providers = providers
        self.worker_id = worker_id or new_worker_id()
        self._calendar: RepCalendar | None = None
        self._calendar_links: object = None

    @property
    def settings(self) -> Settings:
        return self.project.settings

    @property
    def db(self) -> DbEngine:
        return self.project.engine

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A session for the read-only analytics (the dashboards, /api/report, `outreach report`, the
        targets page). With `database_replica` set: on the replica, read-only, after the kept report
        counts were brought up to date on the primary (the replica then has them within its lag; a
        session on it reads what is kept and never refreshes). Else a session on the primary, where the
        report refreshes them itself."""
        replica = self.project.replica
        if replica is None:
            with session_scope(self.db) as s:
                yield s
            return
        with session_scope(self.db) as s:
            paths.refreshed(s, self.project.rules.stage_ids)
        with read_scope(replica, "database_replica") as s:
            yield s

    @cached_property
    def reps(self) -> RepCache:
        """The enabled users, by address: a touch to a contact they own goes out as them."""
        return RepCache(self.db)

    @cached_property
    def providers(self) -> dict[str, Provider]:
        return self._providers or make_providers(self.project)

    # Builds the planner's channel learner from the rules; the simulator swaps in its baselines.
    learner_class: Callable[[Ruleset], ChannelLearning] = ChannelLearner

    def planner(self) -> Planner:
        return Planner(self.project.rules, self.project.content_dir, self.settings.policy.email_consent,
                       self.settings.policy.approval_expires_after,
                       learner_for=self.learner_class(self.project.rules), holdout=self.settings.policy.holdout,
                       policy=self.settings.policy, timezone=self.settings.timezone)

    def learner_for(self, session: Session, contact: Contact, interaction: str) -> Learner | None:
        """The Learner the planner would consult for this contact now (for `contacts show`)."""
        learner: ChannelLearning | None = session.info.get("channel_learner")
        if learner is None:  # one per session: the priors are loaded once per page
            learner = session.info["channel_learner"] = self.learner_class(self.project.rules)
        learner.prepare(session, [contact.id or 0])
        return learner(contact, interaction)

    def plan(self, now: datetime | None = None, contact_ids: list[int] | None = None,
             dry_run: bool = False) -> PlanResult:
        now = now or datetime.now(UTC)
        with session_scope(self.db) as s:
            result = self.planner().plan(s, now, contact_ids, dry_run=dry_run)
            if dry_run:
                s.rollback()
            else:
                self.book_meetings(s, contact_ids)
            return result

    def record(self, items: list[EvidenceIn], now: datetime | None = None) -> RecordResult:
        """Record evidence, move stages, fire triggers and re-plan the contacts it touched, in one
        transaction."""
        now = now or datetime.now(UTC)
        with session_scope(self.db) as s:
            return self._record_in(s, items, now)

    def _record_in(self, s: Session, items: list[EvidenceIn], now: datetime) -> RecordResult:
        rules = self.project.rules
        result = record(s, rules, items, now, self.settings.server.secret_key)  # drops forgotten addresses
        enqueue_record(s, self.settings.outbound_webhooks, result, now)  # told once, with the change
        pause_for_out_of_office(s, result.recorded, self.settings.timezone)  # their touches wait for them
        apply_counters(s, self.settings, result.recorded, now, lambda t, c: self.build(t, c, rules), self.calendar)
        self._count_evidence(s, result)
        pause_for_answers(s, rules.accounts, result.recorded, now)
        advanced: list[str] = []
        if result.stage_changes and rules.accounts.stages:
            accounts = accounts_of(s, sorted({c.contact_id for c in result.stage_changes}))
            advanced = refresh_stages(s, rules.accounts, rules.stage_ids, accounts.values(), now,
                                      rule_at=rules.account_rule_at)
        planner = self.planner()
        fired = planner.fire_triggers(s, result.recorded, now)
        moved = {c.contact_id for c in result.stage_changes}
        if advanced and any(step.account_stage for steps in rules.playbooks.values() for step in steps):
            moved.update(member_ids(s, advanced))  # steps for the account's new stage may be due
        if moved:
            planner.plan(s, now, sorted(moved))
        if fired or moved:  # only a new touch can be an unbooked invite (the plan job retries the rest)
            self.book_meetings(s, result.contact_ids)
        return result

    def record_task(self, touch_id: int, outcome: str, note: str, actor: str, *, owner: str | None = None,
                    source: str = "web", now: datetime | None = None) -> RecordResult:
        """A rep's task done: the touch closes and its outcome is evidence that moves stages and fires
        triggers like any other, in one transaction (outreach.tasks)."""
        now = now or datetime.now(UTC)
        with session_scope(self.db) as s:
            item = complete(s, touch_id, outcome, note, actor, now, owner, source)
            return self._record_in(s, [item], now)

    def _count_evidence(self, s: Session, result: RecordResult) -> None:
        """Teach channel learning in a savepoint: a failure there is logged and costs the learner
        one lesson, never the evidence that triggered it (nor a provider's webhook a 500)."""
        try:
            with s.begin_nested():
                count_evidence(s, self.project.rules, result.recorded)
        except Exception:
            log.exception("channel learning could not count %d piece(s) of evidence; recorded anyway",
                          len(result.recorded))

    def book_meetings(self, session: Session, contact_ids: list[int] | None = None) -> int:
        """A slot for each new meeting touch (of `contact_ids`, else everybody's): free in the engine's
        own record of invites (and in the rep's connected calendar, when there is one)."""
        return book_unbooked(session, self.settings, self.calendar, contact_ids, self.project.rules)

    @property
    def calendar(self) -> RepCalendar | None:
        """The reps' connected CalDAV calendars (`calendars:` in config.yaml), or None."""
        if not self.settings.calendars:
            return None
        if self._calendar is None or self._calendar_links is not self.settings.calendars:
            from outreach.calendar_sync import CalDavCalendars

            self._calendar, self._calendar_links = CalDavCalendars(self.settings.calendars), self.settings.calendars
        return self._calendar

    def dispatcher(self) -> Dispatcher:
        project = self.project
        return Dispatcher(self.db, self.settings, lambda: project.rules, self.providers,
                          self.build,
                          worker_id=self.worker_id, on_recorded=self._recorded,
                          templates=lambda key: available_channels(project.content_dir, key))

    def sender_of(self, contact: Contact) -> Sender:
        """Who a touch to this contact goes out from: its owning rep, or the project sender."""
        return sender_for(self.settings, contact.owner, self.reps())

    def committee_of(self, contact: Contact) -> dict[str, Any]:
        """The contact's account and the rest of its committee, for templates: loaded when a template
        first reads it, so content that names no committee member costs no query."""
        def load() -> dict[str, Any]:
            with Session(self.db) as s:
                return committee(s, contact.id or 0, contact.account_id)

        return Lazy(load)

    def build(self, touch: Touch, contact: Contact, rules: Ruleset) -> OutgoingMessage:
        """The message the dispatcher sends (and the touch page previews)."""
        return build_message(self.settings, self.project.content_dir, touch, contact, rules,
                             self.sender_of(contact), self.committee_of(contact))

    def _recorded(self, conn: Connection, touch: Touch, contact: Contact, result: SendResult,
                  now: datetime) -> None:
        """In the transaction that records a send: count it for channel learning, and attribute the
        provider's callbacks that arrived before it (kept unattributed, by the provider's message id).
        Each in a savepoint: a failure there is logged and never costs the send its record."""
        # Core on the dispatcher's connection: this runs once per message (a Session per send cost a
        # third of dispatch's time); a Session joins that transaction only to record early callbacks
        try:
            # a person's own message is no channel choice of the engine's: it teaches the learner nothing
            if not is_one_off(touch):
                with conn.begin_nested():
                    count_sends(conn, self.project.rules, [(touch, contact)])
        except Exception:
            log.exception("channel learning could not count the send of touch %s; sent anyway", touch.id)
        # Twilio calls back within milliseconds, often before this commit; SendGrid's events carry the
        # touch id in their custom args, so they need no help (housekeeping sweeps any that do)
        if not result.provider_message_id or touch.channel != Channel.SMS:
            return
        try:
            with conn.begin_nested():
                items = take_unattributed(conn, [result.provider_message_id])
                if items:
                    with Session(bind=conn, expire_on_commit=False) as s:  # joins: its commit is a flush
                        self._record_in(s, items, now)
                        s.commit()
        except Exception:
            log.exception("could not attribute early callbacks for touch %s; housekeeping will retry", touch.id)

    def _reattribute(self, s: Session, provider_message_ids: list[str], now: datetime) -> int:
        """Record, against their touch, the unattributed events that name these provider message ids
        (callbacks that beat the send's record); returns how many were recorded."""
        items = take_unattributed(s, provider_message_ids)
        if not items:
            return 0
        return len(self._record_in(s, items, now).recorded)

    def attribute_early_callbacks(self, now: datetime | None = None) -> int:
        """Housekeeping's sweep for what a race left over: a callback kept unattributed just after
        the send that would have claimed it was recorded."""
        now = now or datetime.now(UTC)
        with session_scope(self.db) as s:
            return self._reattribute(s, early_callbacks(s), now)

    def dispatch(self, now: datetime | None = None) -> DispatchResult:
        return self.dispatcher().run_once(now)

    def deliver_webhooks(self, sender: Poster, now: datetime | None = None,
                         only: int | None = None) -> DeliveryRun:
        """Post the outbound webhooks due now (or delivery `only`) with `sender`."""
        return deliver_due(lambda: session_scope(self.db), self.settings.outbound_webhooks, sender,
                           now or datetime.now(UTC), only=only)

    def send_digests(self, now: datetime | None = None) -> int:
        """Each rep's morning digest, once a day after 8:00 their time (outreach.digest)."""
        with session_scope(self.db) as s:
            return send_digests(s, self.settings, self.providers[Channel.EMAIL], now or datetime.now(UTC))

    def housekeeping(self, now: datetime | None = None) -> tuple[int, int]:
        now = now or datetime.now(UTC)
        try:
            self.attribute_early_callbacks(now)
        except Exception:  # never at the cost of expiry and recovery
            log.exception("could not attribute early provider callbacks")
        try:  # failed sign-ins (an address, an email) are kept no longer than the limit needs them
            with self.db.begin() as conn:
                conn.execute(delete(SignInFailure).where(col(SignInFailure.at) < now.timestamp() - SIGN_IN_KEPT))
        except Exception:
            log.exception("could not delete old failed sign-ins")
        return expire(self.db, now), recover(self.db, now, self.settings.dispatch.sending_lease)
