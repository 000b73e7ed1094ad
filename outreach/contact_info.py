"""Read models shared by the CLI, the JSON API and the pages: one function, three faces."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlmodel import Session, col

from outreach import batch_loads
from outreach.contacts import find_contact, normalize_phone
from outreach.engine import Engine
from outreach.errors import InvalidInput, NotFound
from outreach.models import CHANNELS, ConsentChange, Contact, Evidence, Preference, StageChange, Suppression
from outreach.preferences import pick_channel
from outreach.queue import iso, list_touches, touch_json
from outreach.senders import from_emails

_EVENT = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")


def validate_event(name: str) -> str:
    if not _EVENT.match(name or ""):
        raise InvalidInput(f"event '{name}' must be a dotted lowercase name like pricing.viewed")
    return name


def contact_json(c: Contact) -> dict[str, Any]:
    return {"id": c.id, "email": c.email, "phone": c.phone, "first_name": c.first_name,
            "last_name": c.last_name, "company": c.company, "title": c.title, "timezone": c.timezone,
            "owner": c.owner, "external_id": c.external_id, "attributes": dict(c.attributes or {}),
            "stage": c.stage, "stage_entered_at": iso(c.stage_entered_at)}


def channel_picks(session: Session, engine: Engine, contact: Contact) -> dict[str, dict[str, str | None]]:
    """What the engine would pick now for each interaction type, and why."""
    cid = contact.id or 0
    reach = batch_loads.reach_of(contact, batch_loads.suppressions(session, [cid]).get(cid))
    stated = batch_loads.stated_preferences(session, [cid]).get(cid, {})
    # a preference a person set on the buyer's behalf (the web page records their address) says who
    setters = {p.interaction: p.source.removeprefix("web:") for p in session.execute(
        select(Preference).where(col(Preference.contact_id) == cid)).scalars() if p.source.startswith("web:")}
    rules = engine.project.rules
    out: dict[str, dict[str, str | None]] = {}
    for name, inter in rules.interactions.items():
        learner = engine.learner_for(session, contact, name)
        pick = pick_channel(order=inter.channels, reach=reach, stated=stated.get(name),
                            email_consent=engine.settings.policy.email_consent, learner=learner)
        reason = pick.reason
        if name in setters and pick.channel == stated.get(name):
            reason = f"set by {setters[name]}"
        out[name] = {"channel": pick.channel, "reason": reason}
    return out


def contact_detail(session: Session, engine: Engine, ref: str | int) -> dict[str, Any]:
    c = find_contact(session, ref)
    evidence = session.execute(select(Evidence).where(col(Evidence.contact_id) == c.id).order_by(
        col(Evidence.occurred_at), col(Evidence.id))).scalars().all()
    changes = session.execute(select(StageChange).where(col(StageChange.contact_id) == c.id).order_by(
        col(StageChange.at))).scalars().all()
    by_id = {e.id: e for e in evidence}
    suppressions = session.execute(select(Suppression).where(col(Suppression.contact_id) == c.id)).scalars().all()
    prefs = session.execute(select(Preference).where(col(Preference.contact_id) == c.id)).scalars().all()
    audit = session.execute(select(ConsentChange).where(col(ConsentChange.contact_id) == c.id).order_by(
        col(ConsentChange.at), col(ConsentChange.id))).scalars().all()
    sender = from_emails(session, engine.settings, [c.owner])[c.owner.lower() if c.owner else None]
    return {
        "contact": contact_json(c),
        "stage": c.stage,
        "stage_changes": [{"from": ch.from_stage, "to": ch.to_stage, "at": iso(ch.at),
                           "evidence_id": ch.evidence_id,
                           "proof": by_id[ch.evidence_id].type if ch.evidence_id in by_id else None}
                          for ch in changes],
        "evidence": [{"id": e.id, "type": e.type, "occurred_at": iso(e.occurred_at), "source": e.source,
                      "touch_id": e.touch_id, "channel": e.channel, "interaction": e.interaction,
                      "data": e.data} for e in evidence],
        "touches": [touch_json(t, contact, sender) for t, contact in list_touches(session, contact_id=c.id)],
        "channels": channel_picks(session, engine, c),
        "stated": {p.interaction: p.channel for p in prefs},
        "consent": {"email": c.consent_email, "sms": c.consent_sms},
        "suppressions": [{"channel": s.channel, "reason": s.reason, "at": iso(s.at)} for s in suppressions],
        "consent_changes": [{"channel": a.channel, "granted": a.granted, "source": a.source, "reason": a.reason,
                             "actor": a.actor, "at": iso(a.at)} for a in audit],
    }


def set_preference(session: Session, engine: Engine, ref: str | int, interaction: str, channel: str,
                   source: str) -> Contact:
    rules = engine.project.rules
    if interaction not in rules.interactions:
        raise InvalidInput(f"unknown interaction '{interaction}' (one of: {', '.join(rules.interactions)})")
    if channel not in CHANNELS:
        raise InvalidInput(f"unknown channel '{channel}' (one of: {', '.join(CHANNELS)})")
    if channel not in rules.interactions[interaction].channels:
        raise InvalidInput(f"{interaction} does not use {channel} "
                           f"(it uses: {', '.join(rules.interactions[interaction].channels)})")
    c = find_contact(session, ref)
    pref = session.execute(select(Preference).where(col(Preference.contact_id) == c.id,
                                                    col(Preference.interaction) == interaction)).scalar_one_or_none()
    now = datetime.now(UTC)
    if pref is None:
        session.add(Preference(contact_id=c.id or 0, interaction=interaction, channel=channel, source=source,
                               updated_at=now))
    else:
        pref.channel, pref.source, pref.updated_at = channel, source, now
        session.add(pref)
    return c


def search_contacts(session: Session, *, text: str | None = None, stage: str | None = None,
                    owner: str | None = None, limit: int = 50, offset: int = 0) -> tuple[list[Contact], int]:
    """One page of the contacts whose name, email, company or external id contains `text`, at `stage`,
    owned by `owner`; and how many match in all. Two queries whatever the table's size."""
    conds: list[Any] = []
    if owner:
        conds.append(col(Contact.owner) == owner.lower())
    if stage:
        conds.append(col(Contact.stage) == stage)
    if text and text.strip():
        like = "%" + text.strip().lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        full_name = func.coalesce(col(Contact.first_name), "") + " " + func.coalesce(col(Contact.last_name), "")
        conds.append(or_(*(func.lower(col).like(like, escape="\\") for col in (
            col(Contact.email), col(Contact.company), col(Contact.external_id), full_name))))
    total = session.execute(select(func.count()).select_from(Contact).where(*conds)).scalar_one()
    # NULLs sort differently on SQLite and PostgreSQL: sort on a value that is never NULL
    key = func.lower(func.coalesce(col(Contact.last_name), col(Contact.first_name), col(Contact.email),
                                   col(Contact.phone), ""))
    rows = session.execute(select(Contact).where(*conds).order_by(key, col(Contact.id))
                           .limit(max(1, min(limit, 500))).offset(max(0, offset))).scalars().all()
    return list(rows), int(total)


