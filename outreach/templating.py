"""Jinja2 in its sandbox, shared by the buyers' templates and the rules' `if:` conditions.

A variable that is missing or empty is an error, never a blank in front of a buyer; `{{ x | default('...') }}`
is how a template says otherwise. This module is a leaf: it knows no rules, contacts or database."""

from __future__ import annotations

import contextvars
import ctypes
import logging
import operator
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import BaseLoader, Environment, FileSystemLoader, StrictUndefined, TemplateNotFound, UndefinedError
from jinja2.sandbox import MAX_RANGE, SandboxedEnvironment

from outreach.errors import RenderError

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


# A template cannot run away: rendering stops at a deadline and at an output size (both per render),
# and the sandbox's arithmetic may not build huge strings, lists or numbers on the way. The deadline
# is CPU time of the rendering thread: a loaded machine or a slow disk does not fail a sound template.
RENDER_SECONDS = 2.0
WALL_FACTOR = 15  # ...but a render waiting this many times longer on the wall clock is stopped too
MAX_OUTPUT = 1_000_000  # characters of one rendered part
_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("outreach_render_deadline", default=None)


class RenderTimeout(RenderError):
    def __init__(self, message: str = "") -> None:
        super().__init__(message or f"the template took too long to render (over {RENDER_SECONDS:g} s): "
                         "look for a loop that never ends")


def _cpu_clock(ident: int) -> int | None:
    """The CPU-time clock of thread `ident`, where the platform has one."""
    try:
        return time.pthread_getcpuclockid(ident)
    except (AttributeError, OSError):
        return None


@dataclass
class _Watched:
    clock: int | None
    cpu_deadline: float
    wall_deadline: float

    def overdue(self, grace: float) -> bool:
        if time.monotonic() > self.wall_deadline:
            return True
        if self.clock is None:
            return False
        try:
            return time.clock_gettime(self.clock) > self.cpu_deadline + grace
        except OSError:  # the thread ended between the check and now
            return False


class _Watchdog:
    """The backstop behind the checks in the sandbox (a loop with an empty body calls nothing): one
    thread that raises RenderTimeout in a thread still rendering past its deadline."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.watched: dict[int, _Watched] = {}
        self.thread: threading.Thread | None = None

    def watch(self, ident: int, watched: _Watched) -> None:
        with self.lock:
            self.watched[ident] = watched
            if self.thread is None:
                self.thread = threading.Thread(target=self._run, name="outreach-render-watchdog", daemon=True)
                self.thread.start()

    def unwatch(self, ident: int) -> None:
        with self.lock:
            self.watched.pop(ident, None)

    def _run(self) -> None:
        while True:
            time.sleep(0.05)
            with self.lock:  # a thread is only interrupted while it is registered, i.e. rendering
                for ident in [i for i, w in self.watched.items() if w.overdue(0.2)]:
                    del self.watched[ident]
                    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), ctypes.py_object(RenderTimeout))


_watchdog = _Watchdog()


@contextmanager
def limits(seconds: float = RENDER_SECONDS) -> Iterator[None]:
    """Render within `seconds` of this thread's CPU time (nested calls keep the earlier deadline)."""
    current = _deadline.get()
    if current is not None:
        yield
        return
    deadline = time.thread_time() + seconds
    token = _deadline.set(deadline)
    ident = threading.get_ident()
    _watchdog.watch(ident, _Watched(_cpu_clock(ident), deadline, time.monotonic() + seconds * WALL_FACTOR))
    try:
        yield
    finally:
        _watchdog.unwatch(ident)
        _deadline.reset(token)


def _tick() -> None:
    deadline = _deadline.get()
    if deadline is not None and time.thread_time() > deadline:
        raise RenderTimeout()


def bounded_join(parts: Iterable[str], limit: int = MAX_OUTPUT) -> str:
    """Join a template's output, stopping at the deadline or past `limit` characters."""
    out: list[str] = []
    size = 0
    for part in parts:
        _tick()
        size += len(part)
        if size > limit:
            raise RenderError(f"the template renders to more than {limit:,} characters")
        out.append(part)
    return "".join(out)


