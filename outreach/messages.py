"""A touch and its contact -> the message a provider sends: rendered content, the addresses and
headers that bring the buyer's answer back to this touch (Message-ID, Reply-To, custom args,
List-Unsubscribe), and for meetings the iCalendar invite."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import formataddr
from html import escape
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from channels.base import TOUCH_ARG, OutgoingMessage
from channels.meeting import InviteAttendee, build_invite, propose_slot
from outreach import tokens
from outreach.config import Settings
from outreach.contacts import contact_tz
from outreach.content import Rendered, render, render_signature
from outreach.context import template_context
from outreach.kinds import Channel
from outreach.meetings import CANCEL_STEP, attendees_of, invite_of
from outreach.models import Contact, Touch
from outreach.ruleset import Ruleset
from outreach.senders import Sender


def render_touch(settings: Settings, content_dir: Path, touch: Touch, contact: Contact,
                 sender: Sender | None = None, account: dict[str, Any] | None = None) -> Rendered:
    """The content as the buyer will see it, with a rep's edits applied and, for email sent as a rep,
    the rep's signature (content/signatures/_<their address>.j2, else _default.j2) after it. A one-off
    message (no content key) is the person's own text."""
    ctx = template_context(settings, touch, contact, sender, account)
    if not touch.content:
        return _signed(content_dir, Rendered(touch.subject_override, touch.body_override or "", None), touch,
                       sender, ctx)
    rendered = render(content_dir, touch.content, touch.channel or Channel.EMAIL, ctx)
    if touch.subject_override:
        rendered.subject = touch.subject_override
    if touch.body_override:
        rendered.text, rendered.html = touch.body_override, None
    return _signed(content_dir, rendered, touch, sender, ctx)


def _signed(content_dir: Path, rendered: Rendered, touch: Touch, sender: Sender | None,
            ctx: dict[str, Any]) -> Rendered:
    if sender is not None and touch.channel == Channel.EMAIL:
        signature = render_signature(content_dir, sender.signature_names, ctx)
        if signature is not None:
            rendered.text = f"{rendered.text}\n\n-- \n{signature.text}"  # "-- " : mail clients know a signature by it
            if rendered.html is not None:
                rendered.html += f'\n<div class="signature">{signature.html or escape(signature.text)}</div>'
    return rendered


def build_message(settings: Settings, content_dir: Path, touch: Touch, contact: Contact,
                  rules: Ruleset, sender: Sender | None = None, account: dict[str, Any] | None = None
                  ) -> OutgoingMessage:
    """`sender`: who it goes out from (outreach.senders); the project sender when None."""
    s = settings
    sender = sender or Sender(s.sender.email, s.sender.name)
    rendered = render_touch(settings, content_dir, touch, contact, sender, account)
    tid = touch.id or 0
    ctx = template_context(settings, touch, contact, sender, account)
    msg = OutgoingMessage(
        touch_id=tid, channel=touch.channel or Channel.EMAIL, to_email=contact.email, to_phone=contact.phone,
        to_name=" ".join(p for p in (contact.first_name, contact.last_name) if p) or None,
        from_email=sender.email, from_name=sender.name, sms_from=s.sender.sms_from,
        subject=rendered.subject, text=rendered.text, html=rendered.html,
        custom_args={TOUCH_ARG: str(tid)}, categories=[touch.rule.replace(":", "-"), touch.step],
    )
    if msg.channel == Channel.SMS:
        msg.status_callback = f"{s.server.public_url.rstrip('/')}/webhooks/twilio/status"
        return msg
    msg.message_id = tokens.message_id(s.server.secret_key, tid, s.sender.domain)
    msg.reply_to = f"reply+{tokens.reply_token(s.server.secret_key, tid)}@{s.sendgrid.inbound_domain}"
    if sender.rep:  # the buyer's reply reaches the engine (evidence) and the rep's own inbox
        msg.reply_to_also = [formataddr((sender.rep_name or "", sender.rep))]
    msg.headers = {
        "List-Unsubscribe": f"<{ctx['links']['unsubscribe']}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    if msg.channel == Channel.MEETING:
        _attach_invite(settings, touch, contact, msg)
    return msg


def _utc(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt  # SQLite hands back naive UTC


def _attach_invite(settings: Settings, touch: Touch, contact: Contact, msg: OutgoingMessage) -> None:
    s = settings
    invite = invite_of(touch)  # a cancel carries the UID of the invite it cancels
    organizer = f"reply+{tokens.reply_token(s.server.secret_key, invite)}@{s.sendgrid.inbound_domain}"
    msg.subject = msg.subject or "Invitation"
    if touch.meeting_start is not None and touch.meeting_end is not None:  # the slot booked for it
        start, duration = _utc(touch.meeting_start), _utc(touch.meeting_end) - _utc(touch.meeting_start)
    else:  # planned before slots were booked: the first slot inside both working days, as it was
        window = s.policy.send_windows.get("meeting")
        zones = [contact_tz(contact, s.timezone).key, ZoneInfo(s.timezone).key]
        duration = timedelta(minutes=touch.meeting_minutes or 30)
        hours = window.minutes if window else (540, 1020)
        weekdays = window.weekdays if window else frozenset(range(5))
        earliest = touch.due_at + timedelta(days=2)
        try:
            start = propose_slot(earliest=earliest, duration=duration, zones=zones, hours=hours, weekdays=weekdays)
        except ValueError:  # the rep's and the buyer's hours never overlap: the buyer's hours win
            start = propose_slot(earliest=earliest, duration=duration, zones=zones[:1], hours=hours,
                                 weekdays=weekdays)
    more = attendees_of(touch)
    rep_name = next((i.name for i in more if i.role == "organizer" and i.name), None)
    msg.also_to = [(i.email, i.name) for i in more if i.buyer]  # every buyer it names gets it
    others = [InviteAttendee(i.email, i.name, "CHAIR" if i.role == "organizer" else "REQ-PARTICIPANT", rsvp=i.buyer)
              for i in more]
    msg.calendar = build_invite(
        uid=tokens.invite_uid(s.server.secret_key, invite, s.sender.domain), sequence=touch.meeting_sequence or 0,
        start=start, duration=duration, title=msg.subject, description=msg.text,
        organizer_email=organizer, organizer_name=rep_name or contact.owner or s.sender.name,
        attendee_email=contact.email or "", attendee_name=msg.to_name,
        now=max(_utc(touch.due_at), _utc(touch.updated_at)), cancel=touch.step == CANCEL_STEP, others=others)
