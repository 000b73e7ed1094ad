"""Inbound Parse posts for the sandbox's buyer: a reply to a recorded email as Gmail sends it and an
RSVP to a recorded meeting invite as Google Calendar sends it, both in SendGrid's parsed format
(multipart/form-data with headers, from, to, subject, text, html, envelope, charsets, SPF, dkim,
attachments and attachment-info, attachment1..N as file parts). Pure functions over the message
records `outreach.sandbox.server` keeps; the HTTP posting is `outreach.sandbox.buyer`'s."""

from __future__ import annotations

import json
import secrets
import time
import uuid
from datetime import UTC, datetime
from email.utils import format_datetime, formataddr
from html import escape
from typing import Any

from icalendar import Calendar, Component, Event, vCalAddress

BOUNDARY = "xYzZY"  # the boundary SendGrid's own samples use
CHARSETS = json.dumps({"to": "UTF-8", "html": "UTF-8", "subject": "UTF-8", "from": "UTF-8", "text": "UTF-8"})
GOOGLE_PRODID = "-//Google Inc//Google Calendar 70.9054//EN"
# PARTSTAT -> (subject label, sentence), as Google Calendar words its RSVP mails.
RSVP_WORDS = {
    "ACCEPTED": ("Accepted", "has accepted this invitation."),
    "DECLINED": ("Declined", "has declined this invitation."),
    "TENTATIVE": ("Tentatively Accepted", "has tentatively accepted this invitation."),
}

Files = dict[str, tuple[str, str, bytes]]  # field name -> (filename, content type, content)


def multipart(fields: dict[str, str], files: Files | None = None) -> tuple[bytes, str]:
    """`fields` and `files` as a multipart/form-data body; returns (body, Content-Type)."""
    parts = [f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode() + value.encode()
             + b"\r\n" for name, value in fields.items()]
    for name, (filename, ctype, content) in (files or {}).items():
        parts.append(f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                     f"Content-Type: {ctype}\r\n\r\n".encode() + content + b"\r\n")
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode(), f"multipart/form-data; boundary={BOUNDARY}"


def _received(to: str, host: str, ip: str, date: str) -> str:
    return (f"Received: by mx0047p1mdw1.sendgrid.net with SMTP id {secrets.token_urlsafe(8)} {date}\n"
            f"Received: from {host} ({host} [{ip}]) by mx0047p1mdw1.sendgrid.net (Postfix) with ESMTPS id "
            f"{secrets.token_hex(5).upper()} for <{to}>; {date}\n")


def _domain(address: str) -> str:
    return address.rpartition("@")[2] or "example.com"


def _gmail_date(when: datetime) -> str:
    hour = when.strftime("%I").lstrip("0")
    return f"{when:%a}, {when:%b} {when.day}, {when.year} at {hour}:{when:%M} {when:%p}"


def reply_post(message: dict[str, Any], text: str, *, sender: str | None = None, sender_name: str | None = None,
               subject: str | None = None, auto_reply: bool = False,
               now: float | None = None) -> tuple[dict[str, str], Files]:
    """A Gmail reply to `message` (a recorded email): sent to its Reply-To (else its From), with
    In-Reply-To and References naming its Message-ID and the original quoted below "On ... wrote:".
    With `auto_reply`, an out-of-office answer (Auto-Submitted: auto-replied)."""
    when = datetime.fromtimestamp(time.time() if now is None else now, UTC)
    date = format_datetime(when)
    to = message.get("reply_to") or message["from"]
    sender = sender or message["to"]
    name = message.get("to_name") if sender_name is None and sender == message["to"] else sender_name
    from_field = formataddr((name or "", sender)) if name else sender
    original = (message.get("headers") or {}).get("Message-ID")
    subject = subject or ("Automatic reply: " if auto_reply else "Re: ") + (message.get("subject") or "")
    headers = _received(to, "mail-lf1-f41.google.com", "209.85.167.41", date) + "MIME-Version: 1.0\n"
    if original:
        headers += f"References: {original}\nIn-Reply-To: {original}\n"
    if auto_reply:
        headers += "Auto-Submitted: auto-replied\nPrecedence: bulk\n"
    headers += (f"From: {from_field}\nDate: {date}\nMessage-ID: <CA{secrets.token_urlsafe(24)}@mail.gmail.com>\n"
                f"Subject: {subject}\nTo: {to}\n"
                f'Content-Type: multipart/alternative; boundary="{secrets.token_hex(14)}"\n')
    sent = datetime.fromtimestamp(message.get("received_at") or when.timestamp(), UTC)
    author = formataddr((message.get("from_name") or "", message["from"]))
    quoted = "\n".join(f"> {line}".rstrip() for line in (message.get("text") or "").splitlines())
    full_text = text if auto_reply else f"{text}\n\nOn {_gmail_date(sent)} {author}\nwrote:\n\n{quoted}\n"
    html = f'<div dir="ltr">{escape(text).replace(chr(10), "<br>")}</div>'
    if not auto_reply:
        html += (f'<br><div class="gmail_quote"><div dir="ltr" class="gmail_attr">On {_gmail_date(sent)} '
                 f'{escape(author)} wrote:<br></div><blockquote class="gmail_quote">'
                 f'{message.get("html") or escape(message.get("text") or "")}</blockquote></div>')
    fields = {
        "headers": headers, "dkim": f"{{@{_domain(sender)} : pass}}", "to": to, "html": html, "from": from_field,
        "text": full_text, "sender_ip": "209.85.167.41", "envelope": json.dumps({"to": [to], "from": sender}),
        "attachments": "0", "subject": subject, "charsets": CHARSETS, "SPF": "pass",
    }
    return fields, {}