def find_contact_by(session: Session, *, id: int | None = None, email: str | None = None,
                    external_id: str | None = None, phone: str | None = None, region: str = "US") -> Contact:
    """The contact an external system names by one of its keys (the first given wins); NotFound otherwise."""
    if id is not None:
        found = session.get(Contact, id)
    elif email:
        found = session.execute(select(Contact).where(col(Contact.email) == email.strip().lower())).scalar_one_or_none()
    elif external_id:
        found = session.execute(select(Contact).where(col(Contact.external_id) == external_id)).scalar_one_or_none()
    elif phone:
        found = session.execute(select(Contact).where(col(Contact.phone) == normalize_phone(phone, region))
                                .order_by(col(Contact.id)).limit(1)).scalar_one_or_none()
    else:
        raise InvalidInput("name the contact by one of: id, email, external_id, phone")
    if found is None:
        raise NotFound("no such contact")
    return found


def resolve_contacts(session: Session, refs: list[tuple[int | None, str | None, str | None, str | None]],
                     region: str) -> list[tuple[int, str | None] | str]:
    """For each (id, email, external_id, phone) the contact it names (by the first key given) as (id,
    owner), or why none: a few set-based queries whatever the number of refs."""
    keyed: list[tuple[str, str | int] | str] = []
    for cid, email, ext, phone in refs:
        if cid is not None:
            keyed.append(("id", cid))
        elif email:
            keyed.append(("email", email.strip().lower()))
        elif ext:
            keyed.append(("external_id", ext))
        elif phone:
            try:
                keyed.append(("phone", normalize_phone(phone, region)))
            except InvalidInput as exc:
                keyed.append(str(exc))
        else:
            keyed.append("name the contact by one of: id, email, external_id, phone")
    found: dict[tuple[str, str | int], tuple[int, str | None]] = {}
    columns = {"id": col(Contact.id), "email": col(Contact.email), "external_id": col(Contact.external_id),
               "phone": col(Contact.phone)}
    for kind, column in columns.items():
        values = sorted({k[1] for k in keyed if isinstance(k, tuple) and k[0] == kind}, key=str)
        for part in range(0, len(values), 500):
            for cid, owner, value in session.execute(
                    select(col(Contact.id), col(Contact.owner), column).where(column.in_(values[part:part + 500]))
                    .order_by(col(Contact.id).desc())):  # for a phone two share, the first contact wins
                if cid is not None and value is not None:
                    found[(kind, value)] = (cid, owner)
    return [k if isinstance(k, str) else found.get(k, "no such contact") for k in keyed]
