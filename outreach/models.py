"""The tables. Times are aware datetimes stored as UTC; ids are integers the database assigns."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, Table, UniqueConstraint, text
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
    account_id: str | None = Field(default=None, index=True)  # Account.id; no FK: imports write both in one batch
    role: str | None = None  # the contact's part in the buying committee (economic_buyer, champion, ...)
    # automated touches wait until then (a person paused them, or the buyer is out of office);
    # a rep's one-off message does not
    paused_until: datetime | None = None
    paused_reason: str | None = None


class Account(SQLModel, table=True):
    """A buying organization: its id is the imported account id, or the company domain it was inferred
    from. Its stage is derived from its members' stages by the `accounts:` rules, with the proof kept."""

    id: str = Field(primary_key=True)
    name: str | None = None
    domain: str | None = Field(default=None, index=True)
    stage: str = Field(default="", index=True)  # "": no account rule has held yet
    stage_entered_at: datetime | None = None
    # why the stage holds: {"rule", "where", "members": [{"id", "email", "role", "stage"}]}
    stage_proof: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # a member replied or booked: automated touches to the other members wait until then
    paused_until: datetime | None = None
    paused_by: int | None = None  # the member whose answer paused the account
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


# the partial indexes' conditions, spelled as the dashboards' queries spell them (literally: SQLite uses a
# partial index only when the query's condition is the same text): outreach.analytics.activity
DELIVERY_TYPES = ("email.bounced", "email.complained", "email.delivered", "email.unsubscribed", "sms.delivered",
                  "sms.failed", "sms.opted_out")
DELIVERY_WHERE = "type IN (" + ", ".join(f"'{t}'" for t in DELIVERY_TYPES) + ")"
QUEUE_WHERE = "status IN ('expired', 'pending_approval')"


class Evidence(SQLModel, table=True):
    """Something the buyer did (or a provider saw), normalized to a dotted event name."""

    __table_args__ = (Index("ix_evidence_contact_type_at", "contact_id", "type", "occurred_at"),
                      Index("ix_evidence_type_at", "type", "occurred_at"),  # the inbox: replies, newest first
                      # a touch's answers of some kinds (learning's first answer per touch), not its whole history
                      Index("ix_evidence_touch_type", "touch_id", "type"),
                      # the providers' delivery events by contact (the deliverability widget narrowed to some
                      # contacts): a fifth of the evidence, read from the index alone
                      Index("ix_evidence_delivery", "contact_id", "occurred_at", "type",
                            sqlite_where=text(DELIVERY_WHERE), postgresql_where=text(DELIVERY_WHERE)))

    id: int | None = Field(default=None, primary_key=True)
    contact_id: int = Field(foreign_key="contact.id")
    type: str
    occurred_at: datetime
    recorded_at: datetime = Field(default_factory=utcnow)
    source: str = "api"  # sendgrid, twilio, inbound, api, cli, web, sandbox
    touch_id: int | None = None  # no FK: touch -> evidence already
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
        Index("ix_touch_experiment_variant", "experiment_id", "variant"),
        Index("ix_touch_meeting_start", "meeting_start"),  # the booked meetings that overlap a slot
        # the open invites that still hold a slot: without it, booking scanned every approved touch;
        # partial, so that the many touches that are no meeting cost the bulk planner no index entry
        Index("ix_touch_channel_meeting_end", "channel", "meeting_end",
              sqlite_where=text("meeting_end IS NOT NULL"), postgresql_where=text("meeting_end IS NOT NULL")),
        # the dashboards' queue and expired touches (a few in a hundred): read from this index alone, not by
        # walking every contact or every touch of a status by due time
        Index("ix_touch_queue", "status", "updated_at", "contact_id", "rule", "step", "reason",
              sqlite_where=text(QUEUE_WHERE), postgresql_where=text(QUEUE_WHERE)),
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
    experiment_id: str | None = None  # the experiment that chose this touch's content, if any
    variant: str | None = None  # the content variant it chose, or "holdout" (no touch goes out)
    # the slot booked for a meeting touch: the engine's own calendar when the rep has none connected
    meeting_start: datetime | None = None
    meeting_end: datetime | None = None
    # everybody the invite names besides the contact (outreach.meetings.Invitee as dicts); None: just them
    meeting_attendees: list[dict[str, Any]] | None = Field(
        default=None, sa_column=Column(JSON(none_as_null=True), nullable=True))
    meeting_sequence: int = 0  # the invite's SEQUENCE: a moved or cancelled meeting sends a higher one
    subject_override: str | None = None  # a rep's edit
    body_override: str | None = None
    attempts: int = 0
    claimed_by: str | None = None
    claimed_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class ExperimentStop(SQLModel, table=True):
    """An experiment a marketer stopped (the rules file stays the source of truth for the rest): from
    then on its step sends the promoted variant, or the control, to everyone not yet assigned."""

    id: str = Field(primary_key=True)  # the experiment's id in the rules
    rule: str
    step: str
    metric: str
    allocation: str
    variants: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    within_seconds: int = 14 * 86400  # the metric's window and the minimum sample, as declared, so the
    min_sample: int = 100  # figures stay right after the experiment is gone from the rules
    promoted: str | None = None
    stopped_by: str  # the user's email, or "cli"
    stopped_at: datetime = Field(default_factory=utcnow)


