"""A new touch's status, a trigger's `within` at its edge and its `if:`, as tables
(outreach/conditions.py; the step conditions in SQL are tests/integration/test_plan_conditions.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from outreach import conditions
from outreach.conditions import TriggerConditions, TriggerTouch, new_status, trigger_touch
from outreach.models import Contact, Evidence, TouchStatus
from outreach.ruleset import Trigger

NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def _trigger(**fields: object) -> Trigger:
    return Trigger.model_validate({"id": "t", "on": "pricing.viewed", "interaction": "strategic",
                                   "content": "evaluating/pricing-follow-up", **fields})


@pytest.mark.parametrize(("channel", "approval", "status"), [
    (None, "auto", TouchStatus.SUPPRESSED), (None, "rep", TouchStatus.SUPPRESSED),
    ("email", "auto", TouchStatus.APPROVED), ("email", "rep", TouchStatus.PENDING),
    ("", "auto", TouchStatus.APPROVED),  # only None means no channel reaches the contact
])
def test_new_status(channel: str | None, approval: str, status: TouchStatus) -> None:
    assert new_status(channel, approval) is status  # type: ignore[arg-type]


WHY = "no channel reaches the contact"
LATE = "its within (2:00:00) passed before it could be queued"


@pytest.mark.parametrize(("fields", "channel", "occurred", "expected"), [
    ({}, "email", NOW - 30 * 24 * HOUR, TriggerTouch(TouchStatus.APPROVED, None, None)),  # no within: never late
    ({"within": "2h"}, "email", NOW - HOUR, TriggerTouch(TouchStatus.APPROVED, None, NOW + HOUR)),
    ({"within": "2h"}, "email", NOW - 2 * HOUR + timedelta(seconds=1),
     TriggerTouch(TouchStatus.APPROVED, None, NOW + timedelta(seconds=1))),
    ({"within": "2h"}, "email", NOW - 2 * HOUR, TriggerTouch(TouchStatus.EXPIRED, LATE, NOW)),  # ends now: late
    ({"within": "2h"}, "email", NOW - 3 * HOUR, TriggerTouch(TouchStatus.EXPIRED, LATE, NOW - HOUR)),
    ({"within": "2h", "approval": "rep"}, "email", NOW - 3 * HOUR, TriggerTouch(TouchStatus.EXPIRED, LATE, NOW - HOUR)),
    ({"within": "2h", "approval": "rep"}, "email", NOW, TriggerTouch(TouchStatus.PENDING, None, NOW + 2 * HOUR)),
    # no channel: suppressed with the choice's reason, late or not
    ({"within": "2h"}, None, NOW - 3 * HOUR, TriggerTouch(TouchStatus.SUPPRESSED, WHY, NOW - HOUR)),
    ({}, None, NOW, TriggerTouch(TouchStatus.SUPPRESSED, WHY, None)),
])
def test_trigger_touch(fields: dict[str, object], channel: str | None, occurred: datetime,
                       expected: TriggerTouch) -> None:
    assert trigger_touch(_trigger(**fields), channel, WHY, occurred, NOW) == expected


@pytest.mark.parametrize(("status", "after", "expected"), [
    (TouchStatus.PENDING, timedelta(days=2), NOW + timedelta(days=2)),
    (TouchStatus.PENDING, None, None),  # approvals never expire
    (TouchStatus.PENDING, timedelta(0), None),  # 0 is "never" too
    (TouchStatus.APPROVED, timedelta(days=2), None),  # nobody needs to approve it
    (TouchStatus.SUPPRESSED, timedelta(days=2), None),
])
def test_approve_by(status: TouchStatus, after: timedelta | None, expected: datetime | None) -> None:
    assert conditions.approve_by(status, NOW, after) == expected


def _contact(stage: str) -> Contact:
    return Contact(id=1, email="ada@analytical.example", stage=stage, stage_entered_at=NOW, created_at=NOW,
                   title="CTO")


def _evidence(**data: object) -> Evidence:
    return Evidence(id=1, contact_id=1, type="pricing.viewed", occurred_at=NOW, source="test", data=data)


@pytest.mark.parametrize(("expression", "stage", "data", "holds"), [
    (None, "aware", {}, True),  # no `if:` always holds
    ("", "aware", {}, True),
    ("contact.stage in ['interested', 'evaluating']", "interested", {}, True),
    ("contact.stage in ['interested', 'evaluating']", "aware", {}, False),
    ("evidence.data.plan == 'enterprise'", "aware", {"plan": "enterprise"}, True),
    ("evidence.data.plan == 'enterprise'", "aware", {"plan": "team"}, False),
    ("contact.title == 'CTO' and now.hour == 15", "aware", {}, True),
])
def test_a_triggers_if(expression: str | None, stage: str, data: dict[str, object], holds: bool) -> None:
    trigger = _trigger(**({"if": expression} if expression is not None else {}))
    assert TriggerConditions().holds(trigger, _contact(stage), _evidence(**data), NOW) is holds


def test_each_if_is_compiled_once() -> None:
    cache = TriggerConditions()
    trigger = _trigger(**{"if": "contact.stage == 'aware'"})
    assert cache.holds(trigger, _contact("aware"), _evidence(), NOW)
    compiled = cache._compiled[trigger.if_ or ""]
    assert not cache.holds(trigger, _contact("interested"), _evidence(), NOW)
    assert cache._compiled == {trigger.if_: compiled}
