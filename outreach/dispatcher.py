"""Claim due touches, check policy at send time, render, send, record. A touch is handed to a
provider at most once: it is claimed (`sending`) in a committed transaction before the send and
settled right after; a worker that dies in between leaves it `sending` for recovery to settle."""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import ColumnElement, Connection, Engine, Update, and_, bindparam, case, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, col

from channels.base import OutgoingMessage, Provider, ProviderError, SendResult
from outreach import batch_loads, pacing
from outreach.accounts.store import states as account_states
from outreach.config import Settings
from outreach.contacts import contact_tz
from outreach.db import rows_changed, session_scope
from outreach.errors import OutreachError, RenderError
from outreach.inbox import PAUSED, paused_now
from outreach.kinds import TASK_CHANNELS, Channel
from outreach.models import Contact, Message, SendRate, Suppression, Touch, TouchStatus, table_of
from outreach.one_off import is_one_off
from outreach.pacing import RateLimiter
from outreach.policy import Verdict, decide, unreachable
from outreach.preferences import pick_channel
from outreach.ruleset import Ruleset

log = logging.getLogger(__name__)
IN_FLIGHT_WAIT = timedelta(minutes=1)


_TOUCH = table_of(Touch)
# a send recorded: the touch was `sending` (claimed by this worker) and is `sent` now
_MARK_SENT = update(_TOUCH).where(_TOUCH.c.id == bindparam("tid"), _TOUCH.c.status == bindparam("sending")).values(
    {_TOUCH.c[name]: bindparam(name, type_=_TOUCH.c[name].type) for name in (
        "status", "sent_at", "provider", "channel", "channel_reason", "provider_message_id", "reason", "updated_at")})


@functools.cache
def _settle(names: tuple[str, ...]) -> Update:
    """UPDATE touch SET <names> WHERE id = :tid AND status = :sending, built once per set of columns."""
    return update(_TOUCH).where(_TOUCH.c.id == bindparam("tid"), _TOUCH.c.status == bindparam("sending")).values(
        {_TOUCH.c[name]: bindparam(f"v_{name}", type_=_TOUCH.c[name].type) for name in names})