class ExperimentNews(SQLModel, table=True):
    """What the `experiment.concluded` webhook has already told about an experiment: its stop, or a
    verdict it reached (`winner:CONTENT`, `no_difference`). Written with the outbox row, so each piece
    of news goes out once however often the verdicts are checked."""

    experiment_id: str = Field(primary_key=True)
    news: str = Field(primary_key=True)  # stopped | winner:CONTENT | no_difference
    at: datetime = Field(default_factory=utcnow)


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


class OwnerChange(SQLModel, table=True):
    """Who came to own a contact, how and when: assigned by rule on import, claimed by a rep on the
    contact page, or handed over. Shown on the contact's timeline."""

    id: int | None = Field(default=None, primary_key=True)
    contact_id: int = Field(foreign_key="contact.id", index=True)
    from_owner: str | None = None
    to_owner: str
    how: str  # rule | claimed | handed over
    actor: str  # the user's email, or "rule"
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
    # indexed: a status callback that beat the send's record is re-attributed by it (dispatcher)
    provider_message_id: str | None = Field(default=None, index=True)
    dedupe_key: str | None = Field(default=None, unique=True)
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class SnapshotDay(SQLModel, table=True):
    """A UTC day whose stage counts are kept in StageSnapshot: taken just after the day ended (exact:
    what the engine knew then), or reconstructed from the stage changes for days before snapshots
    began or missed while no engine ran."""

    id: int | None = Field(default=None, primary_key=True)
    day: str = Field(unique=True)  # YYYY-MM-DD
    reconstructed: bool
    taken_at: datetime = Field(default_factory=utcnow)


class StageSnapshot(SQLModel, table=True):
    """Contacts per owner and stage at the end of a SnapshotDay (a missing row is zero)."""

    __table_args__ = (UniqueConstraint("day", "owner", "stage", name="uq_stagesnapshot_day_owner_stage"),)

    id: int | None = Field(default=None, primary_key=True)
    day: str = Field(index=True)
    owner: str = ""  # the owning rep's email; "" for contacts nobody owns
    stage: str
    count: int
class StagePath(SQLModel, table=True):
    """Each contact's path through the stages, kept by outreach.analytics.paths from the stage changes
    (one row per stage reached, in the rules' order of PathState.stages): when they first reached it or
    a later one (t), the stage before it (prev), and when they first got beyond it (t_next, NULL while
    there). The dashboards' conversion, velocity and history read it instead of rebuilding paths."""

    __table_args__ = (Index("ix_stagepath_t", "t"), Index("ix_stagepath_t_next", "t_next"))

    id: int | None = Field(default=None, primary_key=True)
    contact_id: int = Field(index=True)  # no FK: rebuilt from Contact and StageChange, never the other way
    idx: int
    prev: int | None = None
    t: datetime
    t_next: datetime | None = None


class StageFlow(SQLModel, table=True):
    """StagePath counted per stage reached, the stage before it, the UTC day it was reached and the day
    it was left ("" while still there), and whether it was left in the same instant: conversion and
    the history over everybody read a few rows per day from it."""

    __table_args__ = (UniqueConstraint("part", "day_in", "idx", "prev", "day_out", "same", name="uq_stageflow_key"),)

    id: int | None = Field(default=None, primary_key=True)
    part: str = ""  # whose counts: "" everybody's, else one filter value's (ContactPart)
    day_in: str  # YYYY-MM-DD
    idx: int
    prev: int  # -1: none (the stage the contact came in on)
    day_out: str  # YYYY-MM-DD, "" while still there
    same: bool  # left in the instant it was reached: never stood there
    n: int


class StageStay(SQLModel, table=True):
    """StagePath's stays that ended (left later than reached), per stage, UTC day left and whole hours
    spent: velocity over everybody is a histogram read from it."""

    __table_args__ = (UniqueConstraint("part", "day_out", "idx", "hours", name="uq_stagestay_key"),)

    id: int | None = Field(default=None, primary_key=True)
    part: str = ""  # whose counts: "" everybody's, else one filter value's (ContactPart)
    day_out: str  # YYYY-MM-DD
    idx: int
    hours: int
    n: int


