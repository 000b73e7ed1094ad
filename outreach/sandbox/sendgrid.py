"""The SendGrid half of the sandbox: v3 Mail Send validation, the messages it records, and Event
Webhook signing. Pure functions over plain dicts; `outreach.sandbox.server` owns the HTTP app and the state.

Validation follows SendGrid's documented Mail Send errors (a 400 whose body is
`{"errors": [{"message", "field", "help"}]}`); the messages paraphrase SendGrid's where its exact
wording is not documented."""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import time
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

HELP = "http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html#message.{anchor}"
# Headers SendGrid refuses in `headers` (sendgrid-python's Header docstring lists them).
RESERVED_HEADERS = frozenset({
    "x-sg-id", "x-sg-eid", "received", "dkim-signature", "content-type", "content-transfer-encoding",
    "to", "from", "subject", "reply-to", "cc", "bcc",
})
SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_MAX_CUSTOM_ARGS_BYTES = 10_000


def error_body(message: str, field: str | None = None) -> dict[str, Any]:
    """SendGrid's error envelope for one error."""
    help_url = HELP.format(anchor=field) if field else None
    return {"errors": [{"message": message, "field": field, "help": help_url}]}


def new_message_id() -> str:
    """An id shaped like SendGrid's X-Message-Id: 22 url-safe base64 characters."""
    return base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")


def _type_name(value: Any) -> str:
    return {bool: "boolean", int: "integer", float: "number", list: "array", dict: "object",
            type(None): "null"}.get(type(value), "string")


def _check_address(obj: Any, field: str, errors: list[dict[str, Any]], what: str) -> None:
    if not isinstance(obj, dict) or not isinstance(obj.get("email"), str) or not obj["email"]:
        errors.append(_err(f"The {what} object must have an email parameter.", f"{field}.email"))
    elif not _EMAIL.match(obj["email"]):
        errors.append(_err("Does not contain a valid address.", f"{field}.email"))


def _err(message: str, field: str) -> dict[str, Any]:
    first: dict[str, Any] = error_body(message, field)["errors"][0]
    return first


def _check_string_map(obj: Any, field: str, errors: list[dict[str, Any]]) -> None:
    if not isinstance(obj, dict):
        errors.append(_err(f"Invalid type. Expected: object, given: {_type_name(obj)}.", field))
        return
    for key, value in obj.items():
        if not isinstance(value, str):
            errors.append(_err(f"Invalid type. Expected: string, given: {_type_name(value)}.",
                               f"{field}.{key}"))


