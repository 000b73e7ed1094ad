"""The conditions the dashboards' partial indexes hold (outreach.models) are the analytics' own."""

from __future__ import annotations

from outreach.analytics.activity import DELIVERY, QUEUED
from outreach.models import DELIVERY_TYPES, DELIVERY_WHERE, QUEUE_WHERE


def test_the_partial_indexes_hold_the_widgets_rows() -> None:
    assert DELIVERY_TYPES == tuple(sorted(DELIVERY))  # every delivery event the widget counts, in order
    assert DELIVERY_WHERE == "type IN (" + ", ".join(f"'{t}'" for t in sorted(DELIVERY)) + ")"
    assert QUEUE_WHERE == "status IN (" + ", ".join(f"'{t}'" for t in QUEUED) + ")"