class PathState(SQLModel, table=True):
    """How far StagePath is kept (one row): the stage order it was built for, and the last stage change
    and contact counted (later ones are counted on the next refresh)."""

    id: int | None = Field(default=None, primary_key=True)
    stages: str = ""  # the rules' stage ids, comma-joined: another order rebuilds everything
    change_id: int = 0
    contact_id: int = 0
    evidence_id: int = 0  # SentTouch: the last evidence counted
    mark_id: int = 0  # SentTouch: the last TouchMark counted
    contact_mark_id: int = 0  # ContactPart: the last ContactMark counted
    refreshed_at: datetime = Field(default_factory=utcnow)


class TouchMark(SQLModel, table=True):
    """A touch that was sent, or stopped being sent, or changed while sent: written by database triggers
    on touch (migration 0012_i15), so no write path has to remember it; SentTouch's refresh reads and
    clears them."""

    id: int | None = Field(default=None, primary_key=True)
    touch_id: int


class ContactMark(SQLModel, table=True):
    """A contact whose owner, stage or attributes changed (or that was deleted): written by database triggers
    on contact (migration 0018), so no write path has to remember it; the kept counts' refresh moves the
    contact's counts to its new parts and clears them."""

    id: int | None = Field(default=None, primary_key=True)
    contact_id: int


class ContactPart(SQLModel, table=True):
    """The parts (single filter values) each contact was counted in at the last refresh: "" (everybody),
    "owner:EMAIL", "stage:ID", "attr:NAME=VALUE" (the indexed attributes), "rule:RULE" (a rule that sent it
    a touch). The kept counts of a contact that changes are taken off the parts it had, here."""

    __table_args__ = (Index("ix_contactpart_part", "part", "contact_id"),)

    contact_id: int = Field(primary_key=True)  # no FK: kept from Contact, never the other way
    part: str = Field(primary_key=True)


class SentTouch(SQLModel, table=True):
    """What each sent touch brought (outreach.analytics.sends), kept from the touches, their evidence
    and the contact's stage changes: answered, opted out, and the whole hours until the contact's next
    stage change (-1: none within 92 days)."""

    __table_args__ = (Index("ix_senttouch_contact_day", "contact_id", "day"),)  # narrowed: the contacts kept

    touch_id: int = Field(primary_key=True)
    contact_id: int  # the touch's: a report narrowed to some contacts reads their rows by it
    day: str  # the UTC day it was sent, YYYY-MM-DD
    rule: str
    step: str
    interaction: str
    channel: str
    responded: bool
    opted_out: bool
    advance_h: int


class SentDay(SQLModel, table=True):
    """SentTouch counted per UTC day and what the steps and channels widgets group by."""

    __table_args__ = (UniqueConstraint("part", "day", "rule", "step", "interaction", "channel", "responded",
                                       "opted_out", "advance_h", name="uq_sentday_key"),)

    id: int | None = Field(default=None, primary_key=True)
    part: str = ""  # whose counts: "" everybody's, else one filter value's (ContactPart; no rule: parts)
    day: str
    rule: str
    step: str
    interaction: str
    channel: str
    responded: bool
    opted_out: bool
    advance_h: int
    n: int


class EventDay(SQLModel, table=True):
    """The providers' delivery events (delivered, bounced, complained, unsubscribed, opted out) per UTC
    day and type, kept by outreach.analytics.sends: the deliverability widget over everybody reads it."""

    __table_args__ = (UniqueConstraint("part", "day", "type", name="uq_eventday_day_type"),)

    id: int | None = Field(default=None, primary_key=True)
    part: str = ""  # whose counts: "" everybody's, else one filter value's (ContactPart)
    day: str  # YYYY-MM-DD
    type: str
    n: int


