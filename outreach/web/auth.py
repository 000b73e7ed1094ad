"""Who is asking: signed session cookies for the pages, bearer tokens for the API, CSRF tokens on
every form, and a limit on failed sign-ins. Access rules live here too, so pages and API share them:
a rep sees their own contacts' touches, a marketer sees everything and approves nothing, an admin
does all."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware

from outreach.db import session_scope
from outreach.engine import Engine
from outreach.errors import InvalidInput, InvalidTransition, NotFound
from outreach.models import User
from outreach.users import user_for_token

STATIC_DIR = Path(__file__).parent / "static"
SESSION_HOURS = 12
_bearer = HTTPBearer(auto_error=False, description="An API token from `outreach users add`.")


class LoginRequired(Exception):
    """A page was asked for without a signed-in user: the handler sends them to /login."""


class Forbidden(Exception):
    """Signed in, but the role may not do this (a marketer approving a touch)."""


class LoginThrottle:
    """Failed sign-ins per (email, address) and per address in a sliding window; in memory, per process
    (a restart forgets, which is acceptable for slowing guessing down)."""

    def __init__(self, per_account: int = 5, per_address: int = 30, window: float = 15 * 60,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.per_account, self.per_address, self.window, self.clock = per_account, per_address, window, clock
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
                    or len(self._recent(("*", address))) >= self.per_address)

    def failed(self, email: str, address: str) -> None:
        with self._lock:
            now = self.clock()
            self._recent((email, address)).append(now)
            self._recent(("*", address)).append(now)
            if len(self._fails) > 10_000:  # guesses over many names must not grow memory without end
                for key in [k for k in self._fails if not self._recent(k)]:
                    del self._fails[key]

    def succeeded(self, email: str, address: str) -> None:
        with self._lock:
            self._fails.pop((email, address), None)


def derived_key(secret: str, purpose: str) -> str:
    """A key per purpose, so a cookie signature can never be replayed as an unsubscribe token."""
    return hmac.new(secret.encode(), f"outreach.web.{purpose}".encode(), hashlib.sha256).hexdigest()


def password_mark(user: User) -> str:
    # Stored in the session: a new password (or a removed one) signs out every existing session.
    return hashlib.sha256((user.password_hash or "").encode()).hexdigest()[:16]


def install(app: FastAPI, engine: Engine) -> None:
    """Sessions, static files, the throttle and the error pages; create_app calls this once."""
    app.state.login_throttle = LoginThrottle()
    app.add_middleware(SessionMiddleware, secret_key=derived_key(engine.settings.server.secret_key, "session"),
                       session_cookie="outreach_session", max_age=SESSION_HOURS * 3600, same_site="lax",
                       https_only=engine.settings.server.public_url.startswith("https://"))
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    def wants_json(request: Request) -> bool:
        return request.url.path.startswith("/api/") or request.headers.get("x-requested-with") == "fetch"

    def error(request: Request, status: int, message: str) -> Response:
        if wants_json(request):
            return JSONResponse({"detail": message}, status_code=status)
        from outreach.web.render import render_page

        return render_page(request, "error.html", {"status": status, "message": message}, status=status)

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, _exc: LoginRequired) -> Response:
        if request.headers.get("x-requested-with") == "fetch":
            return JSONResponse({"detail": "sign in again"}, status_code=401)
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target)}", status_code=303)

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, exc: Forbidden) -> Response:
        return error(request, 403, str(exc))

    @app.exception_handler(NotFound)
    async def _not_found(request: Request, exc: NotFound) -> Response:
        return error(request, 404, str(exc))

    @app.exception_handler(InvalidInput)
    async def _invalid(request: Request, exc: InvalidInput) -> Response:
        return error(request, 422, str(exc))

    @app.exception_handler(InvalidTransition)
    async def _conflict(request: Request, exc: InvalidTransition) -> Response:
        return error(request, 409, str(exc))


def get_engine(request: Request) -> Engine:
    return request.app.state.engine  # type: ignore[no-any-return]


EngineDep = Annotated[Engine, Depends(get_engine)]


def _load_user(engine: Engine, user_id: Any) -> User | None:
    if not isinstance(user_id, int):
        return None
    with session_scope(engine.db) as s:
        return s.get(User, user_id)


def session_user(request: Request, engine: EngineDep) -> User | None:
    """The signed-in user of a page request, or None; a stale session (user gone, password changed)
    is cleared."""
    sess = request.session
    user = _load_user(engine, sess.get("uid"))
    if user is None or not hmac.compare_digest(sess.get("pw", ""), password_mark(user)):
        if "uid" in sess:
            sess.clear()
        return None
    return user


def page_user(request: Request, user: Annotated[User | None, Depends(session_user)]) -> User:
    if user is None:
        raise LoginRequired()
    request.state.user = user  # for the templates: the nav, times in the user's zone
    return user


def api_user(engine: EngineDep,
             creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> User:
    if creds is None or creds.scheme.lower() != "bearer" or not creds.credentials:
        raise HTTPException(401, "send Authorization: Bearer <token> (outreach users add prints one)",
                            headers={"WWW-Authenticate": "Bearer"})
    with session_scope(engine.db) as s:
        user = user_for_token(s, creds.credentials)
    if user is None:
        raise HTTPException(401, "unknown or revoked token", headers={"WWW-Authenticate": "Bearer"})
    return user


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


PageUser = Annotated[User, Depends(page_user)]
ApiUser = Annotated[User, Depends(api_user)]


async def form_user(request: Request, user: PageUser) -> User:
    """A signed-in user's form post: sign-in is checked first (anonymous -> /login), then CSRF."""
    await check_csrf(request)
    return user


FormUser = Annotated[User, Depends(form_user)]


def owner_scope(user: User) -> str | None:
    """The owner filter the user's reads go through: a rep's own email, nobody's for the others."""
    return user.email if user.role == "rep" else None


def may_act(user: User) -> bool:
    return user.role in ("admin", "rep")


def require_actor(user: User) -> None:
    if not may_act(user):
        raise Forbidden("marketers see the queue but do not approve, edit or reject touches")


def visible_owner(user: User, contact_owner: str | None) -> bool:
    return user.role != "rep" or (contact_owner or "").lower() == user.email
