"""Machine mail told from a person's reply, at the edges: each auto-reply header and subject pattern
with a near miss beside it, and each kind of report (DSN, mailer-daemon bounce, read receipt, abuse
report) read through `parse_inbound`, the path an Inbound Parse post takes."""

from __future__ import annotations

import base64
import email
import json
from email import policy

import pytest

from channels.machine_mail import MachineReport, auto_reply_reason, header_values, msg_ids, unique
from channels.sendgrid_inbound import parse_inbound

ADA = "ada@analytical.example"
MID = "<welcome-1@vendor.example>"


def _reason(headers: dict[str, str], subject: str = "Re: pricing") -> str | None:
    lines = [f"{k}: {v}" for k, v in headers.items()]
    message = email.message_from_string("\n".join(lines) + "\n\n", policy=policy.default)
    return auto_reply_reason(message, subject)


@pytest.mark.parametrize(("headers", "reason"), [
    ({}, None),
    ({"Auto-Submitted": "auto-replied"}, "Auto-Submitted: auto-replied"),
    ({"Auto-Submitted": "Auto-Generated; owner-email=\"x@y.example\""}, "Auto-Submitted: auto-generated"),
    ({"Auto-Submitted": "auto-notified"}, "Auto-Submitted: auto-notified"),
    ({"Auto-Submitted": "no"}, None),  # RFC 3834: a person wrote it
    ({"Auto-Submitted": "No"}, None),
    ({"Auto-Submitted": " no ; comment"}, None),
    ({"Auto-Submitted": "nope"}, "Auto-Submitted: nope"),  # anything but `no` is automatic
    ({"X-Autoreply": "yes"}, "X-Autoreply header"),
    ({"X-Autoreply": ""}, "X-Autoreply header"),  # present is enough
    ({"X-Autorespond": "Away"}, "X-Autorespond header"),
    ({"X-Autoreplied": "yes"}, None),  # a name of its own, not one of these
    ({"Precedence": "bulk"}, "Precedence: bulk"),
    ({"Precedence": " Junk "}, "Precedence: junk"),
    ({"Precedence": "auto_reply"}, "Precedence: auto_reply"),
    ({"Precedence": "list"}, None),  # a mailing list: a person may answer through it
    ({"Precedence": "bulky"}, None),
    ({"Precedence": "auto-reply"}, None),
    ({"X-Auto-Response-Suppress": "All", "X-MS-Exchange-Inbox-Rules-Loop": "d@b.example"},
     "Exchange automatic reply (X-Auto-Response-Suppress, X-MS-Exchange-Inbox-Rules-Loop)"),
    ({"X-Auto-Response-Suppress": "All"}, None),  # Outlook sets it on ordinary mail too
    ({"X-MS-Exchange-Inbox-Rules-Loop": "d@b.example"}, None),
    ({"X-Auto-Response-Suppress": "All", "X-MS-Exchange-Inbox-Rules-Loop": ""}, None),
    # the first reason found is the one given
    ({"Auto-Submitted": "auto-replied", "X-Autoreply": "yes"}, "Auto-Submitted: auto-replied"),
    ({"X-Autorespond": "yes", "Precedence": "bulk"}, "X-Autorespond header"),
    ({"Auto-Submitted": "no", "Precedence": "bulk"}, "Precedence: bulk"),
])
def test_auto_reply_headers(headers: dict[str, str], reason: str | None) -> None:
    assert _reason(headers) == reason


def test_headers_come_before_the_subject() -> None:
    assert _reason({"Precedence": "junk"}, "Out of office") == "Precedence: junk"


@pytest.mark.parametrize("subject", [
    "Out of office: Re: pricing", "Out of the office until Monday", "OUT OF OFFICE", "  Out of office",
    "Automatic reply: pricing", "Auto-Reply: pricing", "Auto Reply", "AutoReply", "Auto-Response: x",
    "auto response", "Autoresponse", "Abwesenheitsnotiz: pricing", "Automatische Antwort: pricing",
    "Réponse automatique : pricing", "Respuesta automática: pricing", "Risposta automatica: pricing",
    "Automatisch antwoord: pricing",
])
def test_auto_reply_subjects(subject: str) -> None:
    assert _reason({}, subject) == f"subject: {subject.strip()}"


@pytest.mark.parametrize("subject", [
    "Re: out of office next week?",  # the pattern opens the subject, or it is a person's question
    "Out of offices", "Out of the offic", "Out ofoffice", "Automatic replies", "Auto_reply",
    "Autoreplying", "Auto--reply", "Abwesenheit", "Automatische Antworten", "Réponse automatiquement",
    "Respuesta automatica", "Risposta automatico", "Automatisch antwoorden", "", "Re: pricing",
])
def test_near_misses_are_a_persons_subject(subject: str) -> None:
    assert _reason({}, subject) is None


