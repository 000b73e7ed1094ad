"""SendGrid Inbound Parse: replies and calendar RSVPs that reach the inbound domain.

Pure parsing: `read_form` splits the raw multipart body into byte values (Starlette would decode
every field as UTF-8 before SendGrid's `charsets` map could be applied) and `parse_inbound` turns
them into an `InboundEmail`: text decoded per `charsets` (parsed mode) or per each MIME part's
charset and transfer encoding (raw mode), machine mail (delivery reports, read receipts, abuse
reports) told apart from replies, quoted history stripped. A post that is not an Inbound Parse post
raises `WebhookRejected(400)`, so that nothing changes."""

from __future__ import annotations

import email
import html as html_lib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from email import policy
from email.header import decode_header, make_header
from email.message import Message
from email.utils import getaddresses
from urllib.parse import parse_qsl

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from channels.machine_mail import (
    MachineReport,
    auto_reply_reason,
    first_header,
    header_values,
    machine_report,
    msg_ids,
    unique,
)
from channels.meeting import CalendarCounter, CalendarReply, parse_counters, parse_replies
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
    calendar_counters: list[CalendarCounter] = field(default_factory=list)  # "propose a new time"
    spf: str | None = None  # SendGrid's verdicts: `SPF` (pass, fail, softfail, ...) and `dkim`
    dkim: str | None = None
    report: MachineReport | None = None  # set for machine mail: bounces, read receipts, abuse reports
    original_ids: list[str] = field(default_factory=list)  # Message-IDs of the mail a report returns


_CALENDAR_TYPES = ("text/calendar", "application/ics")
MAX_POST = 30 * 1024 * 1024  # Inbound Parse posts up to 30 MB, attachments included


def read_form(body: bytes, content_type: str) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """The fields and files of a multipart/form-data body, every value as the bytes that were posted
    (the last value of a repeated name); a url-encoded form is read too. Raises WebhookRejected(400)
    for another content type or a broken body."""
    ctype, params = parse_options_header(content_type)
    if ctype == b"application/x-www-form-urlencoded":  # not what SendGrid posts, but a form all the same
        return {k.decode("utf-8", errors="replace"): v for k, v in parse_qsl(body, keep_blank_values=True)}, {}
    boundary = params.get(b"boundary")
    if ctype != b"multipart/form-data" or not boundary:
        raise WebhookRejected(400, "an Inbound Parse post is multipart/form-data with a boundary")
    fields: dict[str, bytes] = {}
    files: dict[str, bytes] = {}
    current: dict[str, object] = {}
    chunks: list[bytes] = []
    header: list[bytes] = [b"", b""]

    def on_part_begin() -> None:
        current.clear()
        chunks.clear()

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header[0] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header[1] += data[start:end]

    def on_header_end() -> None:
        current[header[0].decode("latin-1").strip().lower()] = header[1]
        header[0], header[1] = b"", b""

    def on_part_data(data: bytes, start: int, end: int) -> None:
        chunks.append(data[start:end])

    def on_part_end() -> None:
        disposition = current.get("content-disposition")
        _, options = parse_options_header(disposition if isinstance(disposition, bytes) else b"")
        name = options.get(b"name", b"").decode("utf-8", errors="replace")
        if name:
            (files if b"filename" in options else fields)[name] = b"".join(chunks)

    callbacks = {"on_part_begin": on_part_begin, "on_header_field": on_header_field,
                 "on_header_value": on_header_value, "on_header_end": on_header_end,
                 "on_part_data": on_part_data, "on_part_end": on_part_end}
    try:
        parser = MultipartParser(boundary, callbacks)  # type: ignore[arg-type]
        parser.write(body)
        parser.finalize()
    except (MultipartParseError, ValueError) as exc:
        raise WebhookRejected(400, f"not a well-formed form: {exc}") from None
    return fields, files


def parse_inbound(form: Mapping[str, object], files: Mapping[str, bytes] | None = None) -> InboundEmail:
    """Read an Inbound Parse post, parsed mode (headers, text, html, from, to, cc, subject,
    envelope, charsets, SPF, dkim, attachment-info and files attachment1..N) or raw mode (`email`
    holds the whole MIME message, read as bytes: each part's charset and transfer encoding decide).
    Byte values are decoded with the charset SendGrid names in `charsets`; values of other types
    (a framework's upload objects) are ignored: pass uploads as `files`.
    Calendar parts (text/calendar, application/ics, *.ics) are read for METHOD:REPLY answers.
    Raises WebhookRejected(400) when the post has neither `email` nor `from`/`headers`, or when no
    sender address can be found."""
    charsets = _json_object(form.get("charsets"))
    fields = {k: _decode(v, charsets.get(k)) for k, v in form.items()
              if isinstance(v, str | bytes) and k != "email"}
    raw_value = form.get("email")
    raw = raw_value.encode("utf-8") if isinstance(raw_value, str) else raw_value
    raw_mode = isinstance(raw, bytes) and bool(raw.strip())
    if raw_mode and isinstance(raw, bytes):
        headers: Message = email.message_from_bytes(raw, policy=policy.default)
        text, html, calendars = _walk(headers)
    elif fields.get("from") or fields.get("headers"):
        headers = email.message_from_string(fields.get("headers", "").strip() + "\n\n", policy=policy.default)
        text, html = fields.get("text", ""), fields.get("html") or None
        calendars = _parsed_calendars(fields, files or {})
    else:
        raise WebhookRejected(400, "inbound post has neither 'email' (raw mode) nor 'from'/'headers'")
    if not text and html:
        text = _html_to_text(html)

    def values(name: str) -> list[str]:
        # Raw mode trusts the message's own headers; parsed mode SendGrid's decoded fields.
        header = [str(v) for v in header_values(headers, name)]
        form_value = [fields[name.lower()]] if fields.get(name.lower()) else []
        return (header or form_value) if raw_mode else (form_value or header)

    senders = _addresses(values("From"))
    if not senders:
        raise WebhookRejected(400, "inbound mail has no sender address")
    sender_name, sender = senders[0]
    recipients = [addr for _, addr in _addresses(values("To") + values("Cc"))]
    envelope = _json_object(fields.get("envelope"))
    envelope_to = envelope.get("to", [])
    recipients += [a for a in (envelope_to if isinstance(envelope_to, list) else [envelope_to])
                   if isinstance(a, str) and "@" in a]
    subject = _decoded(next(iter(values("Subject")), ""))
    auto_reason = auto_reply_reason(headers, subject)
    report, original_ids = machine_report(headers, sender, envelope, text, auto_reason is not None)
    replies: list[CalendarReply] = []
    counters: list[CalendarCounter] = []
    for ics in calendars:
        try:
            replies += [r for r in parse_replies(ics) if r not in replies]
            counters += [c for c in parse_counters(ics) if c not in counters]
        except ValueError:
            continue  # a broken calendar part must not lose the mail around it
    return InboundEmail(
        sender=sender.lower(), sender_name=sender_name or None, recipients=unique(recipients),
        subject=subject.strip(), text=strip_quoted(text), full_text=text, html=html,
        message_id=next(iter(msg_ids(first_header(headers, "Message-ID"))), None),
        in_reply_to=next(iter(msg_ids(first_header(headers, "In-Reply-To"))), None),
        references=msg_ids(first_header(headers, "References")),
        auto_reply=auto_reason is not None, auto_reply_reason=auto_reason, calendar_replies=replies,
        calendar_counters=counters,
        spf=(fields.get("SPF") or "").strip() or None, dkim=(fields.get("dkim") or "").strip() or None,
        report=report, original_ids=original_ids,
    )


