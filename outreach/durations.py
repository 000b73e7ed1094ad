"""Durations as marketers write them: 90s, 15m, 2h, 3d, 2w."""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_PATTERN = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")


def parse_duration(text: object) -> timedelta:
    """Parse '3d' and friends; raise ValueError with a message a marketer can act on."""
    if isinstance(text, bool) or not isinstance(text, str | int):
        raise ValueError(f"'{text}' is not a duration (write it like 90s, 15m, 2h, 3d, 2w)")
    if isinstance(text, int):
        if text == 0:
            return timedelta(0)
        raise ValueError(f"'{text}' has no unit (write it like 90s, 15m, 2h, 3d, 2w)")
    match = _PATTERN.match(text)
    if not match:
        raise ValueError(f"'{text}' is not a duration (write it like 90s, 15m, 2h, 3d, 2w)")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
