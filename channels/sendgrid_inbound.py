"""SendGrid Inbound Parse: replies and calendar RSVPs that reach the inbound domain.

Pure parsing: the route hands in the decoded form and gets an `InboundEmail` back. A post that is
not an Inbound Parse post raises `WebhookRejected(400)`, so that nothing changes."""

from __future__ import annotations

import email
import html as html_lib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.header import decode_header, make_header
from email.message import Message
from email.utils import getaddresses

from channels.meeting import CalendarReply, parse_replies
from outreach.errors import WebhookRejected


@dataclass
class InboundEmail:
    """A mail that reached the Inbound Parse host. `sender` is the bare lower-cased address;
    `recipients` holds To, Cc and the SMTP envelope recipients (case kept, no duplicates); `text`
    is the new part of the reply with quoted history removed (`full_text` keeps everything);
    `message_id`, `in_reply_to` and `references` keep their angle brackets."""

    sender: str
    sender_name: str | None
    recipients: list[str]
    subject: str
    text: str
    full_text: str = ""
    html: str | None = None
    message_id: str | None = None
    in_reply_to: str | None = None
    references: list[str] = field(default_factory=list)
    auto_reply: bool = False
    auto_reply_reason: str | None = None
    calendar_replies: list[CalendarReply] = field(default_factory=list)


_CALENDAR_TYPES = ("text/calendar", "application/ics")
MAX_POST = 30 * 1024 * 1024  # Inbound Parse posts up to 30 MB, attachments included


def parse_inbound(form: Mapping[str, object], files: Mapping[str, bytes] | None = None) -> InboundEmail:
    """Read an Inbound Parse post, parsed mode (headers, text, html, from, to, cc, subject,
    envelope, charsets, attachment-info and files attachment1..N) or raw mode (`email` holds the
    whole MIME message). Byte values are decoded with the charset SendGrid names in `charsets`;
    values of other types (a framework's upload objects) are ignored: pass uploads as `files`.
    Calendar parts (text/calendar, application/ics, *.ics) are read for METHOD:REPLY answers.
    Raises WebhookRejected(400) when the post has neither `email` nor `from`/`headers`, or when no
    sender address can be found."""
    charsets = _json_object(form.get("charsets"))
    fields = {k: _decode(v, charsets.get(k)) for k, v in form.items() if isinstance(v, str | bytes)}
    raw = fields.get("email", "")
    raw_mode = bool(raw.strip())
    if raw_mode:
        headers: Message = email.message_from_string(raw)
        text, html, calendars = _walk(headers)
    elif fields.get("from") or fields.get("headers"):
        headers = email.message_from_string(fields.get("headers", "").strip() + "\n\n")
        text, html = fields.get("text", ""), fields.get("html") or None
        calendars = _parsed_calendars(fields, files or {})
    else:
        raise WebhookRejected(400, "inbound post has neither 'email' (raw mode) nor 'from'/'headers'")
    if not text and html:
        text = _html_to_text(html)

    def values(name: str) -> list[str]:
        # Raw mode trusts the message's own headers; parsed mode SendGrid's decoded fields.
        header = [str(v) for v in headers.get_all(name, [])]
        form_value = [fields[name.lower()]] if fields.get(name.lower()) else []
        return (header or form_value) if raw_mode else (form_value or header)

    senders = _addresses(values("From"))
    if not senders:
        raise WebhookRejected(400, "inbound mail has no sender address")
    sender_name, sender = senders[0]
    recipients = [addr for _, addr in _addresses(values("To") + values("Cc"))]
    envelope_to = _json_object(fields.get("envelope")).get("to", [])
    recipients += [a for a in (envelope_to if isinstance(envelope_to, list) else [envelope_to])
                   if isinstance(a, str) and "@" in a]
    subject = _decoded(next(iter(values("Subject")), ""))
    auto_reason = _auto_reply_reason(headers, subject)
    replies: list[CalendarReply] = []
    for ics in calendars:
        try:
            replies += [r for r in parse_replies(ics) if r not in replies]
        except ValueError:
            continue  # a broken calendar part must not lose the mail around it
    return InboundEmail(
        sender=sender.lower(), sender_name=sender_name or None, recipients=_unique(recipients),
        subject=subject.strip(), text=strip_quoted(text), full_text=text, html=html,
        message_id=next(iter(_msg_ids(headers.get("Message-ID"))), None),
        in_reply_to=next(iter(_msg_ids(headers.get("In-Reply-To"))), None),
        references=_msg_ids(headers.get("References")),
        auto_reply=auto_reason is not None, auto_reply_reason=auto_reason, calendar_replies=replies,
    )