def test_a_long_subject_is_cut_in_the_reason() -> None:
    subject = "Out of office " + "x" * 100
    assert _reason({}, f"  {subject}  ") == f"subject: {subject[:80]}"


# --- reports about a mail we sent, through parse_inbound ------------------------------------------

def _report(report_type: str, part: str, sender: str = "MAILER-DAEMON@mx.analytical.example",
            ctype: str = "multipart/report", returned: str = "text/rfc822-headers") -> str:
    return (f"From: {sender}\r\nTo: reply+t@r.example\r\nSubject: report\r\nMIME-Version: 1.0\r\n"
            f"Content-Type: {ctype}; report-type={report_type}; boundary=rb\r\n\r\n"
            f"--rb\r\nContent-Type: text/plain\r\n\r\nThis is an automatically generated message.\r\n"
            f"--rb\r\n{part}\r\n"
            f"--rb\r\nContent-Type: {returned}\r\n\r\nMessage-ID: {MID}\r\nSubject: hello\r\n"
            f"--rb--\r\n")


def _dsn(*recipients: tuple[str, str, str]) -> str:
    blocks = [f"{name}: rfc822; {who}\r\nAction: {action}\r\nStatus: {status}\r\n"
              for who, action, status, name in [(*r[:3], "Final-Recipient") for r in recipients]]
    return ("Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.analytical.example\r\n\r\n"
            + "\r\n".join(blocks))


DSN_DETAIL = "multipart/report; report-type=delivery-status"


@pytest.mark.parametrize(("raw", "report"), [
    (_report("delivery-status", _dsn((ADA, "failed", "5.1.1"))),
     MachineReport("bounce", True, [(ADA, "failed", "5.1.1")], DSN_DETAIL)),
    (_report("delivery-status", _dsn((ADA, "delayed", "4.4.7"))),
     MachineReport("bounce", False, [(ADA, "delayed", "4.4.7")], DSN_DETAIL)),
    (_report("delivery-status", _dsn((ADA, "failed", "4.2.2"))),  # failed for now: not permanent
     MachineReport("bounce", False, [(ADA, "failed", "4.2.2")], DSN_DETAIL)),
    (_report("delivery-status", _dsn((ADA, "delivered", "5.0.0"))),  # only a failure is hard
     MachineReport("bounce", False, [(ADA, "delivered", "5.0.0")], DSN_DETAIL)),
    (_report("Delivery-Status", _dsn(("Ada@Analytical.Example", "Failed", "5.1.1 (no such user)"),
                                     ("bob@b.example", "delayed", "4.4.7"))),
     MachineReport("bounce", True, [(ADA, "failed", "5.1.1"), ("bob@b.example", "delayed", "4.4.7")], DSN_DETAIL)),
    (_report("delivery-status", _dsn((ADA, "failed", "5.1.1")).replace("Final-Recipient", "Original-Recipient")),
     MachineReport("bounce", True, [(ADA, "failed", "5.1.1")], DSN_DETAIL)),
    (_report("delivery-status", _dsn((ADA, "failed", "5.1.1")).replace("Status: 5.1.1\r\n", "")),
     MachineReport("bounce", False, [(ADA, "failed", "")], DSN_DETAIL)),
    (_report("disposition-notification", "Content-Type: message/disposition-notification\r\n\r\n"
             f"Final-Recipient: rfc822; {ADA}\r\nDisposition: manual-action/MDN-sent-manually; displayed\r\n",
             sender=ADA),
     MachineReport("read_receipt", detail="multipart/report; report-type=disposition-notification")),
    (_report("feedback-report", "Content-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\n"
             "Version: 1\r\nOriginal-Rcpt-To: <Ada@Analytical.Example>\r\n", sender="abuse@isp.example"),
     MachineReport("complaint", True, [(ADA, "complained", "abuse")], "feedback-report (ARF)")),
    (_report("feedback-report", "Content-Type: message/feedback-report\r\n\r\nFeedback-Type: fraud\r\n"
             f"Removal-Recipient: {ADA}\r\n", sender="abuse@isp.example"),
     MachineReport("complaint", True, [(ADA, "complained", "fraud")], "feedback-report (ARF)")),
    (_report("feedback-report", "Content-Type: message/feedback-report\r\n\r\nVersion: 1\r\n"
             f"Original-Rcpt-To: rfc822; {ADA}\r\n", sender="abuse@isp.example"),
     MachineReport("complaint", True, [(ADA, "complained", "abuse")], "feedback-report (ARF)")),
    (_report("feedback-report", "Content-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\n"
             "Original-Rcpt-To: <Xavier@B.example>\r\n", sender="abuse@isp.example"),
     MachineReport("complaint", True, [("xavier@b.example", "complained", "abuse")], "feedback-report (ARF)")),
    (_report("feedback-report", "Content-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\n",
             sender="abuse@isp.example"),
     MachineReport("complaint", True, [], "feedback-report (ARF)")),  # nobody named: nobody suppressed
    # an abuse report is known by its part too, whatever the container says
    (_report("other", "Content-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\n"
             f"Original-Rcpt-To: {ADA}\r\n", sender="abuse@isp.example", ctype="multipart/mixed"),
     MachineReport("complaint", True, [(ADA, "complained", "abuse")], "feedback-report (ARF)")),
])
def test_reports(raw: str, report: MachineReport) -> None:
    mail = parse_inbound({"email": raw})
    assert mail.report == report
    assert mail.original_ids == [MID]
    assert not mail.auto_reply


