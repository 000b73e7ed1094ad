"""Batch loaders: what the planner and dispatcher need about many contacts, in a few queries."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import BindParameter, Connection, bindparam, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col
from sqlmodel import select as select_model

from outreach.models import Contact, Preference, Suppression, Touch, TouchStatus
from outreach.policy import Reach

_CHUNK = 900  # stays under SQLite's bound-parameter limit


def chunks(ids: Sequence[int], size: int = _CHUNK) -> Iterable[Sequence[int]]:
    for i in range(0, len(ids), size):
        yield ids[i:i + size]


# The loaders' statements, built once with an expanding IN: building `col.in_(ids)` anew coerced every
# id into a bind parameter and generated the statement's cache key on every call, which cost more
# than the query for the few contacts of one event (and 4% of a simulated run).
_IDS: BindParameter[int] = bindparam("ids", expanding=True)
_SUPPRESSIONS = select(col(Suppression.contact_id), col(Suppression.channel)).where(
    col(Suppression.contact_id).in_(_IDS))
_PREFERENCES = select(col(Preference.contact_id), col(Preference.interaction), col(Preference.channel)).where(
    col(Preference.contact_id).in_(_IDS))
_RECENT = select(col(Touch.contact_id), col(Touch.channel), col(Touch.sent_at)).where(
    col(Touch.contact_id).in_(_IDS), col(Touch.sent_at) >= bindparam("since"))  # typed by the column it meets
_IN_FLIGHT = select(col(Touch.contact_id), col(Touch.channel), col(Touch.claimed_at)).where(
    col(Touch.contact_id).in_(_IDS), col(Touch.status) == TouchStatus.SENDING,
    col(Touch.id).not_in(bindparam("mine", expanding=True)))
_CONTACTS = select_model(Contact).where(col(Contact.id).in_(_IDS))


def expanding(ids: Sequence[int], name: str = "ids") -> BindParameter[int]:
    """`ids` as one expanding IN parameter: no per-id coercion, and the statement's cache key ignores them."""
    return bindparam(name, list(ids), expanding=True)


def suppressions(session: Session | Connection, ids: Sequence[int]) -> dict[int, set[str]]:
    out: dict[int, set[str]] = defaultdict(set)
    for part in chunks(ids):
        for cid, channel in session.execute(_SUPPRESSIONS, {"ids": list(part)}):
            out[cid].add(channel)
    return out


def stated_preferences(session: Session | Connection, ids: Sequence[int]) -> dict[int, dict[str, str]]:
    out: dict[int, dict[str, str]] = defaultdict(dict)
    for part in chunks(ids):
        for cid, interaction, channel in session.execute(_PREFERENCES, {"ids": list(part)}):
            out[cid][interaction] = channel
    return out


class Reachable(Protocol):
    """What reach is made of: a Contact, or a planner's row with the same fields."""

    @property
    def email(self) -> str | None: ...
    @property
    def phone(self) -> str | None: ...
    @property
    def consent_email(self) -> bool | None: ...
    @property
    def consent_sms(self) -> bool | None: ...


def reach_of(contact: Reachable, suppressed: set[str] | None) -> Reach:
    return Reach(contact.email, contact.phone, contact.consent_email, contact.consent_sms,
                 frozenset(suppressed or ()))


def recent_sends(session: Session | Connection, ids: Sequence[int], since: datetime
                 ) -> dict[int, list[tuple[str, datetime]]]:
    """(channel, sent_at) of every automated touch sent to these contacts since `since`."""
    out: dict[int, list[tuple[str, datetime]]] = defaultdict(list)
    for part in chunks(ids):
        for cid, channel, sent_at in session.execute(_RECENT, {"ids": list(part), "since": since}):
            if sent_at is not None:  # always: the WHERE compared it; a touch with no channel counts for no channel
                out[cid].append((channel or "", sent_at))
    return out


def in_flight(session: Session | Connection, ids: Sequence[int], mine: Sequence[int]
              ) -> dict[int, list[tuple[str, datetime]]]:
    """(channel, claimed_at) of the touches to these contacts that other workers have claimed and not yet
    settled (`mine`, this worker's own batch, left out): caps count them, or two workers together
    could send past a cap."""
    out: dict[int, list[tuple[str, datetime]]] = defaultdict(list)
    for part in chunks(ids):
        for cid, channel, claimed_at in session.execute(_IN_FLIGHT, {"ids": list(part), "mine": list(mine)}):
            if claimed_at is not None:
                out[cid].append((channel or "", claimed_at))
    return out


def insert_ignore(session: Session | Connection, table: Any, rows: list[dict[str, Any]], keys: list[str]) -> int:
    """Insert rows, skipping those whose unique `keys` exist already; returns how many went in."""
    if not rows:
        return 0
    dialect = session.get_bind().dialect.name if isinstance(session, Session) else session.dialect.name
    if dialect == "postgresql":
        return _insert_ignore_unnest(session, table, rows, keys)
    mod: Any = sqlite
    # RETURNING counts what went in: executemany's rowcount is not reliable across drivers
    stmt = mod.insert(table).on_conflict_do_nothing(index_elements=keys).returning(table.c.id)
    total = 0
    for i in range(0, len(rows), 500):
        total += len(session.execute(stmt, rows[i:i + 500]).all())
    return total


def _insert_ignore_unnest(session: Session | Connection, table: Any, rows: list[dict[str, Any]],
                          keys: list[str]) -> int:
    """PostgreSQL: INSERT ... SELECT FROM unnest(one array per column), a short statement. The
    multi-row VALUES form binds every value (10,000 parameters per 500 touches), and psycopg parses
    a statement over 4 kB or 50 parameters anew on every execute: that parse cost more than the
    insert. Columns the rows leave out take their Python-side defaults, as with executemany."""
    cols = [table.c[n] for n in dict.fromkeys(k for r in rows for k in r)]
    source = func.unnest(*[bindparam(c.name, type_=postgresql.ARRAY(c.type)) for c in cols]).table_valued(
        *[c.name for c in cols]).render_derived()
    stmt = postgresql.insert(table).from_select([c.name for c in cols], select(*[source.c[c.name] for c in cols])
                                                ).on_conflict_do_nothing(index_elements=keys).returning(table.c.id)
    total = 0
    for i in range(0, len(rows), 1000):
        part = rows[i:i + 1000]
        total += len(session.execute(stmt, {c.name: [r.get(c.name) for r in part] for c in cols}).all())
    return total


def contacts_by_id(session: Session, ids: Sequence[int]) -> dict[int, Contact]:
    out: dict[int, Contact] = {}
    for part in chunks(list(ids)):
        for contact in session.execute(_CONTACTS, {"ids": list(part)}).scalars():
            out[contact.id or 0] = contact  # a loaded contact has its id
    return out
