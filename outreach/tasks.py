"""A rep's tasks: playbook steps on a `call` or `social` channel, done by hand (docs/RULES.md, "Tasks").

The planner queues a task as a pending touch, due inside its window; the dispatcher never claims
one. The rep records its outcome here: the touch is done (status `sent`, at that moment, so the caps
count it) and the outcome becomes evidence `<channel>.<outcome>` with the rep's note in its data."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import update
from sqlmodel import Session, col

from outreach.db import rows_changed
from outreach.errors import InvalidInput, InvalidTransition
from outreach.evidence import EvidenceIn
from outreach.kinds import TASK_CHANNELS, TASK_OUTCOMES, TouchStatus
from outreach.models import Touch
from outreach.queue import get_touch

NOTE_MAX = 2000
# what the card's buttons and the timeline say of each outcome
OUTCOME_WORDS = {"connected": "connected", "voicemail": "left a voicemail", "no_answer": "no answer",
                 "sent": "message sent", "replied": "they replied"}


def is_task(channel: str | None) -> bool:
    return channel in TASK_CHANNELS


def outcomes(channel: str | None) -> tuple[str, ...]:
    return TASK_OUTCOMES.get(channel or "", ())


def complete(session: Session, touch_id: int, outcome: str, note: str, actor: str, now: datetime,
             owner: str | None = None, source: str = "web") -> EvidenceIn:
    """Mark task `touch_id` done with `outcome` and return the evidence to record (in the same
    transaction). InvalidInput for an outcome the task's channel does not have; InvalidTransition when
    the touch is no pending task (done already, expired, or a message)."""
    touch, contact = get_touch(session, touch_id, owner)
    if not is_task(touch.channel):
        raise InvalidTransition(f"touch #{touch_id} is a {touch.channel or 'message'}, not a task: approve it instead")
    allowed = outcomes(touch.channel)
    if outcome not in allowed:
        raise InvalidInput(f"outcome '{outcome}' is not one of a {touch.channel}'s: {', '.join(allowed)}")
    note = note.strip()
    if len(note) > NOTE_MAX:
        raise InvalidInput(f"the note is {len(note)} characters: at most {NOTE_MAX}")
    reason = f"{OUTCOME_WORDS[outcome]}, recorded by {actor}"
    # the status is re-checked in the UPDATE: two reps recording the same call record it once
    done = session.execute(update(Touch).where(col(Touch.id) == touch_id, col(Touch.status) == TouchStatus.PENDING)
                           .values(status=TouchStatus.SENT, sent_at=now, reason=reason, updated_at=now))
    if rows_changed(done) != 1:
        raise InvalidTransition(f"touch #{touch_id} is {touch.status}: only a task still to do takes an outcome")
    data: dict[str, object] = {"by": actor, "outcome": outcome, **({"note": note} if note else {})}
    return EvidenceIn(f"{touch.channel}.{outcome}", now.astimezone(UTC), source, contact_id=contact.id,
                      touch_id=touch.id, dedupe_key=f"task:{touch.id}", data=data)
