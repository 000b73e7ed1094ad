"""Who may lift a suppression, and consent changed by staff on a buyer's behalf (audited).

Opt-outs always win: anybody may record one (the buyer's own act, or staff on the buyer's behalf),
but only the buyer lifts one: the provider's resubscribe event, START/UNSTOP from the same phone.
Staff faces (the JSON API, `outreach evidence add`, the web form) are refused the buyer-consent
events; an admin restores consent with `outreach contacts consent --granted`, which needs a
source and a reason and leaves a `ConsentChange` row behind."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, inspect, update
from sqlmodel import Session, col

from outreach import batch_loads
from outreach.errors import InvalidInput, OutreachError
from outreach.models import ConsentChange, Contact, Suppression

# Evidence that lifts a suppression: only the buyer's own acts, as the providers report them.
BUYER_CONSENT_EVENTS = frozenset({"email.resubscribed", "sms.opted_in"})
# Sources that are a person of ours typing, not a provider reporting what the buyer did.
STAFF_SOURCES = frozenset({"api", "cli", "web"})
CONSENT_CHANNELS = ("email", "sms")


class BuyerConsentOnly(OutreachError):
    """Staff tried to record an event only the buyer may cause (a resubscribe, an SMS opt-in)."""

    def __init__(self, event: str) -> None:
        super().__init__(f"only the buyer can record {event}: a suppression is lifted by the buyer's own "
                         "resubscribe or START, or by an admin with `outreach contacts consent --granted`")
        self.event = event


def refuse_buyer_consent(event: str) -> None:
    """Raise BuyerConsentOnly when `event` (recorded by staff) would lift a suppression."""
    if event in BUYER_CONSENT_EVENTS:
        raise BuyerConsentOnly(event)


def change_consent(session: Session, contact: Contact, channel: str, *, granted: bool, source: str, reason: str,
                   actor: str, now: datetime) -> ConsentChange:
    """Record that `actor` restored (`granted`) or revoked `contact`'s consent on `channel`, in the
    caller's transaction: the audit row, the consent flag, and the suppression lifted or added."""
    if channel not in CONSENT_CHANNELS:
        raise InvalidInput(f"unknown channel '{channel}' (one of: {', '.join(CONSENT_CHANNELS)})")
    source, reason = source.strip(), reason.strip()
    if not source or not reason:
        raise InvalidInput("a consent change needs a source (where the consent came from) and a reason")
    cid = contact.id or 0
    change = ConsentChange(contact_id=cid, channel=channel, granted=granted, source=source, reason=reason,
                           actor=actor, at=now)
    session.add(change)
    flag = col(Contact.consent_email) if channel == "email" else col(Contact.consent_sms)
    session.execute(update(Contact).where(col(Contact.id) == cid).values({flag: granted}))
    if granted:
        session.execute(delete(Suppression).where(col(Suppression.contact_id) == cid,
                                                  col(Suppression.channel) == channel))
    else:
        batch_loads.insert_ignore(session, inspect(Suppression).local_table,
                                  [{"contact_id": cid, "channel": channel, "reason": f"revoked by {actor}",
                                    "at": now}], ["contact_id", "channel"])
    session.flush()
    return change