def test_a_delivery_status_outside_a_report_is_read_by_its_sender() -> None:
    raw = _report("delivery-status", _dsn((ADA, "failed", "5.1.1")), ctype="multipart/mixed",
                  sender="carol@c.example")
    assert parse_inbound({"email": raw}).report is None


@pytest.mark.parametrize("returned", ["message/rfc822", "message/rfc822-headers"])
def test_the_returned_mail_is_found_in_a_message_part(returned: str) -> None:
    raw = _report("delivery-status", _dsn((ADA, "failed", "5.1.1")), returned=returned)
    assert parse_inbound({"email": raw}).original_ids == [MID]


def test_only_the_machine_part_names_the_recipients() -> None:
    raw = _report("delivery-status", _dsn((ADA, "failed", "5.1.1"))).replace(
        "This is an automatically generated message.",
        "Final-Recipient: rfc822; wrong@x.example\r\nAction: failed\r\nStatus: 5.1.1\r\n")
    report = parse_inbound({"email": raw}).report
    assert report is not None and report.recipients == [(ADA, "failed", "5.1.1")]


def test_a_feedback_report_without_its_part_is_still_a_complaint() -> None:
    raw = _report("feedback-report", "Content-Type: text/plain\r\n\r\nThis mail was reported as spam.\r\n",
                  sender="abuse@isp.example")
    assert parse_inbound({"email": raw}).report == MachineReport("complaint", True, [], "feedback-report (ARF)")


def _plain(sender: str, text: str, extra: str = "") -> str:
    return f"From: {sender}\r\nTo: reply+t@r.example\r\nSubject: Undelivered\r\n{extra}\r\n{text}\r\n"


@pytest.mark.parametrize(("sender", "extra", "envelope", "text", "report"), [
    ("MAILER-DAEMON@mx.example", "", None, "550 5.1.1 no such user",
     MachineReport("bounce", True, [], "machine sender MAILER-DAEMON@mx.example")),  # as it was written
    ("postmaster@mx.example", "", None, "4.4.7 delivery delayed",
     MachineReport("bounce", False, [], "machine sender postmaster@mx.example")),
    ("mail-daemon@mx.example", "", None, "Status 5.2.2 mailbox full",
     MachineReport("bounce", True, [], "machine sender mail-daemon@mx.example")),
    ("mailerdaemon@mx.example", "", None, "error 552 too large",
     MachineReport("bounce", True, [], "machine sender mailerdaemon@mx.example")),
    ("mailer-daemon@mx.example", "", None, "error 5521 and 25.1.1 and 5.1.1.2 and 4.5.5",
     MachineReport("bounce", False, [], "machine sender mailer-daemon@mx.example")),  # no code stands alone
    ("mailer-daemon@mx.example", "", None, "will retry",
     MachineReport("bounce", False, [], "machine sender mailer-daemon@mx.example")),
    ("carol@c.example", "Return-Path: <>\r\n", None, "5.1.1",
     MachineReport("bounce", True, [], "empty Return-Path")),
    ("carol@c.example", "Return-Path: \r\n", None, "gone",
     MachineReport("bounce", False, [], "empty Return-Path")),
    ("carol@c.example", "", {"from": ""}, "gone", MachineReport("bounce", False, [], "empty Return-Path")),
    ("carol@c.example", "", {"from": None}, "gone", MachineReport("bounce", False, [], "empty Return-Path")),
    # a person's mail
    ("carol@c.example", "", None, "550 5.1.1", None),
    ("carol@c.example", "Return-Path: <carol@c.example>\r\n", {"from": "carol@c.example"}, "5.1.1", None),
    ("carol@c.example", "", {"to": ["x@y.example"]}, "5.1.1", None),
    ("notmailer-daemon@mx.example", "", None, "5.1.1", None),
    ("postmaster.team@mx.example", "", None, "5.1.1", None),
    # an auto-reply from a machine address is an auto-reply, not a bounce
    ("mailer-daemon@mx.example", "Auto-Submitted: auto-replied\r\n", None, "5.1.1", None),
    ("carol@c.example", "Return-Path: <>\r\nAuto-Submitted: auto-replied\r\n", None, "5.1.1", None),
])
def test_bounces_without_a_report(sender: str, extra: str, envelope: dict[str, object] | None, text: str,
                                  report: MachineReport | None) -> None:
    form: dict[str, object] = {"email": _plain(sender, text, extra)}
    if envelope is not None:
        form["envelope"] = json.dumps(envelope)
    assert parse_inbound(form).report == report


