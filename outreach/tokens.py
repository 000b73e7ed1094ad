"""Signed, tamper-proof tokens for links and addresses that travel to buyers and providers."""

from __future__ import annotations

import hashlib
import hmac
import re

from itsdangerous import BadSignature, URLSafeSerializer, URLSafeTimedSerializer


def _serializer(secret: str, purpose: str) -> URLSafeSerializer:
    return URLSafeSerializer(secret, salt=f"outreach.{purpose}")


def sign(secret: str, purpose: str, value: int | str | list[int]) -> str:
    return str(_serializer(secret, purpose).dumps(value))


def unsign(secret: str, purpose: str, token: str) -> int | str | list[int] | None:
    try:
        value: int | str | list[int] | None = _serializer(secret, purpose).loads(token)
        return value
    except BadSignature:
        return None


def sign_timed(secret: str, purpose: str, value: int | str | list[int | str]) -> str:
    """A token that carries its signing time, for links that must stop working (`unsign_timed`)."""
    return str(URLSafeTimedSerializer(secret, salt=f"outreach.{purpose}").dumps(value))


def unsign_timed(secret: str, purpose: str, token: str, max_age: int) -> int | str | list[int | str] | None:
    """The value of a `sign_timed` token no older than `max_age` seconds, or None (forged or expired)."""
    try:
        value: int | str | list[int | str] | None = URLSafeTimedSerializer(
            secret, salt=f"outreach.{purpose}").loads(token, max_age=max_age)
        return value
    except BadSignature:  # SignatureExpired is one
        return None


def short_mac(secret: str, value: str, length: int = 10) -> str:
    """A short keyed digest: enough to make ids we mint (Message-IDs, reply addresses) unguessable."""
    return hmac.new(secret.encode(), value.encode(), hashlib.sha256).hexdigest()[:length]


def message_id(secret: str, touch_id: int, domain: str) -> str:
    return f"<t{touch_id}.{short_mac(secret, f'mid:{touch_id}')}@{domain}>"


def touch_from_message_id(secret: str, value: str) -> int | None:
    """The touch id inside a Message-ID we minted, or None if it is not ours."""
    local = value.strip().strip("<>").split("@", 1)[0]
    if not local.startswith("t") or "." not in local:
        return None
    number, mac = local[1:].split(".", 1)
    if not number.isdigit() or not hmac.compare_digest(mac, short_mac(secret, f"mid:{number}")):
        return None
    return int(number)


def reply_token(secret: str, touch_id: int) -> str:
    return f"t{touch_id}.{short_mac(secret, f'reply:{touch_id}')}"


def touch_from_reply_token(secret: str, token: str) -> int | None:
    if not token.lower().startswith("t") or "." not in token:
        return None
    number, mac = token[1:].split(".", 1)
    if not number.isdigit() or not hmac.compare_digest(mac.lower(), short_mac(secret, f"reply:{number}")):
        return None
    return int(number)


def constant_eq(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


_UID = re.compile(r"^touch-(\d+)\.([0-9a-f]+)@", re.IGNORECASE)


def invite_uid(secret: str, touch_id: int, domain: str) -> str:
    return f"touch-{touch_id}.{short_mac(secret, f'uid:{touch_id}')}@{domain}"


def touch_from_uid(secret: str, uid: str) -> int | None:
    match = _UID.match(uid.strip())
    if not match or not constant_eq(match.group(2).lower(), short_mac(secret, f"uid:{match.group(1)}")):
        return None
    return int(match.group(1))


def address_digest(secret: str, kind: str, address: str) -> str:
    """The keyed hash a forgotten address is remembered by (the do-not-contact list): without the
    secret key nobody can test an address against the list, nor read one out of it."""
    return hmac.new(secret.encode(), f"forgotten:{kind}:{address}".encode(), hashlib.sha256).hexdigest()
