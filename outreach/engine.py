"""The engine facade: what the CLI, the web app and the scheduler call. One instance per process."""

from __future__ import annotations

import logging
import os
import socket
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from channels.base import Provider

from .db import session_scope
from .dispatcher import Dispatcher, DispatchResult, expire, recover
from .evidence import EvidenceIn, RecordResult, record
from .messages import build_message
from .planner import Planner, PlanResult
from .project import Project

log = logging.getLogger(__name__)


def make_providers(project: Project) -> dict[str, Provider]:
    """Providers by channel, built from config; SDKs are imported only for the providers in use."""
    s = project.settings
    from channels.outbox import OutboxProvider

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
    return {"email": email, "sms": sms, "meeting": email}


class Engine:
    def __init__(self, project: Project, providers: dict[str, Provider] | None = None,
                 worker_id: str | None = None) -> None:
        self.project = project
        self._providers = providers
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}"

    @property
    def settings(self) -> Any:
        return self.project.settings

    @property
    def db(self) -> Any:
        return self.project.engine

    @cached_property
    def providers(self) -> dict[str, Provider]:
        return self._providers or make_providers(self.project)

    def planner(self) -> Planner:
        return Planner(self.project.rules, self.project.content_dir, self.settings.policy.email_consent,
                       self.settings.policy.approval_expires_after)

    def plan(self, now: datetime | None = None, contact_ids: list[int] | None = None,
             dry_run: bool = False) -> PlanResult:
        now = now or datetime.now(UTC)
        with session_scope(self.db) as s:
            result = self.planner().plan(s, now, contact_ids, dry_run=dry_run)
            if dry_run:
                s.rollback()
            return result

    def record(self, items: list[EvidenceIn], now: datetime | None = None) -> RecordResult:
        """Record evidence, move stages, fire triggers and re-plan the contacts it touched, in one
        transaction."""
        now = now or datetime.now(UTC)
        with session_scope(self.db) as s:
            result = record(s, self.project.rules, items, now)
            planner = self.planner()
            planner.fire_triggers(s, result.recorded, now)
            moved = sorted({c.contact_id for c in result.stage_changes})
            if moved:
                planner.plan(s, now, moved)
            return result

    def dispatcher(self) -> Dispatcher:
        project = self.project
        return Dispatcher(self.db, self.settings, lambda: project.rules, self.providers,
                          lambda t, c, rules: build_message(project.settings, project.content_dir, t, c, rules),
                          worker_id=self.worker_id)

    def dispatch(self, now: datetime | None = None) -> DispatchResult:
        return self.dispatcher().run_once(now)

    def housekeeping(self, now: datetime | None = None) -> tuple[int, int]:
        now = now or datetime.now(UTC)
        return expire(self.db, now), recover(self.db, now)
