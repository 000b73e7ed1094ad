"""Mail that a machine wrote, told apart from a person's reply: auto-replies (RFC 3834's
Auto-Submitted, the vendors' headers, the subjects of out-of-office notices in the common languages)
and reports about a mail that was sent (delivery status notifications, mailer-daemon bounces, read
receipts, abuse reports). Pure: it reads a parsed `email.message.Message`; sendgrid_inbound decides
which headers to trust and calls it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email.message import Message


@dataclass
class MachineReport:
    """Mail written by a machine about a mail that was sent. `kind` is `bounce` (a delivery status
    notification, RFC 3464, or a mailer-daemon's free-form bounce), `read_receipt` (RFC 8098) or
    `complaint` (an abuse report, ARF, RFC 5965). `recipients` are (address, action, status) per
    recipient of a DSN (the complainant of an ARF report); `hard` is True for a permanent failure."""

    kind: str
    hard: bool = False
    recipients: list[tuple[str, str, str]] = field(default_factory=list)
    detail: str = ""


_AUTO_SUBJECT = re.compile(
    r"\s*(out of (the )?office|automatic reply|auto[- ]?reply|auto[- ]?response|abwesenheitsnotiz"
    r"|automatische antwort|réponse automatique|respuesta automática|risposta automatica"
    r"|automatisch antwoord)\b", re.IGNORECASE)


def auto_reply_reason(headers: Message, subject: str) -> str | None:
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


_MACHINE_SENDER = re.compile(r"^(mailer-daemon|postmaster|mail-daemon|mailerdaemon)@", re.IGNORECASE)
_DSN_CODE = re.compile(r"(?<![\d.])([245])\.\d{1,3}\.\d{1,3}(?![\d.])")


def machine_report(message: Message, sender: str, envelope: dict[str, object], text: str,
                   auto_reply: bool) -> tuple[MachineReport | None, list[str]]:
    """The report a machine-written mail carries, and the Message-IDs of the mail it returns."""
    ctype = message.get_content_type()
    report_type = str(message.get_param("report-type") or "").strip().lower()
    originals: list[str] = []
    blocks: list[str] = []
    for part in message.walk():
        sub = part.get_content_type()
        if sub == "message/rfc822":
            for inner in part.get_payload():  # the returned mail, a list of one
                if isinstance(inner, Message):
                    originals += msg_ids(first_header(inner, "Message-ID"))
        elif sub in ("text/rfc822-headers", "message/rfc822-headers"):
            originals += re.findall(r"(?im)^message-id:\s*(<[^<>\s]+>)", _part_body(part))
        elif sub in ("message/delivery-status", "message/feedback-report"):  # (a read receipt's are not read)
            blocks.append(_part_body(part))
    originals = unique(originals)
    if ctype == "multipart/report" and report_type == "delivery-status":
        recipients = _dsn_recipients("\n".join(blocks))
        hard = any(action == "failed" and status.startswith("5") for _, action, status in recipients)
        return MachineReport("bounce", hard, recipients, "multipart/report; report-type=delivery-status"), originals
    if report_type == "disposition-notification":
        return MachineReport("read_receipt", detail="multipart/report; report-type=disposition-notification"), originals
    if report_type == "feedback-report" or "message/feedback-report" in {p.get_content_type() for p in message.walk()}:
        fields = _report_fields("\n".join(blocks))
        who = fields.get("original-rcpt-to") or fields.get("removal-recipient") or ""
        address = who.split(";")[-1].strip().strip("<>")
        recipients = [(address.lower(), "complained", fields.get("feedback-type", "abuse"))] if "@" in address else []
        return MachineReport("complaint", True, recipients, "feedback-report (ARF)"), originals
    return_path = first_header(message, "Return-Path")
    empty_return = return_path is not None and str(return_path).strip() in ("", "<>")
    if envelope.get("from") == "" or ("from" in envelope and envelope.get("from") is None):
        empty_return = True
    if not auto_reply and (_MACHINE_SENDER.match(sender) or empty_return):
        codes = _DSN_CODE.findall(text)
        why = f"machine sender {sender}" if _MACHINE_SENDER.match(sender) else "empty Return-Path"
        return MachineReport("bounce", "5" in codes or bool(re.search(r"\b55\d\b", text)), [], why), originals
    return None, originals


def _dsn_recipients(body: str) -> list[tuple[str, str, str]]:
    found = []
    for block in re.split(r"\n\s*\n", body):  # (\s* takes a CR too)
        fields = _report_fields(block)
        who = fields.get("final-recipient") or fields.get("original-recipient")
        if who:
            address = who.split(";")[-1].strip().strip("<>").lower()
            status = fields.get("status", "").split()  # "5.1.1 (no such user)": the code
            found.append((address, fields.get("action", "").lower(), status[0] if status else ""))
    return found


def _report_fields(block: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in re.findall(r"(?m)^([A-Za-z][A-Za-z0-9-]*):[ \t]*(.*)$", block):
        out.setdefault(name.lower(), value.strip())
    return out


def _part_body(part: Message) -> str:
    payload = part.get_payload()
    if isinstance(payload, list):  # message/*: sub-messages (DSN blocks, the report's fields)
        return "\n\n".join(str(m) for m in payload)
    return bytes(part.get_payload(decode=True)).decode(errors="replace")  # a leaf: always bytes here


def header_values(message: Message, name: str) -> list[object]:
    try:
        return list(message.get_all(name, []))
    except (ValueError, IndexError, TypeError):  # a header policy.default cannot parse
        return []


def first_header(message: Message, name: str) -> object | None:
    found = header_values(message, name)
    return found[0] if found else None


def msg_ids(value: object) -> list[str]:
    return re.findall(r"<[^<>\s]+>", str(value))  # (None reads "None": no id in it)


def unique(items: list[str]) -> list[str]:
    seen: set[str] = set()
    unique = []
    for item in items:
        if item.lower() not in seen:
            seen.add(item.lower())
            unique.append(item)
    return unique
