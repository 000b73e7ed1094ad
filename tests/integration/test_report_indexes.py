"""The dashboards' narrowed queries read the indexes made for them (migration 0017), on SQLite, where an
index on an expression or a partial index is used only when the query spells its expression or its
condition in the very same text: a query that drifts from the index's text still answers, but reads every
contact or every delivery event (seconds at a million), and only a plan shows it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import date
from importlib import import_module
from typing import Any

import pytest
from sqlalchemy import event
from sqlmodel import Session

from outreach.analytics import activity, paths
from outreach.analytics.model import Filters
from outreach.analytics.scope import INDEXED, contact_where
from outreach.db import session_scope
from outreach.engine import Engine
from outreach.models import DELIVERY_WHERE, QUEUE_WHERE
from tests.support.report_data import REP2, seed_report

STAGES = ["aware", "interested", "evaluating", "deciding", "customer"]
PERIOD = Filters(date(2026, 11, 1), date(2026, 11, 10))
MIGRATION = import_module("outreach.migrations.versions.0017_report_narrowed")


@contextmanager
def plans(s: Session) -> Iterator[list[str]]:
    """The query plans (EXPLAIN QUERY PLAN's details, joined) of the SELECTs run inside the block."""
    seen: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, parameters))

    bind = s.get_bind()
    event.listen(bind, "before_cursor_execute", capture)
    out: list[str] = []
    try:
        yield out
    finally:
        event.remove(bind, "before_cursor_execute", capture)
    cur = s.connection().connection.driver_connection.cursor()  # type: ignore[union-attr]
    for statement, parameters in seen:
        out.append(" / ".join(row[3] for row in cur.execute("EXPLAIN QUERY PLAN " + statement, parameters)))


def read_with(s: Session, fn: Callable[[], object]) -> str:
    with plans(s) as got:
        fn()
    return "\n".join(got)


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_the_narrowed_widgets_read_their_indexes(database: str, engine: Engine) -> None:
    with session_scope(engine.db) as s:
        seed_report(s)
        paths.refresh(s, STAGES)
        retail = replace(PERIOD, attrs=(("industry", "retail"),))
        # an attribute filter: its expression index, not every contact's JSON
        assert "INDEX ix_contact_attr_industry" in read_with(
            s, lambda: paths.moves(s, STAGES, PERIOD, contact_where(retail)))
        # one owner's delivery events: found by contact from an index (ix_evidence_delivery, or on a database
        # without statistics ix_evidence_contact_type_at), not every delivery event of the period by type
        deliverability = read_with(s, lambda: activity.deliverability(s, replace(PERIOD, owner=REP2)))
        assert "SEARCH evidence USING COVERING INDEX ix_evidence_" in deliverability, deliverability
        assert "(contact_id=? AND " in deliverability and "ix_evidence_type_at" not in deliverability, deliverability
        # the queue and the steps' expired touches: the partial index of waiting and expired touches alone
        queue = read_with(s, lambda: activity.queue(s, PERIOD))
        assert "COVERING INDEX ix_touch_queue" in queue, queue
        expired = read_with(s, lambda: activity.steps(s, engine.project.rules, PERIOD, []))
        assert "COVERING INDEX ix_touch_queue" in expired, expired


def test_the_migration_spells_the_indexes_as_the_queries_do() -> None:
    """The migration copies the conditions and the attribute expressions (a migration does not change with
    the code): the copies must be the text the queries write."""
    from sqlalchemy.dialects import postgresql, sqlite

    from outreach.analytics.scope import attribute

    assert MIGRATION.DELIVERY_WHERE == DELIVERY_WHERE and MIGRATION.QUEUE_WHERE == QUEUE_WHERE
    assert MIGRATION.ATTRIBUTES == INDEXED
    for name in INDEXED:
        for dialect, spelled in (("sqlite", sqlite.dialect()), ("postgresql", postgresql.dialect())):
            query = str(attribute(name).compile(dialect=spelled))
            assert query == MIGRATION._attribute(name, dialect).replace("attributes", "contact.attributes")