def _invite(message: dict[str, Any]) -> Component:
    ics = message.get("calendar")
    if not ics:
        raise ValueError(f"the email to {message['to']} carries no calendar invite")
    events = Calendar.from_ical(ics).walk("VEVENT")
    if not events:
        raise ValueError(f"the calendar sent to {message['to']} has no VEVENT")
    return events[0]


def _clock(when: datetime) -> str:
    hour = when.strftime("%I").lstrip("0")
    return f"{hour}{when:%p}".lower() if when.minute == 0 else f"{hour}:{when:%M}{when:%p}".lower()


def rsvp_calendar(message: dict[str, Any], partstat: str, *, name: str | None = None, comment: str | None = None,
                  now: float | None = None) -> tuple[str, Component]:
    """The METHOD:REPLY Google Calendar mails back for the invite in `message`; (ics, the invite)."""
    invite = _invite(message)
    stamp = datetime.fromtimestamp(time.time() if now is None else now, UTC).replace(microsecond=0)
    reply = Calendar()
    for key, value in (("prodid", GOOGLE_PRODID), ("version", "2.0"), ("calscale", "GREGORIAN"),
                       ("method", "REPLY")):
        reply.add(key, value)
    event = Event()
    event.add("dtstart", invite.decoded("DTSTART"))
    if "DTEND" in invite:
        event.add("dtend", invite.decoded("DTEND"))
    event.add("dtstamp", stamp)
    if "ORGANIZER" in invite:
        event["ORGANIZER"] = invite["ORGANIZER"]
    event.add("uid", str(invite["UID"]))
    attendee = vCalAddress(f"mailto:{message['to']}")
    attendee.params.update({"CUTYPE": "INDIVIDUAL", "ROLE": "REQ-PARTICIPANT", "PARTSTAT": partstat,
                            "CN": name or message.get("to_name") or message["to"], "X-NUM-GUESTS": "0"})
    event.add("attendee", attendee)
    if comment:
        event.add("comment", comment)
    event.add("created", stamp)
    event.add("description", str(invite.get("DESCRIPTION", "")))
    event.add("last-modified", stamp)
    event.add("location", str(invite.get("LOCATION", "")))
    event.add("sequence", int(invite.get("SEQUENCE", 0)))
    event.add("status", "CONFIRMED")
    event.add("summary", str(invite.get("SUMMARY", "")))
    event.add("transp", "OPAQUE")
    reply.add_component(event)
    return reply.to_ical().decode(), invite


def rsvp_post(message: dict[str, Any], partstat: str, *, comment: str | None = None,
              now: float | None = None) -> tuple[dict[str, str], Files]:
    """Google Calendar's RSVP mail for the invite in `message`: to the invite's ORGANIZER, with the
    METHOD:REPLY as the `invite.ics` attachment. Raises ValueError for an unknown PARTSTAT or a
    message without an invite."""
    partstat = partstat.strip().upper()
    if partstat not in RSVP_WORDS:
        raise ValueError(f"partstat must be one of {', '.join(RSVP_WORDS)}, not {partstat!r}")
    ics, invite = rsvp_calendar(message, partstat, comment=comment, now=now)
    when = datetime.fromtimestamp(time.time() if now is None else now, UTC)
    date = format_datetime(when)
    organizer = invite.get("ORGANIZER")
    to = str(organizer or "").removeprefix("mailto:").removeprefix("MAILTO:") or message.get("reply_to") \
        or message["from"]
    organizer_name = organizer.params.get("CN") if organizer is not None else None
    name = message.get("to_name") or message["to"]
    sender = formataddr((name, message["to"])) if message.get("to_name") else message["to"]
    label, sentence = RSVP_WORDS[partstat]
    start = invite.decoded("DTSTART")
    end = invite.decoded("DTEND") if "DTEND" in invite else start
    summary = str(invite.get("SUMMARY", ""))
    span = (f"{start:%a %b} {start.day}, {start.year} {_clock(start)} - {_clock(end)} (UTC)"
            if isinstance(start, datetime) else str(start))
    subject = f"{label}: {summary} @ {span}" + (f" ({organizer_name})" if organizer_name else "")
    headers = (_received(to, "mail-sor-f69.google.com", "209.85.220.69", date)
               + f"MIME-Version: 1.0\nReply-To: {sender}\nMessage-ID: <calendar-{uuid.uuid4()}@google.com>\n"
               f"Date: {date}\nSubject: {subject}\nFrom: {sender}\nTo: {to}\n"
               f'Content-Type: multipart/mixed; boundary="{secrets.token_hex(14)}"\n')
    fields = {
        "headers": headers, "dkim": "{@google.com : pass}", "to": to, "from": sender,
        "text": f"{name} {sentence}\n\n{summary}\n" + (f"\n{comment}\n" if comment else ""),
        "html": f"<span><p>{escape(name)} {sentence}</p></span>", "sender_ip": "209.85.220.69",
        "envelope": json.dumps({"to": [to], "from": "calendar-server.bounces.google.com"}), "attachments": "1",
        "attachment-info": json.dumps({"attachment1": {"filename": "invite.ics", "name": "invite.ics",
                                                       "type": "application/ics"}}),
        "subject": subject, "charsets": CHARSETS, "SPF": "pass",
    }
    return fields, {"attachment1": ("invite.ics", "application/ics", ics.encode())}
