"""The few expressions SQLite and PostgreSQL spell differently: the UTC day of a time, the hours between
two times, and a stage's rank in the funnel."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Integer, case, cast, func, literal
from sqlalchemy.sql.elements import ColumnElement, SQLCoreOperations
from sqlmodel import Session


def dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def utc_day(expr: SQLCoreOperations[Any], name: str) -> ColumnElement[str]:
    """'YYYY-MM-DD' of the UTC day a time falls on (SQLite keeps times as UTC text already)."""
    if name == "postgresql":
        return func.to_char(func.timezone("UTC", expr), "YYYY-MM-DD")
    return func.strftime("%Y-%m-%d", expr)


def hours_between(start: SQLCoreOperations[Any], end: SQLCoreOperations[Any], name: str) -> ColumnElement[Any]:
    if name == "postgresql":
        return func.extract("epoch", end - start) / 3600.0
    return (func.julianday(end) - func.julianday(start)) * 24.0


def whole_hours(start: SQLCoreOperations[Any], end: SQLCoreOperations[Any], name: str) -> ColumnElement[int]:
    """Hours between, rounded: velocity is kept to the hour, so its histogram has few rows per stage."""
    return cast(func.round(hours_between(start, end, name)), Integer)


def stage_rank(expr: SQLCoreOperations[Any], stage_ids: list[str]) -> ColumnElement[int]:
    """The stage's place in the funnel (0 first); -1 for a stage the rules no longer name."""
    if not stage_ids:
        return literal(-1)
    return case({s: i for i, s in enumerate(stage_ids)}, value=expr, else_=-1)


def utc_week(expr: SQLCoreOperations[Any], name: str) -> ColumnElement[str]:
    """'YYYY-MM-DD' of the Monday that starts the UTC week a time falls in."""
    if name == "postgresql":
        return func.to_char(func.date_trunc("week", func.timezone("UTC", expr)), "YYYY-MM-DD")
    # SQLite: forward to the next Sunday (or stay on it), then back six days
    return func.strftime("%Y-%m-%d", expr, "weekday 0", "-6 days")
