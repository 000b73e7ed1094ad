"""What a template and an `if:` see: the contact, the evidence that triggered a touch, the touch itself,
the rep and sender, and the links (unsubscribe) that bring the buyer's answer back."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from outreach import tokens
from outreach.config import Settings
from outreach.kinds import Channel
from outreach.models import Contact, Evidence, Touch


def contact_context(contact: Contact) -> dict[str, Any]:
    """What templates and `if:` see as `contact`: its fields, stage and attributes (also flat)."""
    attributes = dict(contact.attributes or {})
    fields = {k: getattr(contact, k) for k in (
        "id", "email", "phone", "first_name", "last_name", "company", "title", "timezone", "owner",
        "external_id", "stage")}
    return {**attributes, **fields, "attributes": attributes}


def evidence_context(ev: Evidence) -> dict[str, Any]:
    return {"type": ev.type, "occurred_at": ev.occurred_at, "source": ev.source, "data": dict(ev.data or {})}


def template_context(settings: Settings, touch: Touch, contact: Contact) -> dict[str, Any]:
    s = settings
    base = s.server.public_url.rstrip("/")
    token = tokens.sign(s.server.secret_key, "unsubscribe", [contact.id or 0, touch.id or 0])
    unsubscribe = f"{base}/unsubscribe/{token}"
    rep = {"email": contact.owner or s.sender.email, "name": s.sender.name if not contact.owner else
           contact.owner.split("@")[0].replace(".", " ").title()}

    def click(url: str) -> str:
        """`{{ links.click("https://example.com/pricing") }}`: the link through the engine (/c/...),
        which records the click and lets /t.js on that site know the visitor."""
        token = tokens.sign_timed(s.server.secret_key, "click", [touch.id or 0, contact.id or 0, str(url)])
        return f"{base}/c/{token}"

    return {
        "contact": contact_context(contact),
        "rep": rep,
        "sender": {"email": s.sender.email, "name": s.sender.name, "domain": s.sender.domain},
        "outreach": {"id": touch.id, "stage": touch.stage, "rule": touch.rule, "step": touch.step,
                     "interaction": touch.interaction, "channel": touch.channel},
        "links": {"unsubscribe": unsubscribe, "click": click},
    }


def sample_context(settings: Settings, stage: str = "interested") -> dict[str, Any]:
    """What templates see for a made-up buyer with long-ish values, for `check`: the real contacts
    are in the database, which `check` does not open."""
    contact = Contact(
        id=123456, email="alexandra.vandenberghe@northwind-analytics.example", phone="+14155550123",
        first_name="Alexandra", last_name="Vandenberghe-Okonkwo", company="Northwind Analytical Engines International",
        title="Vice President of Finance Operations", timezone="America/New_York",
        owner="christopher.montgomery@example.com", external_id="CRM-0012345",
        attributes={"industry": "financial services", "country": "US"}, stage=stage)
    now = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    touch = Touch(id=987654, contact_id=123456, dedupe_key="sample", stage=stage, rule=f"playbook:{stage}",
                  step="sample", interaction="routine", content="sample", channel=Channel.SMS, due_at=now)
    return template_context(settings, touch, contact)