@dataclass
class DispatchResult:
    claimed: int = 0
    sent: int = 0
    failed: int = 0
    waiting: int = 0
    retried: int = 0
    suppressed: int = 0
    expired: int = 0
    reasons: dict[int, str] = field(default_factory=dict)

    def add(self, other: DispatchResult) -> None:
        for name in ("claimed", "sent", "failed", "waiting", "retried", "suppressed", "expired"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.reasons.update(other.reasons)


class SharedRateLimiter:
    """The token bucket of one sending number kept in the database (SendRate), shared by every process
    and thread that sends from it. Taking a turn is one atomic UPDATE ... RETURNING: PostgreSQL locks
    the row for it (a concurrent taker waits, then re-reads the new value), SQLite has one writer at a
    time; so no two takers get the same slot, whatever the number of workers."""

    def __init__(self, engine: Engine, sender: str, per_second: float) -> None:
        self.engine = engine
        self.sender = sender
        self.interval = 1.0 / per_second
        self._known = False

    def _take(self, at_least: float, step: float) -> float:
        """Set next_at = max(next_at, at_least) + step; return the new next_at."""
        table = table_of(SendRate)
        for attempt in range(3):
            with self.engine.begin() as conn:
                if not self._known:
                    dialect: Any = postgresql if conn.dialect.name == "postgresql" else sqlite
                    conn.execute(dialect.insert(table).values(sender=self.sender, next_at=0.0)
                                 .on_conflict_do_nothing())
                    self._known = True
                later = case((table.c.next_at > at_least, table.c.next_at), else_=at_least) + step
                row = conn.execute(update(table).where(table.c.sender == self.sender).values(
                    next_at=later).returning(table.c.next_at)).first()
            if row is not None:
                return float(row[0])
            self._known = False  # the row went away (a fresh database): make it again
            time.sleep(0.01 * (attempt + 1))
        raise OutreachError(f"could not take a sending turn for {self.sender}")

    def wait(self) -> None:
        now = time.time()
        at = self._take(now, self.interval) - self.interval  # the start of the slot we took
        if at > now:
            time.sleep(at - now)

    def slow_down(self, seconds: float) -> None:
        self._take(time.time() + seconds, 0.0)


class Limiter(Protocol):
    def wait(self) -> None: ...

    def slow_down(self, seconds: float) -> None: ...


@dataclass
class Dispatcher:
    """`build` turns a claimed touch and its contact into an OutgoingMessage (or raises RenderError);
    `providers` maps a channel to its provider."""

    engine: Engine
    settings: Settings
    rules: Callable[[], Ruleset]
    providers: dict[str, Provider]
    build: Callable[[Touch, Contact, Ruleset], OutgoingMessage]
    worker_id: str = "worker"
    templates: Callable[[str], set[str]] | None = None  # content key -> channels with a template
    limiters: dict[str, Limiter] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)  # set: claim nothing more
    throttle: bool = True
    # called with each send in the transaction that records it (so a killed batch leaves no count
    # behind and none missing): channel learning counts it, early provider callbacks are re-attributed
    on_recorded: Callable[[Connection, Touch, Contact, SendResult, datetime], None] | None = None

    def run_once(self, now: datetime | None = None, clock: Callable[[], datetime] | None = None) -> DispatchResult:
        """Dispatch every touch due at `now` (default: the clock), batch after batch. Per-sender
        rate limits pace real time only: with a given `now` (a simulated clock) nothing sleeps."""
        total = DispatchResult()
        self.throttle = now is None
        while not self.stop.is_set():
            at = now or (clock() if clock else datetime.now().astimezone())
            ids = self.claim(at)
            if not ids:
                return total
            total.add(self._process(ids, at))
        return total

    def claim(self, now: datetime) -> list[int]:
        """Mark a batch of due, approved touches `sending` for this worker and commit."""
        limit = self.settings.dispatch.batch_size
        with session_scope(self.engine) as s:
            due = select(col(Touch.id)).where(  # a rep's task (call, social) never goes to a provider
                col(Touch.status) == TouchStatus.APPROVED, col(Touch.due_at) <= now,
                or_(col(Touch.channel).is_(None), col(Touch.channel).not_in(TASK_CHANNELS))).order_by(
                col(Touch.due_at), col(Touch.id)).limit(limit)
            values = {"status": TouchStatus.SENDING, "claimed_by": self.worker_id, "claimed_at": now, "updated_at": now,
                      "attempts": col(Touch.attempts) + 1}
            if s.get_bind().dialect.name == "postgresql":
                # a CTE, not `id IN (subquery)`: PostgreSQL may re-run such a subquery and claim past LIMIT
                cte = due.with_for_update(skip_locked=True).cte("due")
                stmt = update(Touch).where(col(Touch.id) == cte.c.id)
            else:  # SQLite has one writer at a time: the claim is atomic as it is
                stmt = update(Touch).where(and_(col(Touch.id).in_(due.scalar_subquery()),
                                                col(Touch.status) == TouchStatus.APPROVED))
            result = s.execute(stmt.values(**values).returning(col(Touch.id)))
            return sorted(r[0] for r in result)

    def _process(self, ids: list[int], now: datetime) -> DispatchResult:
        out = DispatchResult(claimed=len(ids))
        rules = self.rules()
        policy = self.settings.policy
        with Session(self.engine, expire_on_commit=False) as s:
            touches = list(s.execute(select(Touch).where(col(Touch.id).in_(ids))).scalars())
            contacts = batch_loads.contacts_by_id(s, sorted({t.contact_id for t in touches}))
            cids = list(contacts)
            suppressed = batch_loads.suppressions(s, cids)
            stated = batch_loads.stated_preferences(s, cids)
            history = batch_loads.recent_sends(s, cids, now - timedelta(days=8))
            others = batch_loads.in_flight(s, cids, ids)
            accounts = account_states(s, rules.accounts, cids, now)
        go: list[tuple[Touch, Contact, OutgoingMessage]] = []
        settle: list[dict[str, Any]] = []
        for t in sorted(touches, key=lambda t: (t.due_at, t.id or 0)):
            contact = contacts[t.contact_id]
            done = {"id": t.id, "updated_at": now}
            if t.expires_at is not None and t.expires_at <= now:
                settle.append({**done, "status": TouchStatus.EXPIRED, "reason": "its time to be sent passed"})
                out.expired += 1
                continue
            held = paused_now(contact, now)
            if held is not None and not is_one_off(t):  # a person's own message is not automation
                settle.append({**done, "status": TouchStatus.APPROVED, "due_at": held,
                               "attempts": max(t.attempts - 1, 0),
                               "reason": f"{PAUSED}: {contact.paused_reason or 'by a person'}"})
                out.waiting += 1
                continue
            reach = batch_loads.reach_of(contact, suppressed.get(contact.id or 0))
            channel = t.channel or ""
            why = unreachable(reach, channel, policy.email_consent)
            if why:  # consent or suppression changed since planning: try the other channels
                inter = rules.interactions.get(t.interaction)
                pick = pick_channel(order=inter.channels if inter else [], reach=reach,
                                    stated=stated.get(contact.id or 0, {}).get(t.interaction),
                                    fixed=channel if t.channel_fixed else None, email_consent=policy.email_consent,
                                    templates=self.templates(t.content) if self.templates else None)
                if pick.channel is None:
                    settle.append({**done, "status": TouchStatus.SUPPRESSED, "reason": f"at send time: {pick.reason}"})
                    out.suppressed += 1
                    continue
                channel = t.channel = pick.channel
                t.channel_reason = f"{pick.reason} (re-picked at send time: {why})"
            tz = contact_tz(contact, self.settings.timezone)
            country = (contact.attributes or {}).get("country")
            # caps limit automation: a person's own answer keeps to the send window and consent, not the caps
            sends = [] if is_one_off(t) else history.get(contact.id or 0, [])
            verdict = decide(now, tz, channel, sends + others.get(contact.id or 0, []), policy, country)
            if not verdict.send and others.get(contact.id or 0) and decide(now, tz, channel, sends, policy,
                                                                            country).send:
                # only another worker's unsettled send stands in the way: look again once it settles
                verdict = Verdict(False, now + IN_FLIGHT_WAIT, "waiting: another worker is sending to this "
                                  "contact now, and caps count that send")
            account = accounts.get(contact.id or 0)
            hold = account.hold(contact.id or 0, now, rules.accounts.daily_cap, _pauses(rules, t)) if account else None
            if verdict.send and hold is not None:
                verdict = Verdict(False, hold.until, hold.reason)
            if not verdict.send:
                settle.append({**done, "status": TouchStatus.APPROVED, "due_at": verdict.until,
                               "reason": verdict.reason,
                               "channel": channel, "channel_reason": t.channel_reason,
                               "attempts": max(t.attempts - 1, 0)})
                out.waiting += 1
                continue
            try:
                message = self.build(t, contact, rules)
            except RenderError as exc:
                settle.append({**done, "status": TouchStatus.FAILED, "reason": str(exc)})
                out.failed += 1
                out.reasons[t.id or 0] = str(exc)
                continue
            history.setdefault(contact.id or 0, []).append((channel, now))  # caps count it from now on
            if account is not None:
                account.sent.append(now)
            go.append((t, contact, message))
        if settle:
            self._save(settle)
        workers = max(1, min(self.settings.dispatch.concurrency, len(go)))
        if go:
            lost = threading.Event()  # the database went away: attempt nothing more in this batch
            # SMS go one at a time, paced per sending number, in their own thread: email never waits behind them
            with ThreadPoolExecutor(workers, thread_name_prefix="send") as pool, \
                    ThreadPoolExecutor(1, thread_name_prefix="send-sms") as sms_pool:
                futures = [(sms_pool if m.channel == Channel.SMS else pool).submit(self._send, t, c, m, now, lost)
                           for t, c, m in go]
                results = [f.result() for f in futures]
            for res in results:
                if res is not None:
                    out.add(res)
            untried = [t.id or 0 for (t, _, _), res in zip(go, results, strict=True) if res is None]
            if untried:
                self._release(untried, now)
        return out

    def _release(self, ids: list[int], now: datetime, attempts: int = 6) -> None:
        """Give touches claimed but never attempted back to the queue; the database may be coming back,
        so try a few times before leaving them to recovery (which would make them `uncertain`)."""
        for attempt in range(attempts):
            try:
                with self.engine.begin() as conn:
                    conn.execute(update(table_of(Touch)).where(
                        col(Touch.id).in_(ids), col(Touch.status) == TouchStatus.SENDING).values(
                        status=TouchStatus.APPROVED, attempts=col(Touch.attempts) - 1, updated_at=now,
                        reason="given back to the queue: the database was lost mid-batch"))
                log.warning("gave %d untried touch(es) back to the queue", len(ids))
                return
            except DBAPIError:
                time.sleep(pacing.release_backoff(attempt))
        log.error("could not give %d untried touch(es) back: recovery will settle them", len(ids))

    def _send(self, touch: Touch, contact: Contact, message: OutgoingMessage, now: datetime,
              lost: threading.Event) -> DispatchResult | None:
        """Send one message and record the outcome; None: not attempted, the database was lost."""
        if lost.is_set():
            return None
        try:
            if message.channel == Channel.SMS and self.throttle:
                self._limiter(message.sms_from).wait()  # the number's turn is kept in the database
        except DBAPIError:
            log.exception("lost the database while waiting for touch %s's turn to send", touch.id)
            lost.set()
            return None  # never attempted: it goes back to the queue with the rest
        try:
            return self._attempt(touch, contact, message, now)
        except DBAPIError:
            # the provider's answer (if any) could not be recorded: this touch stays `sending` for
            # recovery; the ones not yet attempted go back to the queue
            log.exception("lost the database while recording touch %s", touch.id)
            lost.set()
            return DispatchResult(failed=1)

    def _attempt(self, touch: Touch, contact: Contact, message: OutgoingMessage, now: datetime) -> DispatchResult:
        out = DispatchResult()
        provider = self.providers[message.channel if message.channel != Channel.MEETING else "meeting"]
        try:
            result: SendResult = provider.send(message)
        except ProviderError as exc:
            return self._failed(touch, contact, message, exc, now)
        except Exception as exc:  # a bug or an unexpected SDK error: never retry blindly
            log.exception("send of touch %s failed unexpectedly", touch.id)
            exc2 = ProviderError(f"unexpected error: {type(exc).__name__}: {exc}", retryable=False)
            return self._failed(touch, contact, message, exc2, now)
        # Core, not an ORM session: this runs once per message, and the session's bookkeeping doubled its
        # cost; the two statements are built once and take their values as parameters (building them
        # per message was a third of the rest)
        with self.engine.begin() as conn:
            conn.execute(_MARK_SENT, {"tid": touch.id, "sending": TouchStatus.SENDING, "status": TouchStatus.SENT,
                                      "sent_at": self._accepted_at(now), "provider": result.provider,
                                      "channel": message.channel, "channel_reason": touch.channel_reason,
                                      "provider_message_id": result.provider_message_id, "reason": None,
                                      "updated_at": now})
            conn.execute(insert(table_of(Message)), {
                "touch_id": touch.id or 0, "channel": message.channel, "provider": result.provider,
                "to": (message.to_phone if message.channel == Channel.SMS else message.to_email) or "",
                "subject": message.subject, "text": message.text, "html": message.html, "created_at": now})
            if self.on_recorded is not None:
                touch.channel = message.channel
                self.on_recorded(conn, touch, contact, result, now)
        out.sent += 1
        return out

    def _accepted_at(self, now: datetime) -> datetime:
        """When the provider took the message: the clock now in real time (a batch's sends are paced over
        seconds or minutes), the simulated `now` when a simulation drives the clock."""
        return datetime.now(now.tzinfo) if self.throttle else now

    def _failed(self, touch: Touch, contact: Contact, message: OutgoingMessage, exc: ProviderError,
                now: datetime) -> DispatchResult:
        out = DispatchResult()
        dispatch = self.settings.dispatch
        decision = pacing.after_failure(exc, touch.attempts, dispatch.max_attempts, dispatch.retry_base,
                                        pacing.jitter(), now)
        values: dict[str, Any] = {"updated_at": now, "status": decision.status, "reason": decision.reason}
        if decision.delay is not None:
            values["due_at"] = now + decision.delay
        if decision.slow_down is not None:
            try:
                self._limiter(pacing.limiter_key(message.channel, message.sms_from)).slow_down(decision.slow_down)
            except DBAPIError:  # recording the retry matters more than slowing the number down
                log.warning("could not slow %s down: the database is away", message.sms_from)
        if decision.status == TouchStatus.APPROVED:
            out.retried += 1
        else:
            out.failed += 1
        with session_scope(self.engine) as s:
            s.execute(update(Touch).where(col(Touch.id) == touch.id,
                                          col(Touch.status) == TouchStatus.SENDING).values(**values))
            if exc.opted_out:
                batch_loads.insert_ignore(s, table_of(Suppression), [
                    {"contact_id": contact.id, "channel": message.channel, "reason": exc.reason, "at": now}],
                    ["contact_id", "channel"])
                if message.channel == Channel.SMS:
                    s.execute(update(Contact).where(col(Contact.id) == contact.id).values(consent_sms=False))
        out.reasons[touch.id or 0] = str(values["reason"])
        return out

    def _save(self, rows: list[dict[str, Any]]) -> None:
        """Settle the batch's touches that were not sent, in one transaction: one executemany per shape
        of row (a waiting touch sets more columns than an expired one), not a statement per touch."""
        shapes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for row in rows:
            shapes.setdefault(tuple(sorted(k for k in row if k != "id")), []).append(row)
        with self.engine.begin() as conn:  # Core: a batch can hold hundreds of waiting touches
            for names, group in shapes.items():
                conn.execute(_settle(names), [{**{f"v_{k}": r[k] for k in names}, "tid": r["id"],
                                               "sending": TouchStatus.SENDING} for r in group])

    def _limiter(self, key: str) -> Limiter:
        if key not in self.limiters:
            if pacing.shares_its_rate(key):  # a sending number: its rate holds across processes
                self.limiters[key] = SharedRateLimiter(self.engine, key, self.settings.sender.sms_rate)
            else:
                self.limiters[key] = RateLimiter(50.0)
        return self.limiters[key]