class _Range:
    """range() in templates: at most MAX_RANGE items, and a loop over it checks the deadline."""

    def __init__(self, *args: int) -> None:
        self.rng = range(*args)
        if len(self.rng) > MAX_RANGE:
            raise RenderError(f"range() is limited to {MAX_RANGE:,} items in templates")

    def __iter__(self) -> Iterator[int]:
        for i in self.rng:
            _tick()
            yield i

    def __len__(self) -> int:
        return len(self.rng)

    def __contains__(self, item: object) -> bool:
        return item in self.rng

    def __getitem__(self, index: int) -> int:
        return self.rng[index]


_MAX_BITS = 100_000  # numbers in templates: far past any price or count, far below a slow one


def _size(value: Any) -> int:
    return len(value) if isinstance(value, (str, bytes, list, tuple)) else 1


class _Env(SandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**", "+"})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.globals["range"] = _Range
        self.concat = bounded_join  # type: ignore[method-assign]
        self._html: _Env | None = None

    def html(self) -> SandboxedEnvironment:
        """The same templates with autoescape on, for an email's HTML part (a fresh cache: a template
        compiled without escaping must never be reused for HTML)."""
        if self._html is None:
            self._html = self.overlay(autoescape=True, cache_size=100)
        assert self._html is not None
        return self._html

    def call_binop(self, context: Any, operator_: str, left: Any, right: Any) -> Any:
        _tick()
        if operator_ == "**":
            if (isinstance(right, (int, float)) and abs(right) > 100) or (
                    isinstance(left, int) and isinstance(right, int) and left.bit_length() * right > _MAX_BITS):
                raise RenderError("a power that large is not allowed in templates")
            return operator.pow(left, right)
        if operator_ == "*":
            if isinstance(left, int) and isinstance(right, int):
                if left.bit_length() + right.bit_length() > _MAX_BITS:
                    raise RenderError("a number that large is not allowed in templates")
            elif (isinstance(right, int) and _size(left) * abs(right) > MAX_OUTPUT) or (
                    isinstance(left, int) and _size(right) * abs(left) > MAX_OUTPUT):
                raise RenderError(f"a template value may not grow past {MAX_OUTPUT:,} items")
            return operator.mul(left, right)
        result = operator.add(left, right)
        if _size(result) > MAX_OUTPUT:
            raise RenderError(f"a template value may not grow past {MAX_OUTPUT:,} items")
        return result

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _tick()
        return super().call(__context, __obj, *args, **kwargs)

    def getattr(self, obj: Any, attribute: str) -> Any:
        _tick()
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


class ConfinedLoader(FileSystemLoader):
    """Templates from one folder only: a name, or a symlink, that resolves outside it is not found
    (a symlink to the project's `.outreach-secret` must never reach a buyer's email)."""

    def __init__(self, content_dir: str) -> None:
        super().__init__(content_dir)
        self.root = os.path.realpath(content_dir)

    def get_source(self, environment: Environment, template: str) -> tuple[str, str, Callable[[], bool]]:
        if not inside(Path(self.root), Path(self.root) / template):
            raise TemplateNotFound(f"{template} (it resolves outside content/)")
        return super().get_source(environment, template)


def inside(root: Path, path: Path) -> bool:
    """Whether `path`, symlinks resolved, lies inside the folder `root`."""
    try:
        return Path(os.path.realpath(path)).is_relative_to(os.path.realpath(root))
    except (OSError, ValueError):
        return False


class _Loader(BaseLoader):
    def __init__(self, content_dir: str) -> None:
        self.content_dir = content_dir
        self.disk = ConfinedLoader(content_dir)

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
        if not inside(content_dir, path):
            continue  # `check` refuses it; a server never renders it
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


def html_environment(env: SandboxedEnvironment) -> SandboxedEnvironment:
    """`env` with autoescape on: what renders an email's HTML part."""
    return env.html() if isinstance(env, _Env) else env.overlay(autoescape=True, cache_size=0)


def compile_condition(expression: str) -> Condition:
    """Compile an `if:` expression once; call the result with the context variables."""
    return environment().compile_expression(expression, undefined_to_none=False)


def eval_condition(compiled: Condition, context: dict[str, Any]) -> bool:
    """An `if:` that cannot be evaluated for this contact (a missing field, a type error) is false:
    one odd contact must not stop the evidence of the others from being recorded."""
    try:
        with limits():
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
    return new_environment(ConfinedLoader(str(content_dir)))
