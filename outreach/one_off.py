"""A message a person writes to one buyer (an answer to a reply, a note from the contact page): a touch
like any other, approved by its writer, so it goes through the same dispatcher, send windows, caps,
consent and suppression checks, and its answers come back to it."""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlmodel import Session

from outreach.errors import InvalidInput
from outreach.kinds import Channel
from outreach.models import Contact, Touch, TouchStatus

ONE_OFF = "one-off"  # the rule of a touch a person wrote; its content is the person's text, no template
CHANNELS = (Channel.EMAIL, Channel.SMS)


def is_one_off(touch: Touch) -> bool:
    return touch.rule == ONE_OFF


def send_one_off(session: Session, contact: Contact, *, channel: str, body: str, actor: str, now: datetime,
                 subject: str | None = None, answers: int | None = None) -> Touch:
    """Queue the person's message, approved and due now; `answers` is the evidence (a reply) it answers."""
    if channel not in CHANNELS:
        raise InvalidInput(f"a one-off message goes by {' or '.join(CHANNELS)}, not '{channel}'")
    text = body.replace("\r\n", "\n").strip()
    if not text:
        raise InvalidInput("write a message first")
    if channel == Channel.EMAIL and not contact.email:
        raise InvalidInput("this buyer has no email address")
    if channel == Channel.SMS and not contact.phone:
        raise InvalidInput("this buyer has no phone number")
    if channel == Channel.EMAIL and not (subject or "").strip():
        raise InvalidInput("an email needs a subject")
    touch = Touch(contact_id=contact.id or 0, dedupe_key=f"{ONE_OFF}:{contact.id}:{secrets.token_hex(8)}",
                  stage=contact.stage, stage_entry=contact.stage_entry, rule=ONE_OFF,
                  step="answer" if answers else "message", interaction=ONE_OFF, content="",
                  channel=channel, channel_reason=f"set by {actor}", channel_fixed=True,
                  status=TouchStatus.APPROVED, reason=None, due_at=now, evidence_id=answers,
                  subject_override=(subject or "").strip()[:300] or None if channel == Channel.EMAIL else None,
                  body_override=text, created_at=now, updated_at=now)
    session.add(touch)
    session.flush()
    return touch
