"""Approved touches ready to send, for the dispatcher's tests: one buyer each, with consent to both
channels, added to an open session."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlmodel import Session

from outreach.models import Contact, Touch, TouchStatus


def approved_touches(s: Session, count: int, due: Callable[[int], datetime], *,
                     sms: Callable[[int], bool] = lambda i: True) -> None:
    """`count` buyers at `interested`, each with one approved check-in due at `due(i)`: an SMS
    reminder where `sms(i)`, else a routine email."""
    for i in range(count):
        text = sms(i)
        contact = Contact(email=f"buyer{i}@example.org", phone=f"+1415555010{i}", consent_sms=True,
                          first_name=f"Buyer{i}", stage="interested")
        s.add(contact)
        s.flush()
        s.add(Touch(contact_id=contact.id or 0, dedupe_key=f"t{i}", stage="interested",
                    rule="playbook:interested", step="check-in", interaction="reminder" if text else "routine",
                    content="interested/check-in", channel="sms" if text else "email",
                    status=TouchStatus.APPROVED, due_at=due(i)))
