"""Signed-in sessions: keys derived per purpose, the session version that ends old sessions (sign-out,
a new password, a disabled user), CSRF tokens on every form, the limit on failed sign-ins, and the two
refusals the error pages turn into answers."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from fastapi import Request
from sqlalchemy import Engine, and_, case, delete, func, insert, or_, select

from outreach.models import SignInFailure, User, table_of

_FAILURES = table_of(SignInFailure)


class LoginRequired(Exception):
    """A page was asked for without a signed-in user: the handler sends them to /login."""


class Forbidden(Exception):
    """Signed in, but the role may not do this (a marketer approving a touch)."""


class LoginThrottle:
    """Failed sign-ins in a sliding window per (email, address), per address (guessing many accounts)
    and per account from any address (one account guessed from many). Kept in the database
    (SignInFailure), so every web host behind a load balancer, and a restarted one, counts the same
    failures. The address is the client's as `server.trusted_proxies` lets it be known (see web/app.py)."""

    def __init__(self, engine: Engine, per_account: int = 5, per_address: int = 30, window: float = 15 * 60,
                 clock: Callable[[], float] = time.time, per_account_total: int = 20) -> None:
        self.engine = engine
        self.per_account, self.per_address, self.window, self.clock = per_account, per_address, window, clock
        self.per_account_total = per_account_total

    def blocked(self, email: str, address: str) -> bool:
        t = _FAILURES
        both = and_(t.c.email == email, t.c.address == address)
        counts = select(func.sum(case((both, 1), else_=0)), func.sum(case((t.c.address == address, 1), else_=0)),
                        func.sum(case((t.c.email == email, 1), else_=0))).where(
            t.c.at >= self.clock() - self.window, or_(t.c.email == email, t.c.address == address))
        with self.engine.connect() as conn:
            pair, by_address, by_email = (int(n or 0) for n in conn.execute(counts).one())
        return pair >= self.per_account or by_address >= self.per_address or by_email >= self.per_account_total

    def failed(self, email: str, address: str) -> None:
        now = self.clock()
        with self.engine.begin() as conn:  # the window's old rows go as new ones come: the table stays small
            conn.execute(delete(_FAILURES).where(_FAILURES.c.at < now - self.window))
            conn.execute(insert(_FAILURES).values(email=email, address=address, at=now))

    def succeeded(self, email: str, address: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(_FAILURES).where(_FAILURES.c.email == email, _FAILURES.c.address == address))


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
