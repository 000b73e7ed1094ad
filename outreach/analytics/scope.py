"""Which contacts and touches a report's filters keep, as SQL conditions every widget adds to its own
query (no list of ids is fetched: the database joins it, so it holds at a million contacts)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import String, exists
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.expression import FunctionElement
from sqlmodel import col

from outreach.analytics.model import ATTR_NAME, Filters
from outreach.models import Contact, Touch, TouchStatus, table_of

# the attributes with an index of their own (migration 0017): a filter on another reads every contact
INDEXED = ("industry", "region", "lead_source")


class attribute(FunctionElement[str]):
    """A contact's imported attribute as text, spelled exactly as the attribute indexes are (SQLite uses an
    index on an expression only for the same text): `attributes ->> 'NAME'` on PostgreSQL,
    `CAST(json_extract(attributes, '$.NAME') AS VARCHAR)` on SQLite. The name is written into the SQL, so it
    must be one ATTR_NAME allows (letters, digits, _)."""

    type = String()
    inherit_cache = False

    def __init__(self, name: str) -> None:
        if not ATTR_NAME.match(name):
            raise ValueError(f"attribute name {name!r}: letters, digits and _ only")
        self.name = name
        super().__init__()


@compiles(attribute, "postgresql")
def _attribute_pg(element: attribute, compiler: SQLCompiler, **kw: Any) -> str:
    return f"({compiler.process(table_of(Contact).c.attributes, **kw)} ->> '{element.name}')"


@compiles(attribute)
def _attribute_sqlite(element: attribute, compiler: SQLCompiler, **kw: Any) -> str:
    attributes = compiler.process(table_of(Contact).c.attributes, **kw)
    return f"CAST(json_extract({attributes}, '$.{element.name}') AS VARCHAR)"


def contact_where(f: Filters, owner: bool = True, touched: bool = True) -> list[ColumnElement[bool]]:
    """Conditions on Contact: its owner, its current stage, its attributes, and for a playbook filter
    the contacts that playbook sent at least one touch to (the funnel of the buyers it worked on;
    `touched=False` where the query keeps that playbook's touches itself)."""
    where: list[ColumnElement[bool]] = []
    if owner and f.owner is not None:
        where.append(col(Contact.owner) == f.owner)
    if f.stage is not None:
        where.append(col(Contact.stage) == f.stage)
    for name, value in f.attrs:
        # json_extract on SQLite, ->> on PostgreSQL: the attribute as text (numbers compare as written)
        where.append(attribute(name) == value)
    if touched and f.playbook is not None:
        where.append(exists().where(col(Touch.contact_id) == col(Contact.id), col(Touch.rule) == f.playbook,
                                    col(Touch.status) == TouchStatus.SENT))
    return where


def touch_where(f: Filters) -> list[ColumnElement[bool]]:
    """Conditions on Touch itself: a playbook filter keeps that rule's touches only."""
    return [col(Touch.rule) == f.playbook] if f.playbook is not None else []


def narrows_contacts(f: Filters) -> bool:
    """A contact condition beyond the owner: the query must join Contact for it."""
    return bool(f.stage or f.attrs)
