"""The touch state machine as a person drives it (approve, reject, resend, drop): from which status
each move is allowed and where it leads. Everything else moves only by the engine."""

from __future__ import annotations

import pytest

from outreach.models import OPEN_STATUSES, STATUSES
from outreach.queue import TRANSITIONS

# (move, status it starts from) -> status it leads to; every pair not listed is refused
ALLOWED = {
    ("approve", "pending_approval"): "approved",
    ("reject", "pending_approval"): "rejected",
    ("reject", "approved"): "rejected",  # a rep may still stop an approved touch before it goes
    ("resend", "uncertain"): "approved",  # a person checked with the provider: send it again
    ("drop", "uncertain"): "cancelled",
}


@pytest.mark.parametrize("move", sorted(TRANSITIONS))
@pytest.mark.parametrize("status", STATUSES)
def test_who_may_move_a_touch_where(move: str, status: str) -> None:
    allowed, target = TRANSITIONS[move]
    expected = ALLOWED.get((move, status))
    assert (status in allowed) == (expected is not None)
    if expected:
        assert target == expected


def test_nothing_handed_to_a_provider_is_moved_by_a_person_but_an_uncertain_send() -> None:
    handed = set(STATUSES) - set(OPEN_STATUSES) - {"uncertain"}
    assert all(not (allowed & handed) for allowed, _ in TRANSITIONS.values())
    assert set(TRANSITIONS) == {move for move, _ in ALLOWED}
