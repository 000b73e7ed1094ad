"""The render deadline counts the rendering thread's CPU time: a render that waits (a loaded machine,
a slow disk) is not a runaway template; one that computes past the deadline is stopped."""

from __future__ import annotations

import time

import pytest

from outreach import templating
from outreach.templating import RenderTimeout, limits


def test_waiting_is_not_running_away() -> None:
    with limits(0.2):
        time.sleep(0.4)  # the wall clock passes the deadline, the thread's CPU time does not
        templating._tick()


def test_computing_past_the_deadline_is_stopped() -> None:
    with pytest.raises(RenderTimeout), limits(0.2):
        while True:  # the watchdog interrupts a loop that calls nothing
            pass


def test_a_render_blocked_far_past_its_deadline_is_stopped_too() -> None:
    with pytest.raises(RenderTimeout), limits(0.02):
        for _ in range(100):  # 0.02 s x WALL_FACTOR of the wall clock, then the watchdog steps in
            time.sleep(0.05)
