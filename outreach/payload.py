"""JSON that comes from outside (the API's evidence `data`, `evidence add --data`): parsed and checked
so that nothing hostile reaches the database or a traceback. Each check names the field at fault."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

from outreach.errors import InvalidInput

MAX_DEPTH = 32  # levels of objects and lists inside `data`
MAX_INT = 2**63 - 1  # integers beyond 64 bits lose their value in most readers of the JSON
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)


def check_data(value: Any, what: str = "data") -> None:
    """Raise InvalidInput, naming the path, for JSON that is nested over MAX_DEPTH levels, or holds
    NaN or Infinity, an integer over 64 bits, or a NUL character. Iterative: no recursion limit."""
    stack: list[tuple[str, Any, int]] = [(what, value, 0)]
    while stack:
        path, node, depth = stack.pop()
        if isinstance(node, dict | list):
            if depth >= MAX_DEPTH:
                raise InvalidInput(f"{path}: nested more than {MAX_DEPTH} levels deep")
            items = node.items() if isinstance(node, dict) else enumerate(node)
            for key, item in items:
                if isinstance(key, str) and "\x00" in key:
                    raise InvalidInput(f"{path}: a key holds a NUL character")
                stack.append((f"{path}[{key}]" if isinstance(node, list) else f"{path}.{key}", item, depth + 1))
        elif isinstance(node, bool) or node is None:
            continue
        elif isinstance(node, int) and not -MAX_INT - 1 <= node <= MAX_INT:
            raise InvalidInput(f"{path}: the integer is out of range (64 bits at most)")
        elif isinstance(node, float) and not math.isfinite(node):
            raise InvalidInput(f"{path}: NaN and Infinity are not JSON numbers")
        elif isinstance(node, str) and "\x00" in node:
            raise InvalidInput(f"{path}: holds a NUL character")


def parse_object(text: str, what: str) -> dict[str, Any]:
    """A JSON object from text, checked as check_data does; InvalidInput otherwise."""

    def no_constant(name: str) -> Any:
        raise ValueError(f"{name} is not a JSON number")

    try:
        value = json.loads(text, parse_constant=no_constant)
    except RecursionError:
        raise InvalidInput(f"{what}: nested more than {MAX_DEPTH} levels deep") from None
    except ValueError as exc:  # a syntax error, NaN, an integer of thousands of digits
        raise InvalidInput(f"{what} is not JSON: {str(exc).split(';')[0]}") from None
    if not isinstance(value, dict):
        raise InvalidInput(f"{what} must be a JSON object")
    check_data(value, what)
    return value


def check_time(value: datetime, what: str) -> datetime:
    """An aware time in UTC (naive means UTC) within what the database stores; InvalidInput otherwise."""
    try:
        utc = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:
        raise InvalidInput(f"{what} is out of range") from None
    if utc < EARLIEST:
        raise InvalidInput(f"{what} is before {EARLIEST.year}")
    return utc
