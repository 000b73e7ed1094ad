"""One exception hierarchy. Config errors (the project is wrong, nothing runs) stand apart from
runtime errors (one contact, touch or request is wrong, the rest goes on)."""

from __future__ import annotations

from dataclasses import dataclass


class OutreachError(Exception):
    """Root of every error the engine raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One finding of a validation, printed as `FILE:LINE: message`."""

    file: str
    line: int
    message: str
    warning: bool = False

    def __str__(self) -> str:
        kind = "warning: " if self.warning else ""
        return f"{self.file}:{self.line}: {kind}{self.message}"


class ConfigError(OutreachError):
    """The project (config.yaml, rules/, content/) is invalid; carries every problem found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class DatabaseUnavailable(OutreachError):
    """A database the engine was told to use cannot be reached; the message names the setting."""


class NotFound(OutreachError):
    """A contact, touch or user named by the caller does not exist (or is not theirs)."""


class InvalidInput(OutreachError):
    """Input from a user or an external system was rejected; the message says why."""


class InvalidTransition(OutreachError):
    """A touch cannot move from its status to the one asked for."""


class RenderError(OutreachError):
    """A template could not be rendered for a touch (a missing variable, a broken template)."""


class WebhookRejected(OutreachError):
    """A provider webhook failed verification (403) or parsing (400); nothing was changed."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(message)