def _pauses(rules: Ruleset, touch: Touch) -> bool:
    """Whether an account's pause holds this touch: automated touches wait, unless their rule says
    `account_pause: ignore`; a touch a rep approved is the rep's own call."""
    if touch.rule.startswith("playbook:"):
        step = rules.step(touch.rule.removeprefix("playbook:"), touch.step)
        return step is None or (step.account_pause == "wait" and step.approval == "auto")
    trigger = rules.trigger(touch.step)
    return trigger is None or (trigger.account_pause == "wait" and trigger.approval == "auto")


def recover(engine: Engine, now: datetime, lease: timedelta = timedelta(minutes=10)) -> int:
    """Settle touches left `sending` longer than the lease: the backstop behind the heartbeats
    (outreach.workers), for touches no registered worker claimed (`outreach dispatch`, rows from before
    heartbeats) and for a live worker's send whose answer it could not record."""
    with session_scope(engine) as s:
        return settle(s, and_(col(Touch.status) == TouchStatus.SENDING, col(Touch.claimed_at) < now - lease), now,
                      "a worker stopped while sending")


def settle(s: Session, stale: ColumnElement[bool], now: datetime, why: str) -> int:
    """The one rule for touches a worker left `sending`: a recorded provider answer makes it `sent`;
    otherwise `uncertain`, for a person to resend or drop. Never re-sent blindly. Two set-based UPDATEs;
    returns how many became uncertain."""
    sending = and_(stale, col(Touch.status) == TouchStatus.SENDING)
    s.execute(update(Touch).where(sending, col(Touch.provider_message_id).is_not(None)).values(
        status=TouchStatus.SENT, updated_at=now, reason="settled by recovery from the provider's answer"))
    result = s.execute(update(Touch).where(sending).values(
        status=TouchStatus.UNCERTAIN, updated_at=now,
        reason=f"{why}: check with the provider, then resend or drop"))
    return rows_changed(result)


TOO_LATE_TO_APPROVE = "the moment for this touch passed before anyone approved it"
TOO_LATE_TO_SEND = "the moment for this touch passed before it could be sent"


def expire(engine: Engine, now: datetime) -> int:
    """Pending touches nobody approved in time, and open ones whose `within` passed."""
    with session_scope(engine) as s:
        stale = s.execute(update(Touch).where(col(Touch.status) == TouchStatus.PENDING,
                                              col(Touch.approve_by) <= now).values(
            status=TouchStatus.EXPIRED, updated_at=now, reason=TOO_LATE_TO_APPROVE))
        late = s.execute(update(Touch).where(col(Touch.status).in_((TouchStatus.PENDING, TouchStatus.APPROVED)),
                                             col(Touch.expires_at) <= now).values(
            status=TouchStatus.EXPIRED, updated_at=now, reason=TOO_LATE_TO_SEND))
        return rows_changed(stale) + rows_changed(late)