class SavedDashboard(SQLModel, table=True):
    """A person's own dashboard: the widgets they picked, in their order, and the filters they saved.
    Anyone signed in to the project can open it by its link (a rep still sees only their own contacts)."""

    id: int | None = Field(default=None, primary_key=True)
    owner: str = Field(index=True)  # the email of the user who made it (only they change it)
    name: str
    widgets: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    days: int = 30  # the period: the last N UTC days up to the day it is opened
    contacts_of: str | None = None  # a rep's email: their contacts; None: everyone's
    stage: str | None = None
    playbook: str | None = None
    attrs: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class Target(SQLModel, table=True):
    """A target an admin or a marketer set on a metric (outreach.analytics.targets): met or missed each
    week, flagged on the dashboard and in a daily email to its owner."""

    id: int | None = Field(default=None, primary_key=True)
    owner: str = Field(index=True)  # the email of who set it: the daily digest goes to them
    metric: str  # conversion | expired_per_rep_week
    stage: str | None = None  # conversion: the stage moved on from (to the next one)
    within_days: int = 30  # conversion: the window entries are counted in
    op: str  # ">=" | "<="
    threshold: float  # a fraction for a rate (0.25), a count otherwise
    contacts_of: str | None = None  # a rep's email: their contacts only; None: everyone's
    created_at: datetime = Field(default_factory=utcnow)
    notified_on: date | None = None  # the UTC day its owner was last sent the digest (claimed first)


class DoNotContact(SQLModel, table=True):
    """An address of a forgotten person, as a keyed hash (HMAC with the project's secret key): a later
    import or API upsert of the same email or phone is refused without the address being kept."""

    id: int | None = Field(default=None, primary_key=True)
    kind: str  # email | phone
    digest: str = Field(unique=True)  # hex HMAC-SHA256 of "kind:address"
    at: datetime = Field(default_factory=utcnow)


class ErasureRequest(SQLModel, table=True):
    """The audit trail of `outreach contacts forget`: who asked for a person's data to be erased, when."""

    id: int | None = Field(default=None, primary_key=True)
    contact_id: int = Field(index=True)  # no FK: the contact row stays, emptied, but need not
    actor: str
    at: datetime = Field(default_factory=utcnow)


class WebhookEvent(SQLModel, table=True):
    """The outbox of outbound webhooks: one row per event, written in the transaction of the change it
    tells (a stage change, a reply, an opt-out), so that no change goes untold and none is told twice.
    `body` is the exact JSON sent (and signed) every time."""

    id: int | None = Field(default=None, primary_key=True)
    msg_id: str = Field(unique=True)  # the webhook-id header: the same on every retry
    type: str
    contact_id: int | None = Field(default=None, index=True)  # events of one contact go out in order
    body: str
    created_at: datetime = Field(default_factory=utcnow)


class WebhookDelivery(SQLModel, table=True):
    """One event to one receiver: its state (pending, delivered, failed: gave up after a day of
    retries), the next try, and how the last attempt went. The delivery log of `webhooks deliveries`."""

    __table_args__ = (UniqueConstraint("event_id", "url"), Index("ix_webhookdelivery_status_next", "status",
                                                                 "next_at"))

    id: int | None = Field(default=None, primary_key=True)
    event_id: int = Field(foreign_key="webhookevent.id")
    url: str
    status: str = "pending"
    attempts: int = 0
    next_at: datetime = Field(default_factory=utcnow)
    last_status: int | None = None  # the receiver's HTTP status
    last_error: str | None = None
    delivered_at: datetime | None = None
    updated_at: datetime = Field(default_factory=utcnow)


class WebhookAttempt(SQLModel, table=True):
    """Every POST made, with what came back."""

    id: int | None = Field(default=None, primary_key=True)
    delivery_id: int = Field(foreign_key="webhookdelivery.id", index=True)
    at: datetime
    status: int | None = None
    error: str | None = None
    duration_ms: int = 0
class SendRate(SQLModel, table=True):
    """The shared token bucket of one sending number: every process that sends from it takes its
    turn here, so `sender.sms_rate` holds across any number of workers."""

    sender: str = Field(primary_key=True)
    next_at: float = 0.0  # epoch seconds: the earliest moment the next message may go
class Worker(SQLModel, table=True):
    """A dispatching process (`outreach run` or `outreach worker`) and its heartbeat: once `beat_at` is
    older than `dispatch.worker_timeout` the process is taken for dead, and the live ones settle the
    touches it left `sending` (Touch.claimed_by names it)."""

    id: str = Field(primary_key=True)  # host:pid:random, never reused by a restarted process
    host: str
    pid: int
    started_at: datetime = Field(default_factory=utcnow)
    beat_at: datetime = Field(default_factory=utcnow)


class SignInFailure(SQLModel, table=True):
    """A failed sign-in, kept for the sign-in limit's window (outreach.web.sessions.LoginThrottle): in the
    database, so every web host behind a load balancer counts the same failures."""

    __table_args__ = (Index("ix_signinfailure_email_at", "email", "at"),
                      Index("ix_signinfailure_address_at", "address", "at"),
                      Index("ix_signinfailure_at", "at"))  # old rows are deleted by time

    id: int | None = Field(default=None, primary_key=True)
    email: str
    address: str
    at: float  # epoch seconds: compared across hosts, like SendRate.next_at


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
