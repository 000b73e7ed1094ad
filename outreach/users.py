"""People who use the web app and the API: roles, password hashes (argon2), API tokens."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlmodel import Session, col

from outreach.contacts import normalize_email
from outreach.errors import InvalidInput, NotFound
from outreach.models import User

ROLES = ("admin", "marketer", "rep")
_hasher = PasswordHasher()


def token_hash(token: str) -> str:
    # API tokens are long random strings: a plain SHA-256 is enough and lets us look them up
    return hashlib.sha256(token.encode()).hexdigest()


def find_user(session: Session, email: str) -> User | None:
    address = email.strip().lower()
    return session.execute(select(User).where(col(User.email) == address)).scalar_one_or_none()


def add_user(session: Session, email: str, role: str, password: str | None, *, name: str | None = None,
             timezone: str | None = None) -> tuple[User, str]:
    """Add (or update the role, password, name and zone of) a user, enabled; returns the user and a new
    API token. A new password ends the user's sessions."""
    if role not in ROLES:
        raise InvalidInput(f"role '{role}' must be one of: {', '.join(ROLES)}")
    if password is not None and len(password) < 8:
        raise InvalidInput("a password needs at least 8 characters")
    if timezone is not None:
        check_zone(timezone)
    address = normalize_email(email)
    token = "otk_" + secrets.token_urlsafe(32)
    user = find_user(session, address)
    if user is None:
        user = User(email=address, role=role)
    user.role = role
    if password is not None:
        user.password_hash = _hasher.hash(password)
        user.session_version = (user.session_version or 0) + 1
    if name is not None:
        user.name = name.strip() or None
    if timezone is not None:
        user.timezone = timezone
    user.disabled_at = None
    user.api_token_hash = token_hash(token)
    session.add(user)
    session.flush()
    return user, token


def check_zone(name: str) -> str:
    """An IANA time zone name, or InvalidInput saying what to give instead."""
    try:
        return ZoneInfo(name.strip()).key
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"unknown time zone '{name}' (use an IANA name like Europe/Berlin)") from None


def set_profile(session: Session, user_id: int, *, timezone: str, name: str | None = None) -> User:
    """What a user changes about themselves: the zone every time is shown in, and their name."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"no user #{user_id}")
    user.timezone = check_zone(timezone) if timezone.strip() else None
    if name is not None:
        user.name = name.strip() or None
    session.add(user)
    session.flush()
    return user


def end_sessions(session: Session, user_id: int | None) -> None:
    """Sign the user out everywhere: every session signed with the old version is dead."""
    user = session.get(User, user_id) if user_id is not None else None
    if user is not None:
        user.session_version = (user.session_version or 0) + 1
        session.add(user)
        session.flush()


def disable_user(session: Session, email: str) -> User:
    """The user can no longer sign in or use their token; their sessions end. `users add` enables again."""
    user = find_user(session, email)
    if user is None:
        raise NotFound(f"no user {email.strip().lower()}")
    user.disabled_at = user.disabled_at or datetime.now(UTC)
    user.session_version = (user.session_version or 0) + 1
    session.add(user)
    session.flush()
    return user


def remove_user(session: Session, email: str) -> None:
    user = find_user(session, email)
    if user is None:
        raise NotFound(f"no user {email.strip().lower()}")
    session.delete(user)
    session.flush()


def may_sign_in(user: User | None) -> bool:
    """A user signs in only with a password, and only while enabled."""
    return user is not None and bool(user.password_hash) and user.disabled_at is None


def check_password(user: User | None, password: str) -> bool:
    if user is None or not user.password_hash or not may_sign_in(user):
        _hasher.hash(password)  # spend the same time whether or not the user exists
        return False
    try:
        return _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def user_for_token(session: Session, token: str) -> User | None:
    """The enabled user of an API token, or None."""
    user = session.execute(select(User).where(col(User.api_token_hash) == token_hash(token))).scalar_one_or_none()
    return user if user is not None and user.disabled_at is None else None
