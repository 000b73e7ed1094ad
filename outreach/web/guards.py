"""ASGI middleware every request passes, before any route reads, authenticates or parses it: the body
size limit, the client's address as `server.trusted_proxies` lets it be known, and the security headers
on every response."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable, Iterable

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class BodyTooLarge(HTTPException):
    """Raised from `receive` when a streamed body passes its limit: Starlette answers it with 413 (and
    FastAPI passes an HTTPException through rather than calling it a parse error)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is over the {limit:,} byte limit")


class BodyLimit:
    """Refuse a body over the path's limit: a stated Content-Length at once (nothing read), a chunked
    body as soon as the bytes counted pass the limit (never buffered whole)."""

    def __init__(self, app: ASGIApp, limit_for: Callable[[str], int]) -> None:
        self.app, self.limit_for = app, limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        stated = [v for k, v in scope["headers"] if k == b"content-length"]
        if stated:
            try:
                length = int(stated[-1])
            except ValueError:
                await _answer(send, 400, "Content-Length is not a number")
                return
            if length > limit:
                await _answer(send, 413, f"the request body ({length:,} bytes) is over the {limit:,} byte limit")
                return
        received = 0
        started = False

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, tracked)
        except BodyTooLarge as exc:
            if started:
                raise
            await _answer(send, 413, str(exc.detail))


async def _answer(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


def networks(items: Iterable[str]) -> list[Network]:
    return [ipaddress.ip_network(item, strict=False) for item in items]


def _trusted(host: str, trusted: list[Network]) -> bool:
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return any(address in net for net in trusted)


def client_address(peer: str, forwarded_for: list[str], trusted: list[Network]) -> str:
    """The client's address: the peer's, unless the peer is a trusted proxy; then the nearest address
    in X-Forwarded-For that is not a trusted proxy (the ones further left are the client's word)."""
    if not _trusted(peer, trusted):
        return peer
    hops = [h.strip() for value in forwarded_for for h in value.split(",") if h.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, trusted):
            return hop
    return hops[0] if hops else peer


class ClientAddress:
    """scope["client"] as `client_address` says: the sign-in limit counts per this address. With no
    trusted proxies (the default), X-Forwarded-For is ignored."""

    def __init__(self, app: ASGIApp, trusted: list[Network]) -> None:
        self.app, self.trusted = app, trusted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("client") and self.trusted:
            host, port = scope["client"]
            forwarded = [v.decode("latin-1") for k, v in scope["headers"] if k == b"x-forwarded-for"]
            address = client_address(host, forwarded, self.trusted)
            if address != host:
                scope = {**scope, "client": (address, port)}
        await self.app(scope, receive, send)


BASE_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
}
FRAME_POLICY = "frame-ancestors 'none'"  # pages send their full policy, which says the same
HSTS = "max-age=31536000"


class SecurityHeaders:
    """The headers every response carries (the JSON API, webhooks, static files, errors too), unless
    the response set its own: nosniff, no framing, the referrer kept on this site, and HSTS when
    `server.public_url` is https."""

    def __init__(self, app: ASGIApp, https: bool) -> None:
        self.app = app
        self.headers = {**BASE_HEADERS, "content-security-policy": FRAME_POLICY}
        if https:
            self.headers["strict-transport-security"] = HSTS

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.decode("latin-1").lower() for k, _ in headers}
                headers += [(k.encode(), v.encode()) for k, v in self.headers.items() if k not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)
