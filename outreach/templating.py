"""Jinja2 in its sandbox, shared by the buyers' templates and the rules' `if:` conditions.

A variable that is missing or empty is an error, never a blank in front of a buyer; `{{ x | default('...') }}`
is how a template says otherwise. This module is a leaf: it knows no rules, contacts or database."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import BaseLoader, Environment, FileSystemLoader, StrictUndefined, TemplateNotFound, UndefinedError
from jinja2.sandbox import SandboxedEnvironment

log = logging.getLogger(__name__)
Condition = Callable[..., Any]  # a compiled `if:` expression, called with the context as keywords


class View:
    """Read-only attribute access to a dict for templates; empty values count as missing."""

    def __init__(self, name: str, values: dict[str, Any]) -> None:
        self._name = name
        self._values = values

    def __getattr__(self, key: str) -> Any:
        if key.startswith("_"):
            raise AttributeError(key)
        value = self._values.get(key)
        if value is None or value == "":
            raise AttributeError(key)
        return View(f"{self._name}.{key}", value) if isinstance(value, dict) else value

    def __getitem__(self, key: str) -> Any:
        return self.__getattr__(key)

    def __contains__(self, key: str) -> bool:
        return self._values.get(key) not in (None, "")

    def __str__(self) -> str:
        return str(self._values)


class _Env(SandboxedEnvironment):
    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, View):
            try:
                return getattr(obj, attribute)
            except AttributeError:
                return self.undefined(hint=f"{obj._name}.{attribute} is missing", obj=obj, name=attribute)
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        if isinstance(obj, View) and isinstance(argument, str):
            return self.getattr(obj, argument)
        return super().getitem(obj, argument)


# A running server renders the templates it last validated (content dir -> {name: source}), so that a
# template broken on disk does not reach buyers before `check` would pass it (see reload.py).
_frozen: dict[str, dict[str, str]] = {}


class _Loader(BaseLoader):
    def __init__(self, content_dir: str) -> None:
        self.content_dir = content_dir
        self.disk = FileSystemLoader(content_dir)

    def get_source(self, environment: Environment, template: str) -> tuple[str, str | None, Callable[[], bool]]:
        frozen = _frozen.get(self.content_dir)
        if frozen is None:
            return self.disk.get_source(environment, template)
        if template not in frozen:
            raise TemplateNotFound(template)
        source = frozen[template]
        path = str(Path(self.content_dir) / template)
        return source, path, lambda: _frozen.get(self.content_dir, {}).get(template) == source


def snapshot(content_dir: Path) -> dict[str, str]:
    """Every template's source by name (undecodable files are left out: `check` reports them)."""
    out = {}
    for path in sorted(content_dir.rglob("*.j2")) if content_dir.is_dir() else []:
        try:
            out[path.relative_to(content_dir).as_posix()] = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
    return out


def freeze(content_dir: Path, sources: dict[str, str] | None = None) -> None:
    """Render from these sources (default: what is on disk now) until thawed or frozen again."""
    _frozen[str(content_dir)] = snapshot(content_dir) if sources is None else sources


def thaw(content_dir: Path) -> None:
    _frozen.pop(str(content_dir), None)


@lru_cache(maxsize=8)
def environment(content_dir: str | None = None) -> SandboxedEnvironment:
    return new_environment(_Loader(content_dir) if content_dir else None)


def new_environment(loader: BaseLoader | None) -> SandboxedEnvironment:
    return _Env(loader=loader, undefined=StrictUndefined, autoescape=False, trim_blocks=True,
                keep_trailing_newline=False)


def compile_condition(expression: str) -> Condition:
    """Compile an `if:` expression once; call the result with the context variables."""
    return environment().compile_expression(expression, undefined_to_none=False)


def eval_condition(compiled: Condition, context: dict[str, Any]) -> bool:
    """An `if:` that cannot be evaluated for this contact (a missing field, a type error) is false:
    one odd contact must not stop the evidence of the others from being recorded."""
    try:
        return bool(compiled(**context))
    except UndefinedError:
        return False
    except Exception as exc:
        log.warning("an `if:` failed, taken as false: %s: %s", type(exc).__name__, exc)
        return False


def frozen_sources(content_dir: Path) -> dict[str, str] | None:
    """The templates a running server froze for this folder, or None when it renders from disk."""
    return _frozen.get(str(content_dir))


def disk_environment(content_dir: Path) -> SandboxedEnvironment:
    """An environment on the files on disk, never a server's frozen copy: what validation looks at."""
    return new_environment(FileSystemLoader(str(content_dir)))