def auth_failure(mail: InboundEmail) -> str | None:
    """Why SendGrid's own checks say the mail is not from its sender's domain, or None: SPF `fail`
    or `softfail`, or DKIM signatures of which none passes and one fails."""
    spf = (mail.spf or "").strip().lower()
    if spf in ("fail", "softfail"):
        return f"SendGrid's SPF check says {spf}"
    verdicts = [v.lower() for v in re.findall(r":\s*([A-Za-z]+)", mail.dkim or "")]
    if verdicts and "pass" not in verdicts and "fail" in verdicts:
        return f"SendGrid's DKIM check says fail ({(mail.dkim or '')[:200]})"
    return None


def reply_tokens(inbound: InboundEmail, inbound_domain: str) -> list[str]:
    """Tokens of recipients shaped `reply+TOKEN@inbound_domain` (domain and `reply+` matched
    case-insensitively, the token's case kept), in order, without duplicates."""
    domain = inbound_domain.strip().lower().lstrip("@")
    tokens = []
    for address in inbound.recipients:
        local, _, host = address.rpartition("@")
        if host.lower() == domain and local[:6].lower() == "reply+" and local[6:]:
            tokens.append(local[6:])
    return unique(tokens)


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
    """A leaf part's text, decoded per its transfer encoding and charset (policy.default's
    get_content); an unknown charset falls back to UTF-8 with replacement characters."""
    try:
        content = part.get_content()  # type: ignore[attr-defined]
        if isinstance(content, str):
            return content
    except (LookupError, KeyError, ValueError, AttributeError, UnicodeError):
        pass
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return str(part.get_payload())
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


_QUOTE_MARKERS = [
    # "-----Original Message-----" and its translations (Ursprüngliche Nachricht, Message d'origine,
    # Mensaje original, Исходное сообщение, 元のメッセージ), and "--- Forwarded message ---"
    re.compile(r"^\s*-{3,}\s*[^-\n]{3,60}?\s*-{3,}\s*$"),
    re.compile(r"^\s*_{10,}\s*$"),  # Outlook's rule above "From: ... Sent: ..."
]
# The attribution line above a quote, with a date in it (its digit tells it from a sentence of the
# reply): "On <date>, <name> wrote:", "Am ... schrieb ...:", "Le ... a écrit :", "El ... escribió:",
# "... написал(\u0430):", "...のメッセージ:", "...さんは書きました:", and Gmail's verbless form in other
# languages, "<date>, <name> <address>:". Gmail wraps it over two lines.
_WROTE = re.compile(
    r"^(?=.*\d).{0,400}?((wrote|schrieb|a écrit|escribió|escreveu|ha scritto|schreef|skrev|kirjoitti"
    r"|napisał\(a\)|napisał|написал\(\u0430\)|написала|написал|пишет|のメッセージ|さんは書きました|写道)(\s.{0,200})?"
    r"|<[^<>\s]+@[^<>\s]+>)\s*[:\uff1a]\s*$", re.IGNORECASE)
_HEADER_BLOCK = re.compile(r"^\s*\*?(from|von|de|da|van|från|od|от|差出人|发件人)\*?\s*[:\uff1a]", re.IGNORECASE)
_HEADER_NEXT = re.compile(r"^\s*\*?(sent|date|gesendet|datum|envoyé|enviado|inviato|verzonden|skickat|wysłano"
                          r"|отправлено|дата|送信日時|日付|发送时间|to|an|à|para|a|aan|till|do|кому|宛先)\*?\s*[:\uff1a]",
                          re.IGNORECASE)


def strip_quoted(text: str) -> str:
    """The reply without the quoted history: cut at the attribution line ("On ... wrote:" and its
    German, French, Spanish, Russian, Japanese... forms, also split over two lines),
    "-----Original Message-----" (and translations), Outlook's "From:/Sent:" block in the common
    languages, and drop lines starting with ">".
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
