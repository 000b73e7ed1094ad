"""Which contacts and touches a report's filters keep, as SQL conditions every widget adds to its own
query (no list of ids is fetched: the database joins it, so it holds at a million contacts)."""

from __future__ import annotations

from sqlalchemy import String, exists
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col

from outreach.analytics.model import Filters
from outreach.models import Contact, Touch


def contact_where(f: Filters, owner: bool = True, touched: bool = True) -> list[ColumnElement[bool]]:
    """Conditions on Contact: its owner, its current stage, its attributes, and for a playbook filter
    the contacts that playbook touched (the funnel of the buyers it worked on; `touched=False` where the
    query keeps that playbook's touches itself)."""
    where: list[ColumnElement[bool]] = []
    if owner and f.owner is not None:
        where.append(col(Contact.owner) == f.owner)
    if f.stage is not None:
        where.append(col(Contact.stage) == f.stage)
    for name, value in f.attrs:
        # JSON_EXTRACT on SQLite, ->> on PostgreSQL: the attribute as text (numbers compare as written)
        where.append(col(Contact.attributes)[name].as_string().cast(String) == value)
    if touched and f.playbook is not None:
        where.append(exists().where(col(Touch.contact_id) == col(Contact.id), col(Touch.rule) == f.playbook))
    return where


def touch_where(f: Filters) -> list[ColumnElement[bool]]:
    """Conditions on Touch itself: a playbook filter keeps that rule's touches only."""
    return [col(Touch.rule) == f.playbook] if f.playbook is not None else []


def narrows_contacts(f: Filters) -> bool:
    """A contact condition beyond the owner: the query must join Contact for it."""
    return bool(f.stage or f.attrs)