@pytest.mark.parametrize(("value", "ids"), [
    (None, []), ("", []), ("<a@b>", ["<a@b>"]), ("<a@b> <c@d>", ["<a@b>", "<c@d>"]), ("a@b", []), ("<a b@c>", [])])
def test_message_ids(value: object, ids: list[str]) -> None:
    assert msg_ids(value) == ids


def test_unique_keeps_the_first_spelling() -> None:
    assert unique(["<A@b>", "<a@B>", "<c@d>", "<A@b>"]) == ["<A@b>", "<c@d>"]


def test_header_values_every_one_or_none() -> None:
    message = email.message_from_string("To: a@b.example\n\n", policy=policy.default)
    assert header_values(message, "To") == ["a@b.example"] and header_values(message, "Cc") == []


@pytest.mark.parametrize(("block", "recipient"), [
    (f"Final-Recipient: rfc822; <{ADA}>\r\nAction: failed\r\nStatus: 5.1.1", (ADA, "failed", "5.1.1")),
    (f"Final-Recipient: rfc822;{ADA}\r\nAction: failed\r\nStatus: 5.1.1", (ADA, "failed", "5.1.1")),
    (f"Final-Recipient: {ADA}\r\nAction: failed\r\nStatus: 5.1.1", (ADA, "failed", "5.1.1")),  # no address type
    ("Final-Recipient: rfc822; Xavier@B.example\r\nAction: FAILED\r\nStatus: 5.1.1",
     ("xavier@b.example", "failed", "5.1.1")),
    (f"Final-Recipient: rfc822; {ADA}\r\nStatus: 5.1.1", (ADA, "", "5.1.1")),  # no action said: not a failure
])
def test_a_dsn_recipient_as_mail_servers_write_it(block: str, recipient: tuple[str, str, str]) -> None:
    part = ("Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.analytical.example\r\n\r\n"
            f"{block}\r\n")
    report = parse_inbound({"email": _report("delivery-status", part)}).report
    assert report is not None and report.recipients == [recipient]
    assert report.hard is (recipient[1] == "failed")


def test_returned_headers_in_base64_with_a_broken_byte_are_read() -> None:
    encoded = base64.b64encode(f"Message-ID: {MID}\r\nSubject: caf\xe9\r\n".encode("latin-1")).decode()
    raw = _report("delivery-status", _dsn((ADA, "failed", "5.1.1"))).replace(
        f"Content-Type: text/rfc822-headers\r\n\r\nMessage-ID: {MID}\r\nSubject: hello\r\n",
        f"Content-Type: text/rfc822-headers\r\nContent-Transfer-Encoding: base64\r\n\r\n{encoded}\r\n")
    assert parse_inbound({"email": raw}).original_ids == [MID]


def test_the_returned_mail_and_its_headers_both_name_it() -> None:
    raw = _report("delivery-status", _dsn((ADA, "failed", "5.1.1"))).replace(
        "--rb--", "--rb\r\nContent-Type: message/rfc822\r\n\r\nMessage-ID: <other@vendor.example>\r\n"
                  "Subject: hello\r\n\r\nHi\r\n--rb--")
    assert parse_inbound({"email": raw}).original_ids == [MID, "<other@vendor.example>"]


def test_the_returned_headers_after_the_returned_mail_add_to_it() -> None:
    raw = _report("delivery-status", _dsn((ADA, "failed", "5.1.1"))).replace(
        "--rb\r\nContent-Type: text/rfc822-headers", "--rb\r\nContent-Type: message/rfc822\r\n\r\n"
        "Message-ID: <other@vendor.example>\r\nSubject: hello\r\n\r\nHi\r\n--rb\r\nContent-Type: text/rfc822-headers")
    assert parse_inbound({"email": raw}).original_ids == ["<other@vendor.example>", MID]