def reply_tokens(inbound: InboundEmail, inbound_domain: str) -> list[str]:
    """Tokens of recipients shaped `reply+TOKEN@inbound_domain` (domain and `reply+` matched
    case-insensitively, the token's case kept), in order, without duplicates."""
    domain = inbound_domain.strip().lower().lstrip("@")
    tokens = []
    for address in inbound.recipients:
        local, _, host = address.rpartition("@")
        if host.lower() == domain and local[:6].lower() == "reply+" and local[6:]:
            tokens.append(local[6:])
    return _unique(tokens)


def _decode(value: str | bytes, charset: object) -> str:
    if isinstance(value, str):
        return value
    try:
        return value.decode(charset if isinstance(charset, str) and charset else "utf-8", errors="replace")
    except LookupError:
        return value.decode("utf-8", errors="replace")


def _json_object(value: object) -> dict[str, object]:
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    try:
        parsed = json.loads(value) if isinstance(value, str) and value.strip() else {}
    except ValueError:
        return {}  # optional metadata: a garbled value must not reject the mail
    return parsed if isinstance(parsed, dict) else {}


def _walk(message: Message) -> tuple[str, str | None, list[str | bytes]]:
    """First inline text/plain and text/html bodies, and every calendar part, of a MIME message."""
    text, html = "", None
    calendars: list[str | bytes] = []
    for part in message.walk():
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        filename = (part.get_filename() or "").lower()
        if ctype in _CALENDAR_TYPES or filename.endswith(".ics"):
            calendars.append(_part_text(part))
        elif part.get_content_disposition() == "attachment":
            continue
        elif ctype == "text/plain" and not text:
            text = _part_text(part)
        elif ctype == "text/html" and html is None:
            html = _part_text(part)
    return text, html, calendars


def _part_text(part: Message) -> str:
    encoded = str(part.get("Content-Transfer-Encoding", "")).strip().lower() in ("base64", "quoted-printable")
    if not encoded and isinstance(part.get_payload(), str):
        # The message was parsed from text: an 8-bit body is already decoded, and decode=True would
        # turn its non-ASCII characters into escape sequences.
        return str(part.get_payload())
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    try:
        return payload.decode(part.get_content_charset() or "utf-8", errors="replace")
    except LookupError:
        return payload.decode("utf-8", errors="replace")


def _parsed_calendars(fields: Mapping[str, str], files: Mapping[str, bytes]) -> list[str | bytes]:
    info = _json_object(fields.get("attachment-info"))
    names = list(dict.fromkeys([*info, *files, *(k for k in fields if re.fullmatch(r"attachment\d+", k))]))
    calendars: list[str | bytes] = []
    for name in names:
        entry = info.get(name)
        meta: dict[object, object] = entry if isinstance(entry, dict) else {}
        ctype = str(meta.get("type", "")).split(";")[0].strip().lower()
        filename = str(meta.get("filename") or meta.get("name") or "").lower()
        # Web frameworks give a file part without a filename as a plain field: accept both.
        content = files.get(name, fields.get(name))
        if content and (ctype in _CALENDAR_TYPES or filename.endswith(".ics")):
            calendars.append(content)
    return calendars


def _addresses(values: list[str]) -> list[tuple[str, str]]:
    found = []
    for name, addr in getaddresses([str(v) for v in values]):
        if "@" in addr:
            found.append((_decoded(name).strip(), addr.strip()))
    return found


def _decoded(value: str) -> str:
    try:
        return str(make_header(decode_header(str(value))))
    except (ValueError, LookupError, UnicodeError):
        return str(value)


def _msg_ids(value: object) -> list[str]:
    return re.findall(r"<[^<>\s]+>", str(value)) if value else []


def _unique(items: list[str]) -> list[str]:
    seen: set[str] = set()
    unique = []
    for item in items:
        if item.lower() not in seen:
            seen.add(item.lower())
            unique.append(item)
    return unique