def validate(body: Any) -> list[dict[str, Any]]:
    """Every documented Mail Send rule the body breaks, as SendGrid error objects; [] means valid."""
    if not isinstance(body, dict):
        return [{"message": "Bad Request", "field": None, "help": None}]
    errors: list[dict[str, Any]] = []
    pers = body.get("personalizations")
    if not isinstance(pers, list) or not pers:
        errors.append(_err("You must have at least one personalization.", "personalizations"))
        pers = []
    if len(pers) > 1000:
        errors.append(_err("The personalization block is limited to 1000 personalizations per API request.",
                           "personalizations"))
    for i, p in enumerate(pers):
        to = p.get("to") if isinstance(p, dict) else None
        if not isinstance(to, list) or not to:
            errors.append(_err("The to parameter is required for all personalization objects.",
                               f"personalizations.{i}.to"))
            continue
        for j, addr in enumerate(to):
            _check_address(addr, f"personalizations.{i}.to.{j}", errors, "to")
        for key in ("headers", "custom_args"):
            if key in p:
                _check_string_map(p[key], f"personalizations.{i}.{key}", errors)
    _check_address(body.get("from"), "from", errors, "from")
    if "reply_to" in body:
        _check_address(body["reply_to"], "reply_to", errors, "reply_to")
    if "reply_to_list" in body:
        if "reply_to" in body:
            errors.append(_err("You may not use both reply_to and reply_to_list.", "reply_to_list"))
        listed = body["reply_to_list"]
        if not isinstance(listed, list) or not listed:
            errors.append(_err("The reply_to_list must be a non-empty array.", "reply_to_list"))
        for i, addr in enumerate(listed if isinstance(listed, list) else []):
            _check_address(addr, f"reply_to_list.{i}", errors, "reply_to_list")
    has_template = bool(body.get("template_id"))
    if not has_template and not body.get("subject") and not all(
            isinstance(p, dict) and p.get("subject") for p in pers):
        errors.append(_err("The subject is required. You can get around this requirement if you use a "
                           "template with a subject defined or if every personalization has a subject "
                           "defined.", "subject"))
    content = body.get("content")
    if not has_template and (not isinstance(content, list) or not content):
        errors.append(_err("Unless a valid template_id is provided, the content parameter is required. There "
                           "must be at least one defined content block.", "content"))
    if isinstance(content, list):
        types = []
        for i, part in enumerate(content):
            if not isinstance(part, dict) or not isinstance(part.get("type"), str) or not part["type"]:
                errors.append(_err("The content type must be a string at least one character in length.",
                                   f"content.{i}.type"))
                continue
            types.append(part["type"].split(";")[0].strip().lower())
            if not isinstance(part.get("value"), str) or not part["value"]:
                errors.append(_err("The content value must be a string at least one character in length.",
                                   f"content.{i}.value"))
        expected = [t for t in ("text/plain", "text/html") if t in types]
        if types[:len(expected)] != expected or any(types.count(t) > 1 for t in expected):
            errors.append(_err("If present, text/plain and text/html may only be provided once, text/plain "
                               "first, followed by text/html, followed by any other content.", "content"))
    if "headers" in body:
        _check_string_map(body["headers"], "headers", errors)
    names = {name for obj in [body, *pers] if isinstance(obj, dict) and isinstance(obj.get("headers"), dict)
             for name in obj["headers"]}
    for name in sorted(names, key=str):
        if isinstance(name, str) and name.lower() in RESERVED_HEADERS:
            errors.append(_err(f"The header {name} is reserved and cannot be set.", "headers"))
    if "custom_args" in body:
        _check_string_map(body["custom_args"], "custom_args", errors)
        size = len(json.dumps(body["custom_args"]).encode())
        if isinstance(body["custom_args"], dict) and size > _MAX_CUSTOM_ARGS_BYTES:
            errors.append(_err("The custom_args may not exceed 10,000 bytes.", "custom_args"))
    if "categories" in body:
        cats = body["categories"]
        if not isinstance(cats, list) or not all(isinstance(c, str) and 0 < len(c) <= 255 for c in cats):
            errors.append(_err("Categories must be an array of strings of at most 255 characters.",
                               "categories"))
        elif len(cats) > 10 or len(set(cats)) != len(cats):
            errors.append(_err("You may have at most 10 unique categories.", "categories"))
    for i, att in enumerate(body.get("attachments") or []):
        field = f"attachments.{i}"
        if not isinstance(att, dict) or not att.get("filename"):
            errors.append(_err("The attachment filename parameter is required.", f"{field}.filename"))
        try:
            base64.b64decode(att.get("content", "") if isinstance(att, dict) else "", validate=True)
        except (binascii.Error, ValueError, TypeError):
            errors.append(_err("The attachment content must be base64 encoded.", f"{field}.content"))
        else:
            if isinstance(att, dict) and not att.get("content"):
                errors.append(_err("The attachment content is required.", f"{field}.content"))
    return errors


def records(body: dict[str, Any], message_id: str) -> list[dict[str, Any]]:
    """One recorded email per personalization (SendGrid sends one message for each), with the
    message-level fields merged under the personalization's own as SendGrid documents."""
    content = {part["type"].split(";")[0].strip().lower(): part["value"]
               for part in body.get("content") or []}
    out = []
    for p in body["personalizations"]:
        to = p["to"][0]
        out.append({
            "kind": "email",
            "message_id": message_id,
            "to": to["email"],
            "to_name": to.get("name"),
            "from": body["from"]["email"],
            "from_name": body["from"].get("name"),
            "reply_to": (body.get("reply_to") or (body.get("reply_to_list") or [{}])[0]).get("email"),
            "reply_to_list": [a.get("email") for a in body.get("reply_to_list") or [body.get("reply_to") or {}]
                              if a.get("email")],
            "subject": p.get("subject") or body.get("subject"),
            "text": content.get("text/plain"),
            "html": content.get("text/html"),
            "calendar": content.get("text/calendar"),
            "headers": {**(body.get("headers") or {}), **(p.get("headers") or {})},
            "custom_args": {**(body.get("custom_args") or {}), **(p.get("custom_args") or {})},
            "categories": list(body.get("categories") or []),
            "attachments": [dict(a) for a in body.get("attachments") or []],
            "request": body,
        })
    return out


