"""Provider payloads captured in tests/fixtures (see its README.md), loaded the way the webhooks
receive them."""

from __future__ import annotations

import email
from typing import Any
from urllib.parse import parse_qsl

from . import FIXTURES


def load_form(name: str) -> tuple[dict[str, str], dict[str, bytes]]:
    """Split a captured Inbound Parse multipart body into form fields and file uploads."""
    raw = (FIXTURES / "sendgrid" / "inbound" / name).read_bytes()
    message = email.message_from_bytes(b"Content-Type: multipart/form-data; boundary=xYzZY\r\n\r\n" + raw)
    form: dict[str, str] = {}
    files: dict[str, bytes] = {}
    parts: Any = message.get_payload()
    for part in parts:
        field: str = part.get_param("name", header="content-disposition")
        payload: bytes = part.get_payload(decode=True)
        if part.get_filename():
            files[field] = payload
        else:
            form[field] = payload.decode("utf-8")
    return form, files


def twilio_form(name: str) -> dict[str, str]:
    """A captured Twilio webhook body (application/x-www-form-urlencoded) as its fields."""
    return dict(parse_qsl((FIXTURES / "twilio" / name).read_text().strip(), keep_blank_values=True))
