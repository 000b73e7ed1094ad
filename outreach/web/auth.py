"""Who may see and do what, shared by the pages and the API: a rep sees their own contacts' touches, a
marketer sees everything and approves nothing, an admin does all."""

from __future__ import annotations

from outreach.models import User
from outreach.web.sessions import Forbidden


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