def load_or_create_key(key_file: str | None) -> ec.EllipticCurvePrivateKey:
    """The webhook signing key: read from `key_file` (PEM), or generated and, when a path is given,
    written there so the engine's configured public key stays valid across sandbox restarts."""
    if key_file and os.path.exists(key_file):
        with open(key_file, "rb") as fh:
            key = serialization.load_pem_private_key(fh.read(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{key_file}: not an EC private key")
        return key
    key = ec.generate_private_key(ec.SECP256R1())
    if key_file:
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
    return key


def public_key_b64(key: ec.EllipticCurvePrivateKey) -> str:
    """The verification key as SendGrid shows it: base64 DER SubjectPublicKeyInfo."""
    der = key.public_key().public_bytes(serialization.Encoding.DER,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


def sign(key: ec.EllipticCurvePrivateKey, body: bytes, timestamp: str | None = None) -> dict[str, str]:
    """The two headers of a signed Event Webhook post: ECDSA P-256/SHA-256 over timestamp + body."""
    ts = timestamp or str(int(time.time()))
    signature = key.sign(ts.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {SIGNATURE_HEADER: base64.b64encode(signature).decode(), TIMESTAMP_HEADER: ts}


# --- Event Webhook events for a recorded message -------------------------------------------------

EVENTS = ("processed", "deferred", "delivered", "open", "click", "bounce", "dropped", "spamreport", "unsubscribe",
          "group_unsubscribe", "group_resubscribe")
_BUYER_AGENT = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                "Chrome/124.0 Safari/537.36")
# Fields SendGrid documents per event type, with typical values; a caller's `fields` win.
_EVENT_FIELDS: dict[str, dict[str, Any]] = {
    "deferred": {"ip": "168.1.1.1", "response": "400 try again later", "attempt": "1"},
    "delivered": {"ip": "168.1.1.1", "response": "250 OK", "tls": 1},
    "open": {"ip": "203.0.113.7", "useragent": _BUYER_AGENT, "sg_machine_open": False},
    "click": {"ip": "203.0.113.7", "useragent": _BUYER_AGENT, "url": "https://example.com/",
              "url_offset": {"index": 0, "type": "html"}},
    "bounce": {"ip": "168.1.1.1", "type": "bounce", "status": "5.1.1", "bounce_classification": "Invalid Address",
               "reason": "550 5.1.1 The email account that you tried to reach does not exist."},
    "dropped": {"reason": "Bounced Address", "status": "5.0.0"},
    "group_unsubscribe": {"ip": "203.0.113.7", "useragent": _BUYER_AGENT, "asm_group_id": 1,
                          "url": "https://sendgrid.com/unsubscribe"},
    "group_resubscribe": {"ip": "203.0.113.7", "useragent": _BUYER_AGENT, "asm_group_id": 1,
                          "url": "https://sendgrid.com/resubscribe"},
}


def event(message: dict[str, Any], name: str, *, now: float | None = None, **fields: Any) -> dict[str, Any]:
    """One Event Webhook event about a recorded `message`, as SendGrid posts it: its custom args
    echoed as top-level keys, its categories, `sg_message_id` = X-Message-Id plus a filter suffix,
    `smtp-id` = the message's Message-ID, and a fresh `sg_event_id`. Raises ValueError for an
    event name SendGrid does not send."""
    if name not in EVENTS:
        raise ValueError(f"unknown SendGrid event {name!r}: one of {', '.join(EVENTS)}")
    headers = message.get("headers") or {}
    message_id = message["message_id"]
    item: dict[str, Any] = {
        "email": message["to"], "timestamp": int(time.time() if now is None else now),
        "smtp-id": headers.get("Message-ID") or f"<{message_id}@ismtpd0001p1.sendgrid.net>", "event": name,
        "sg_event_id": new_message_id(), "sg_message_id": f"{message_id}.filterdrecv-5645d9c87f-abcde-1-0",
    }
    if message.get("categories"):
        item["category"] = list(message["categories"])
    item.update(_EVENT_FIELDS.get(name, {}))
    item.update(message.get("custom_args") or {})
    item.update(fields)
    return item
