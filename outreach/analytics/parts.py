"""Counts kept per single filter value ("part"), so that a report narrowed by one filter reads a few rows
per day, as one over everybody does.

A part is a text: "" (everybody), "owner:EMAIL", "stage:ID" (the stage now), "attr:NAME=VALUE" (the
attributes scope.INDEXED names, as text the way scope.attribute reads them) and "rule:RULE" (a playbook or
trigger that sent the contact at least one touch). ContactPart keeps, per contact, the parts it was
counted in at the last refresh: when a contact changes (its owner, stage or attributes, marked by the
triggers on contact; its paths; a touch sent by a rule it had none from), its counts are taken off the
parts ContactPart says, ContactPart is written again from the contact as it is, and its counts are put on
its new parts, in the refresh's transaction. A report narrowed by exactly one of those filters reads its
part's rows; combinations and other attributes are counted from the contacts' rows (scope.contact_where)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, and_, delete, exists, func, insert, literal, select, union_all
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col

from outreach.analytics.model import Filters
from outreach.analytics.scope import INDEXED, attribute
from outreach.batch_loads import chunks
from outreach.models import Contact, ContactMark, ContactPart, SentTouch, table_of

PARTS, SENT = table_of(ContactPart), table_of(SentTouch)
RULE = "rule:"  # the rule parts: not kept in SentDay (a playbook's own touches are read by rule from "")
# an attribute value longer than this has no part (counted from the rows): a part is in the key of btree
# indexes, whose entries PostgreSQL limits to about 2,700 bytes, and an attribute may hold 10,000 characters
MAX_VALUE = 200


def part_of(f: Filters) -> str | None:
    """The one part whose kept rows answer the filters (the owner, the stage now, an indexed attribute or
    a playbook, alone; "" for none), or None: count from the contacts' rows."""
    given: list[str] = []
    if f.owner is not None:
        given.append(f"owner:{f.owner}")
    if f.stage is not None:
        given.append(f"stage:{f.stage}")
    if f.playbook is not None:
        given.append(f"{RULE}{f.playbook}")
    given += [f"attr:{name}={value}" if name in INDEXED and len(value) <= MAX_VALUE else "?"
              for name, value in f.attrs]
    if not given:
        return ""
    return given[0] if len(given) == 1 and given[0] != "?" else None


def current(ids: Sequence[int] | None) -> Select[Any]:
    """(contact_id, part): the parts of the contacts `ids` (None: every contact) as they are now. A rule's
    part comes from the kept sent touches (SentTouch), so they must be up to date first."""
    cid = col(Contact.id)
    mine = [cid.in_(ids)] if ids is not None else []
    queries = [select(cid, literal("")).where(*mine),
               select(cid, literal("owner:") + col(Contact.owner)).where(*mine, col(Contact.owner).is_not(None)),
               select(cid, literal("stage:") + col(Contact.stage)).where(*mine)]
    for name in INDEXED:
        value = attribute(name)
        queries.append(select(cid, literal(f"attr:{name}=") + value).where(
            *mine, value.is_not(None), func.length(value) <= MAX_VALUE))
    sent = [SENT.c.contact_id.in_(ids)] if ids is not None else []
    queries.append(select(SENT.c.contact_id, literal(RULE) + SENT.c.rule).where(
        *sent, exists().where(cid == SENT.c.contact_id)).distinct())
    return union_all(*queries)  # type: ignore[return-value]


def rewrite(session: Session, ids: Sequence[int] | None) -> None:
    """ContactPart for the contacts `ids` (None: everyone, the table emptied) from what they are now."""
    session.execute(delete(ContactPart).where(*([col(ContactPart.contact_id).in_(ids)] if ids is not None else [])))
    parts = current(ids).subquery()
    session.execute(insert(PARTS).from_select(["contact_id", "part"], select(*parts.c)))


def marked(session: Session, since: int) -> list[int]:
    """The contacts the triggers on contact marked after mark `since`."""
    return list(session.execute(select(col(ContactMark.contact_id)).where(col(ContactMark.id) > since)
                                .distinct()).scalars())


def rules_moved(session: Session, ids: Sequence[int]) -> list[int]:
    """Of the contacts `ids` (whose sent touches were read again), those whose rule parts are no longer the
    ones kept: a rule sent them their first touch, or a touch stopped being sent or moved away."""
    cp = PARTS.c
    kept_rule = and_(cp.contact_id == SENT.c.contact_id, cp.part == literal(RULE) + SENT.c.rule)
    found: set[int] = set()
    for chunk in chunks(ids, 5000):  # a dispatcher's run may have sent to more contacts than SQLite binds
        gained = select(SENT.c.contact_id).where(SENT.c.contact_id.in_(chunk), ~exists().where(kept_rule))
        lost = select(cp.contact_id).where(cp.contact_id.in_(chunk), cp.part.startswith(RULE), ~exists().where(
            SENT.c.contact_id == cp.contact_id, cp.part == literal(RULE) + SENT.c.rule))
        found.update(session.execute(gained.union(lost)).scalars())
    return sorted(found)


def counted(contact: ColumnElement[int], rules: bool = True) -> list[ColumnElement[bool]]:
    """Join conditions: ContactPart's rows of `contact` (with `rules=False`, not its rule parts)."""
    on = [PARTS.c.contact_id == contact]
    return on if rules else [*on, ~PARTS.c.part.startswith(RULE)]
