"""What a template and an `if:` see: the contact, the evidence that triggered a touch, the touch itself,
the rep and sender, and the links (unsubscribe) that bring the buyer's answer back."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from outreach import tokens
from outreach.config import Settings
from outreach.kinds import Channel
from outreach.models import Contact, Evidence, Touch
from outreach.senders import Sender


def contact_context(contact: Contact) -> dict[str, Any]:
    """What templates and `if:` see as `contact`: its fields, stage and attributes (also flat)."""
    attributes = dict(contact.attributes or {})
    fields = {k: getattr(contact, k) for k in (
        "id", "email", "phone", "first_name", "last_name", "company", "title", "timezone", "owner",
        "external_id", "stage")}
    return {**attributes, **fields, "attributes": attributes}


def evidence_context(ev: Evidence) -> dict[str, Any]:
    return {"type": ev.type, "occurred_at": ev.occurred_at, "source": ev.source, "data": dict(ev.data or {})}


class Lazy(dict[str, Any]):
    """A dict filled on its first read: a template that never looks at it costs no query."""

    def __init__(self, load: Callable[[], dict[str, Any]]) -> None:
        super().__init__()
        self._load: Callable[[], dict[str, Any]] | None = load

    def _fill(self) -> None:
        if self._load is not None:
            load, self._load = self._load, None
            self.update(load())

    def get(self, key: str, default: Any = None) -> Any:  # what View calls
        self._fill()
        return super().get(key, default)

    def __getitem__(self, key: str) -> Any:
        self._fill()
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        self._fill()
        return super().__contains__(key)

    def __str__(self) -> str:
        self._fill()
        return super().__str__()


NO_ACCOUNT: dict[str, Any] = {"id": None, "name": None, "domain": None, "stage": None, "members": []}


def template_context(settings: Settings, touch: Touch, contact: Contact, sender: Sender | None = None,
                     account: dict[str, Any] | None = None) -> dict[str, Any]:
    """`account`: the contact's account and the other members of its committee (accounts.store.committee)."""
    s = settings
    base = s.server.public_url.rstrip("/")
    token = tokens.sign(s.server.secret_key, "unsubscribe", [contact.id or 0, touch.id or 0])
    unsubscribe = f"{base}/unsubscribe/{token}"
    rep = {"email": contact.owner or s.sender.email, "name": s.sender.name if not contact.owner else
           contact.owner.split("@")[0].replace(".", " ").title()}
    if sender is not None and sender.rep:  # the owner is a user: their own name and address
        rep = {"email": sender.rep, "name": sender.rep_name or rep["name"]}

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
        "account": NO_ACCOUNT if account is None else account,
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
    account = {"id": "CRM-ACC-9", "name": "Northwind Analytical Engines International", "domain": "northwind.example",
               "stage": stage, "members": [
                   {"first_name": "Bartholomew", "last_name": "Okafor-Lindqvist", "title": "Chief Financial Officer",
                    "role": "economic_buyer", "stage": stage, "email": "bart@northwind.example"},
                   {"first_name": "Mei", "last_name": "Tanaka", "title": "Staff Engineer",
                    "role": "technical_evaluator", "stage": stage, "email": "mei@northwind.example"}]}
    return template_context(settings, touch, contact, account=account)
