"""The Twilio half of the sandbox: Messages API validation with Twilio's test-credential magic
numbers, the Message resource it answers with, and signed status callbacks. `outreach.sandbox.server` owns
the HTTP app and the state.

Magic numbers (as Twilio's test credentials document them):

    To   +15005550001 -> 21211 invalid number        From +15005550001 -> 21212 invalid sender
    To   +15005550002 -> 21612 cannot route          From +15005550007 -> 21606 not your number
    To   +15005550003 -> 21408 no permission         From +15005550008 -> 21611 queue full
    To   +15005550004 -> 21610 opted out (STOP)
    To   +15005550009 -> 21614 not a mobile number

Unlike Twilio's test credentials, any other well-formed From is accepted, so rehearsals can use
real-looking numbers. Numbers given to `Sandbox.opt_out` also answer 21610."""

from __future__ import annotations

import base64
import binascii
import math
import re
import secrets
from collections.abc import Container
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

API_VERSION = "2010-04-01"
DEFAULT_FROM = "+15005550006"  # Twilio's test-credential sender
_E164 = re.compile(r"^\+[1-9]\d{1,14}$")
# E.164, a short code, or an alphanumeric sender id
_SENDER = re.compile(r"^(\+[1-9]\d{1,14}|\d{5,6}|(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11})$")
_GSM7 = set("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZ"
            "ÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
_GSM7_EXT = set("^{}\\[~]|€\f")  # each takes two septets
MAGIC_TO = {
    "+15005550001": (21211, "The 'To' number {to} is not a valid phone number."),
    "+15005550002": (21612, "The 'To' phone number: {to}, is not currently reachable via SMS."),
    "+15005550003": (21408, "Permission to send an SMS has not been enabled for the region indicated by the "
                            "'To' number: {to}."),
    "+15005550004": (21610, "Attempt to send to unsubscribed recipient"),
    "+15005550009": (21614, "'To' number is not a valid mobile number"),
}
MAGIC_FROM = {
    "+15005550001": (21212, "The 'From' number {frm} is not a valid phone number, shortcode, or alphanumeric "
                            "sender ID."),
    "+15005550007": (21606, "The 'From' phone number provided ({frm}) is not a valid message-capable Twilio "
                            "phone number for this destination/account"),
    "+15005550008": (21611, "This 'From' number has exceeded the maximum number of queued messages"),
}


def error_body(code: int, message: str, status: int) -> dict[str, Any]:
    """Twilio's REST error envelope."""
    return {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status}


def basic_auth(header: str | None) -> tuple[str, str] | None:
    """(username, password) from an HTTP Basic Authorization header, or None."""
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        user, _, password = base64.b64decode(header[6:].strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return user, password


def validate(params: dict[str, str], opted_out: Container[str]) -> tuple[int, str] | None:
    """(Twilio error code, message) for the first rule a Messages create breaks, else None."""
    to, frm = params.get("To", ""), params.get("From", "")
    if not to:
        return 21604, "A 'To' phone number is required."
    if not frm and not params.get("MessagingServiceSid"):
        return 21603, "A 'From' phone number is required."
    if not _E164.match(to):
        return 21211, f"The 'To' number {to} is not a valid phone number."
    if frm and not _SENDER.match(frm):
        return MAGIC_FROM["+15005550001"][0], MAGIC_FROM["+15005550001"][1].format(frm=frm)
    if frm in MAGIC_FROM:
        code, text = MAGIC_FROM[frm]
        return code, text.format(frm=frm)
    if to in MAGIC_TO:
        code, text = MAGIC_TO[to]
        return code, text.format(to=to)
    if to in opted_out:
        return 21610, "Attempt to send to unsubscribed recipient"
    body = params.get("Body", "")
    if not body and not params.get("MediaUrl"):
        return 21602, "Message body is required."
    if len(body) > 1600:
        return 21617, "The concatenated message body exceeds the 1600 character limit."
    return None


def num_segments(body: str) -> int:
    """SMS segments: GSM-7 fits 160 septets (153 when split), anything else UCS-2 70 (67)."""
    if all(c in _GSM7 or c in _GSM7_EXT for c in body):
        units, single, multi = len(body) + sum(c in _GSM7_EXT for c in body), 160, 153
    else:
        units, single, multi = len(body.encode("utf-16-le")) // 2, 70, 67
    return 1 if units <= single else math.ceil(units / multi)


def message_resource(account_sid: str, params: dict[str, str], now: datetime | None = None) -> dict[str, Any]:
    """The Message resource Twilio answers a create with (201). A Messaging Service send starts
    `accepted` with no sender and 0 segments until Twilio picks a number, as Twilio documents."""
    sid = "SM" + secrets.token_hex(16)
    stamp = format_datetime(now or datetime.now(UTC), usegmt=True)
    service = params.get("MessagingServiceSid") or None
    body = params.get("Body", "")
    uri = f"/{API_VERSION}/Accounts/{account_sid}/Messages/{sid}"
    return {
        "account_sid": account_sid, "api_version": API_VERSION, "body": body,
        "date_created": stamp, "date_sent": None, "date_updated": stamp, "direction": "outbound-api",
        "error_code": None, "error_message": None, "from": params.get("From") or None,
        "messaging_service_sid": service, "num_media": "0",
        "num_segments": "0" if service and not params.get("From") else str(num_segments(body)),
        "price": None, "price_unit": "USD", "sid": sid,
        "status": "accepted" if service else "queued",
        "subresource_uris": {"media": f"{uri}/Media.json", "feedback": f"{uri}/Feedback.json"},
        "to": params["To"], "uri": f"{uri}.json",
    }


def callback_params(resource: dict[str, Any], status: str, error_code: int | str | None = None) -> dict[str, str]:
    """The form fields of a message status callback (a resource or a recorded message); failed and
    undelivered carry an ErrorCode (default 30003, unreachable handset)."""
    params = {
        "MessageSid": resource["sid"], "SmsSid": resource["sid"],
        "MessageStatus": status, "SmsStatus": status,
        "AccountSid": resource["account_sid"], "From": resource["from"] or DEFAULT_FROM,
        "To": resource["to"], "ApiVersion": API_VERSION,
    }
    if resource.get("messaging_service_sid"):
        params["MessagingServiceSid"] = resource["messaging_service_sid"]
    if status in ("failed", "undelivered") or error_code is not None:
        params["ErrorCode"] = str(error_code or 30003)
    return params


# Twilio's Advanced Opt-Out keywords, as it names them in OptOutType (SPEC section 9's lists).
OPT_OUT_TYPES = {
    **dict.fromkeys(("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"), "STOP"),
    **dict.fromkeys(("START", "UNSTOP", "YES"), "START"), **dict.fromkeys(("HELP", "INFO"), "HELP"),
}


def opt_out_type(body: str) -> str | None:
    """STOP, START or HELP when the whole message is such a keyword, else None."""
    return OPT_OUT_TYPES.get(body.strip().upper())


def _country(number: str) -> str:
    try:
        import phonenumbers

        return phonenumbers.region_code_for_number(phonenumbers.parse(number)) or ""
    except Exception:  # a short code or an odd number: Twilio leaves the field empty too
        return ""


def inbound_params(account_sid: str, frm: str, to: str, body: str, *,
                   messaging_service_sid: str | None = None) -> dict[str, str]:
    """The form fields of Twilio's incoming-message webhook for an SMS `frm` sent to our `to`, with
    OptOutType when Advanced Opt-Out would recognise the keyword."""
    sid = "SM" + secrets.token_hex(16)
    params = {
        "ToCountry": _country(to), "ToState": "", "SmsMessageSid": sid, "NumMedia": "0", "ToCity": "",
        "FromZip": "", "SmsSid": sid, "FromState": "", "SmsStatus": "received", "FromCity": "", "Body": body,
        "FromCountry": _country(frm), "To": to, "ToZip": "", "NumSegments": str(num_segments(body) if body else 1),
        "ReferralNumMedia": "0", "MessageSid": sid, "AccountSid": account_sid, "From": frm,
        "ApiVersion": API_VERSION,
    }
    if messaging_service_sid:
        params["MessagingServiceSid"] = messaging_service_sid
    if kind := opt_out_type(body):
        params["OptOutType"] = kind
    return params
