"""People who use the web app and the API: roles, password hashes (argon2), API tokens."""

from __future__ import annotations

import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlmodel import Session, col

from outreach.contacts import normalize_email
from outreach.errors import InvalidInput
from outreach.models import User

ROLES = ("admin", "marketer", "rep")
_hasher = PasswordHasher()


def token_hash(token: str) -> str:
    # API tokens are long random strings: a plain SHA-256 is enough and lets us look them up
    return hashlib.sha256(token.encode()).hexdigest()


def add_user(session: Session, email: str, role: str, password: str | None) -> tuple[User, str]:
    """Add (or update the role and password of) a user; returns the user and a new API token."""
    if role not in ROLES:
        raise InvalidInput(f"role '{role}' must be one of: {', '.join(ROLES)}")
    if password is not None and len(password) < 8:
        raise InvalidInput("a password needs at least 8 characters")
    address = normalize_email(email)
    token = "otk_" + secrets.token_urlsafe(32)
    user = session.execute(select(User).where(col(User.email) == address)).scalar_one_or_none()
    if user is None:
        user = User(email=address, role=role)
    user.role = role
    if password is not None:
        user.password_hash = _hasher.hash(password)
    user.api_token_hash = token_hash(token)
    session.add(user)
    session.flush()
    return user, token


def check_password(user: User | None, password: str) -> bool:
    if user is None or not user.password_hash:
        _hasher.hash(password)  # spend the same time whether or not the user exists
        return False
    try:
        return _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def user_for_token(session: Session, token: str) -> User | None:
    return session.execute(select(User).where(col(User.api_token_hash) == token_hash(token))).scalar_one_or_none()
