"""The tables. Times are aware datetimes stored as UTC; ids are integers the database assigns."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, Table, UniqueConstraint
from sqlmodel import Field, SQLModel

from outreach.kinds import Channel as Channel  # the kinds, importable with the tables that hold them
from outreach.kinds import EvidenceType as EvidenceType
from outreach.kinds import TouchStatus as TouchStatus

STATUSES: tuple[TouchStatus, ...] = tuple(TouchStatus)
OPEN_STATUSES = (TouchStatus.PENDING, TouchStatus.APPROVED)  # not yet handed to a provider
CHANNELS: tuple[Channel, ...] = tuple(Channel)


def table_of(model: type[SQLModel]) -> Table:
    """The Core table of a table model (SQLModel does not declare `__table__` to type checkers)."""
    name = model.__tablename__
    assert isinstance(name, str)
    return model.metadata.tables[name]


def utcnow() -> datetime:
    return datetime.now(UTC)


class Contact(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    email: str | None = Field(default=None, index=True, unique=True)
    phone: str | None = Field(default=None, index=True)  # E.164
    first_name: str | None = None
    last_name: str | None = None
    company: str | None = None
    title: str | None = None
    timezone: str | None = None
    owner: str | None = Field(default=None, index=True)  # the owning rep's email
    external_id: str | None = Field(default=None, index=True, unique=True)
    consent_email: bool | None = None  # None: unknown
    consent_sms: bool | None = None
    attributes: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    stage: str = Field(default="", index=True)
    stage_entered_at: datetime = Field(default_factory=utcnow, index=True)
    stage_entry: int = 0  # bumped on every stage change: a step runs once per stage entry
    created_at: datetime = Field(default_factory=utcnow)
    # automated touches wait until then (a person paused them, or the buyer is out of office);
    # a rep's one-off message does not
    paused_until: datetime | None = None
    paused_reason: str | None = None


class Evidence(SQLModel, table=True):
    """Something the buyer did (or a provider saw), normalized to a dotted event name."""

    __table_args__ = (Index("ix_evidence_contact_type_at", "contact_id", "type", "occurred_at"),
                      Index("ix_evidence_type_at", "type", "occurred_at"))  # the inbox: replies, newest first

    id: int | None = Field(default=None, primary_key=True)
    contact_id: int = Field(foreign_key="contact.id")
    type: str
    occurred_at: datetime
    recorded_at: datetime = Field(default_factory=utcnow)
    source: str = "api"  # sendgrid, twilio, inbound, api, cli, web, sandbox
    touch_id: int | None = Field(default=None, index=True)  # no FK: touch -> evidence already
    channel: str | None = None  # the channel of the touch it answers
    interaction: str | None = None
    dedupe_key: str | None = Field(default=None, unique=True)  # provider event id, API id
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class StageChange(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    contact_id: int = Field(foreign_key="contact.id", index=True)
    from_stage: str
    to_stage: str
    at: datetime
    evidence_id: int | None = Field(default=None, foreign_key="evidence.id")


class Touch(SQLModel, table=True):
    """One planned message to one contact: the unit of approval, dispatch and response."""

    __table_args__ = (
        UniqueConstraint("dedupe_key", name="uq_touch_dedupe"),
        Index("ix_touch_status_due", "status", "due_at"),
        Index("ix_touch_contact_status", "contact_id", "status"),
        Index("ix_touch_contact_rule_step", "contact_id", "rule", "step", "stage_entry"),
        Index("ix_touch_meeting_start", "meeting_start"),  # the booked meetings that overlap a slot
    )

    id: int | None = Field(default=None, primary_key=True)
    contact_id: int = Field(foreign_key="contact.id")
    dedupe_key: str  # one touch per step per stage entry, per trigger per evidence
    stage: str
    stage_entry: int = 0
    rule: str  # "playbook:<stage>" or "trigger:<id>"
    step: str
    interaction: str
    content: str
    channel: str | None = None
    channel_reason: str = ""
    channel_fixed: bool = False  # the rule named the channel
    status: str = Field(default=TouchStatus.APPROVED)
    reason: str | None = None  # why it failed, waits, was cancelled or rejected
    due_at: datetime
    expires_at: datetime | None = None  # a trigger's `within`: not sent by then, not at all
    approve_by: datetime | None = None  # a pending touch nobody approved by then goes stale
    sent_at: datetime | None = None
    provider: str | None = None
    provider_message_id: str | None = Field(default=None, index=True)
    evidence_id: int | None = Field(default=None, foreign_key="evidence.id")
    meeting_minutes: int | None = None
    # the slot booked for a meeting touch: the engine's own calendar when the rep has none connected
    meeting_start: datetime | None = None
    meeting_end: datetime | None = None
    meeting_sequence: int = 0  # the invite's SEQUENCE: a moved or cancelled meeting sends a higher one
    subject_override: str | None = None  # a rep's edit
    body_override: str | None = None
    attempts: int = 0
    claimed_by: str | None = None
    claimed_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class Message(SQLModel, table=True):
    """What was rendered and handed to a provider for a touch (the outbox keeps only this)."""

    id: int | None = Field(default=None, primary_key=True)
    touch_id: int = Field(foreign_key="touch.id", index=True, unique=True)
    channel: str
    provider: str
    to: str
    subject: str | None = None
    text: str = ""
    html: str | None = None
    created_at: datetime = Field(default_factory=utcnow)


class Preference(SQLModel, table=True):
    """A channel the contact stated for an interaction type."""

    __table_args__ = (UniqueConstraint("contact_id", "interaction"),)

    id: int | None = Field(default=None, primary_key=True)
    contact_id: int = Field(foreign_key="contact.id", index=True)
    interaction: str
    channel: str
    source: str = "cli"
    updated_at: datetime = Field(default_factory=utcnow)


class Suppression(SQLModel, table=True):
    """A channel the contact can no longer be reached on (bounce, complaint, unsubscribe, STOP)."""

    __table_args__ = (UniqueConstraint("contact_id", "channel"),)

    id: int | None = Field(default=None, primary_key=True)
    contact_id: int = Field(foreign_key="contact.id", index=True)
    channel: str
    reason: str
    at: datetime = Field(default_factory=utcnow)


class User(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(unique=True, index=True)
    role: str  # admin | marketer | rep
    password_hash: str | None = None
    api_token_hash: str | None = Field(default=None, index=True)
    name: str | None = None
    timezone: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    disabled_at: datetime | None = None  # a disabled user cannot sign in or use a token
    # bumped on sign-out, password change and disable: a session signed with an older value is dead
    session_version: int = 0
    digest_on: date | None = None  # the local day of the last morning digest (outreach.digest)


class ConsentChange(SQLModel, table=True):
    """The audit trail of consent restored or revoked by staff (`outreach contacts consent`), shown on
    the contact page. A buyer's own acts are evidence; this is for what a person did on their behalf."""

    id: int | None = Field(default=None, primary_key=True)
    contact_id: int = Field(foreign_key="contact.id", index=True)
    channel: str
    granted: bool
    source: str  # where the consent came from, in the admin's words ("signed form, 2026-11-30")
    reason: str
    actor: str  # the user's email, or "cli"
    at: datetime = Field(default_factory=utcnow)


class UnattributedEvent(SQLModel, table=True):
    """A provider event that cannot be proven to answer a touch of ours (mail this engine did not send,
    a reply matched by its sender alone): kept raw for admins, never moving a stage or teaching."""

    id: int | None = Field(default=None, primary_key=True)
    source: str
    type: str
    occurred_at: datetime
    received_at: datetime = Field(default_factory=utcnow, index=True)
    reason: str  # why it was not attributed
    email: str | None = Field(default=None, index=True)
    phone: str | None = None
    provider_message_id: str | None = None
    dedupe_key: str | None = Field(default=None, unique=True)
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class ReplyState(SQLModel, table=True):
    """What a person did with a buyer's reply in the inbox: handled it, answered it (the one-off touch),
    or snoozed it until a time. A reply without a row waits for a human."""

    id: int | None = Field(default=None, primary_key=True)
    evidence_id: int = Field(foreign_key="evidence.id", unique=True)
    status: str  # handled | answered | snoozed
    until: datetime | None = None  # a snooze's end
    touch_id: int | None = Field(default=None, foreign_key="touch.id")  # the answer
    actor: str
    at: datetime = Field(default_factory=utcnow)
