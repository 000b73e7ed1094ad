"""FastAPI dependencies as small annotated aliases: the engine, the signed-in page user, the API user,
and a form post's user (CSRF checked)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from outreach.db import session_scope
from outreach.engine import Engine
from outreach.models import User
from outreach.users import may_sign_in, user_for_token
from outreach.web.sessions import LoginRequired, check_csrf, session_mark

_bearer = HTTPBearer(auto_error=False, description="An API token from `outreach users add`.")


def get_engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


EngineDep = Annotated[Engine, Depends(get_engine)]


def _load_user(engine: Engine, user_id: Any) -> User | None:
    if not isinstance(user_id, int):
        return None
    with session_scope(engine.db) as s:
        return s.get(User, user_id)


def session_user(request: Request, engine: EngineDep) -> User | None:
    """The signed-in user of a page request, or None; a stale session (user gone or disabled, password
    changed or removed, signed out) is cleared."""
    sess = request.session
    user = _load_user(engine, sess.get("uid"))
    version = sess.get("sv")
    if (user is None or not may_sign_in(user) or not isinstance(version, int) or isinstance(version, bool)
            or version != session_mark(user)):
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


PageUser = Annotated[User, Depends(page_user)]
ApiUser = Annotated[User, Depends(api_user)]


async def form_user(request: Request, user: PageUser) -> User:
    """A signed-in user's form post: sign-in is checked first (anonymous -> /login), then CSRF."""
    await check_csrf(request)
    return user


FormUser = Annotated[User, Depends(form_user)]
