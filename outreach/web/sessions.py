"""Signed-in sessions: keys derived per purpose, the session version that ends old sessions (sign-out,
a new password, a disabled user), CSRF tokens on every form, the limit on failed sign-ins, and the two
refusals the error pages turn into answers."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from urllib.parse import urlsplit

from fastapi import Request

from outreach.models import User


class LoginRequired(Exception):
    """A page was asked for without a signed-in user: the handler sends them to /login."""


class Forbidden(Exception):
    """Signed in, but the role may not do this (a marketer approving a touch)."""


class LoginThrottle:
    """Failed sign-ins in a sliding window per (email, address), per address (guessing many accounts)
    and per account from any address (one account guessed from many); in memory, per process (a
    restart forgets, which is acceptable for slowing guessing down). The address is the client's as
    `server.trusted_proxies` lets it be known (see web/app.py)."""

    def __init__(self, per_account: int = 5, per_address: int = 30, window: float = 15 * 60,
                 clock: Callable[[], float] = time.monotonic, per_account_total: int = 20) -> None:
        self.per_account, self.per_address, self.window, self.clock = per_account, per_address, window, clock
        self.per_account_total = per_account_total
        self._fails: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: tuple[str, str]) -> deque[float]:
        q = self._fails.setdefault(key, deque())
        cutoff = self.clock() - self.window
        while q and q[0] < cutoff:
            q.popleft()
        return q

    def blocked(self, email: str, address: str) -> bool:
        with self._lock:
            return (len(self._recent((email, address))) >= self.per_account
                    or len(self._recent(("*", address))) >= self.per_address
                    or len(self._recent((email, "*"))) >= self.per_account_total)

    def failed(self, email: str, address: str) -> None:
        with self._lock:
            now = self.clock()
            self._recent((email, address)).append(now)
            self._recent(("*", address)).append(now)
            self._recent((email, "*")).append(now)
            if len(self._fails) > 10_000:  # guesses over many names must not grow memory without end
                for key in [k for k in self._fails if not self._recent(k)]:
                    del self._fails[key]

    def succeeded(self, email: str, address: str) -> None:
        with self._lock:
            self._fails.pop((email, address), None)


def derived_key(secret: str, purpose: str) -> str:
    """A key per purpose, so a cookie signature can never be replayed as an unsubscribe token."""
    return hmac.new(secret.encode(), f"outreach.web.{purpose}".encode(), hashlib.sha256).hexdigest()


def session_mark(user: User) -> int:
    """Stored in the session at sign-in: a session whose mark is not the user's session_version now
    (bumped by sign-out, a new password, disabling) is dead."""
    return user.session_version or 0


def csrf_token(request: Request) -> str:
    """The session's CSRF token, made on first use (also for the sign-in form, before any user)."""
    token = request.session.get("csrf")
    if not isinstance(token, str) or len(token) < 20:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


async def check_csrf(request: Request) -> None:
    """Every page POST carries the session's token (a form field, or a header from fetch), and comes
    from this site when the browser says where it comes from."""
    origin = request.headers.get("origin")
    if origin and origin != "null" and urlsplit(origin).netloc != request.url.netloc:
        raise Forbidden("this form was sent from another site")
    sent = request.headers.get("x-csrf-token")
    if not sent:
        form = await request.form()
        value = form.get("csrf")
        sent = value if isinstance(value, str) else None
    expected = request.session.get("csrf")
    if not sent or not isinstance(expected, str) or not hmac.compare_digest(sent, expected):
        raise Forbidden("the form expired or did not come from this site: reload the page and try again")