_AUTO_SUBJECT = re.compile(
    r"\s*(out of (the )?office|automatic reply|auto[- ]?reply|auto[- ]?response|abwesenheitsnotiz"
    r"|automatische antwort|réponse automatique|respuesta automática|risposta automatica"
    r"|automatisch antwoord)\b", re.IGNORECASE)


def _auto_reply_reason(headers: Message, subject: str) -> str | None:
    """Why this mail looks machine-written (RFC 3834 and vendor headers, known subjects), or None."""
    submitted = str(headers.get("Auto-Submitted", "")).split(";")[0].strip().lower()
    if submitted and submitted != "no":
        return f"Auto-Submitted: {submitted}"
    for name in ("X-Autoreply", "X-Autorespond"):
        if headers.get(name) is not None:
            return f"{name} header"
    precedence = str(headers.get("Precedence", "")).strip().lower()
    if precedence in ("auto_reply", "bulk", "junk"):
        return f"Precedence: {precedence}"
    # Outlook puts X-Auto-Response-Suppress on ordinary mail too; only with the inbox-rule loop
    # marker does it tell an Exchange automatic reply.
    if headers.get("X-Auto-Response-Suppress") is not None and headers.get("X-MS-Exchange-Inbox-Rules-Loop"):
        return "Exchange automatic reply (X-Auto-Response-Suppress, X-MS-Exchange-Inbox-Rules-Loop)"
    if _AUTO_SUBJECT.match(subject):
        return f"subject: {subject.strip()[:80]}"
    return None


_QUOTE_MARKERS = [
    re.compile(r"^\s*-{2,}\s*original message\s*-{2,}", re.IGNORECASE),
    re.compile(r"^\s*_{10,}\s*$"),  # Outlook's rule above "From: ... Sent: ..."
]
# "On <date>, <name> wrote:" and its German, French, Spanish, Italian, Dutch forms; the date's digit
# tells it from a sentence of the reply. Gmail wraps it over two lines.
_WROTE = re.compile(r"^\s*(on|am|le|el|il|op)\s(?=.*\d).{0,300}"
                    r"(wrote|schrieb|a écrit|escribió|ha scritto|schreef)(\s.{0,200})?\s*:\s*$", re.IGNORECASE)
_HEADER_BLOCK = re.compile(r"^\s*(from|von|de|da|van)\s*:", re.IGNORECASE)
_HEADER_NEXT = re.compile(r"^\s*(sent|date|gesendet|envoyé|enviado|to|an|à|para)\s*:", re.IGNORECASE)


def strip_quoted(text: str) -> str:
    """The reply without the quoted history: cut at "On ... wrote:" (also split over two lines),
    "-----Original Message-----", Outlook's "From:/Sent:" block, and drop lines starting with ">".
    When nothing precedes the marker (a bottom-posted reply) the unquoted lines are kept."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    cut, marker_lines = None, 1
    for i, line in enumerate(lines):
        following = lines[i + 1] if i + 1 < len(lines) else ""
        if any(m.match(line) for m in _QUOTE_MARKERS) or _WROTE.match(line) or (
                _HEADER_BLOCK.match(line) and _HEADER_NEXT.match(following)):
            cut = i
            break
        if following and _WROTE.match(line + " " + following):
            cut, marker_lines = i, 2
            break
    unquoted = [ln for ln in (lines if cut is None else lines[:cut]) if not ln.lstrip().startswith(">")]
    reply = "\n".join(unquoted).strip()
    if not reply and cut is not None:
        rest = lines[cut + marker_lines:]
        reply = "\n".join(ln for ln in rest if not ln.lstrip().startswith(">")).strip()
    return reply


def _html_to_text(markup: str) -> str:
    markup = re.sub(r"(?is)<(script|style|head)\b.*?</\1\s*>", "", markup)
    markup = re.sub(r"(?is)<blockquote\b.*?</blockquote\s*>", "", markup)  # quoted history
    markup = re.sub(r"(?i)<br\s*/?>|</(p|div|li|tr|h\d)\s*>", "\n", markup)
    return html_lib.unescape(re.sub(r"(?s)<[^>]+>", "", markup)).strip()
