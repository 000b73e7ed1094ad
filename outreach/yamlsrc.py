"""YAML loading that remembers where each value stood, so that errors can say FILE:LINE."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from .errors import Problem

Loc = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)


@dataclass
class Located:
    """Plain data from one YAML file and the 1-based line of every path in it."""

    file: str
    data: Any
    lines: dict[Loc, int] = field(default_factory=dict)

    def line(self, loc: Loc) -> int:
        """The line of `loc`, or of its nearest ancestor that has one."""
        loc = tuple(loc)
        while loc:
            if loc in self.lines:
                return self.lines[loc]
            loc = loc[:-1]
        return self.lines.get((), 1)

    def problem(self, loc: Loc, message: str, warning: bool = False) -> Problem:
        return Problem(self.file, self.line(loc), message, warning)


def _walk(node: yaml.Node, loc: Loc, lines: dict[Loc, int]) -> Any:
    lines.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            # keys stay strings: YAML 1.1 would read `on:` (a trigger's key) as True
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(_walk(key_node, loc, {}))
            lines[(*loc, key)] = key_node.start_mark.line + 1
            out[key] = _walk(value_node, (*loc, key), lines)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_walk(item, (*loc, i), lines) for i, item in enumerate(node.value)]
    return _scalar(node)


def _scalar(node: yaml.Node) -> Any:
    constructor = yaml.SafeLoader(stream="")
    try:
        return constructor.construct_object(node, deep=True)
    finally:
        constructor.dispose()


def load_text(text: str, file: str) -> tuple[Located | None, list[Problem]]:
    """Parse YAML text; a syntax error becomes a Problem instead of an exception."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        return None, [Problem(file, line, f"YAML syntax error: {exc.problem or exc}")]
    except yaml.YAMLError as exc:
        return None, [Problem(file, 1, f"YAML error: {exc}")]
    lines: dict[Loc, int] = {}
    data = _walk(node, (), lines) if node is not None else None
    return Located(file, data, lines), []


def load_file(path: Path, display: str | None = None) -> tuple[Located | None, list[Problem]]:
    name = display or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return None, [Problem(name, 1, "not UTF-8 text")]
    except OSError as exc:
        return None, [Problem(name, 1, f"cannot read: {exc.strerror}")]
    return load_text(text, name)


def _did_you_mean(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _allowed_keys(model: type[BaseModel], loc: Loc) -> list[str]:
    """Field names of the model reached by `loc`, for a "did you mean" on unknown keys."""
    ann: Any = model
    for part in loc:
        ann = _step(ann, part)
    ann = _step(ann, None) if not (isinstance(ann, type) and issubclass(ann, BaseModel)) else ann
    fields = getattr(ann, "model_fields", None)
    return [f.alias or name for name, f in fields.items()] if fields else []


def _step(ann: Any, part: str | int | None) -> Any:
    """The annotation one level below `ann` at key `part` (a field, a dict value, a list item)."""
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        field = ann.model_fields.get(str(part))
        return field.annotation if field else None
    origin, args = get_origin(ann), get_args(ann)
    if origin is dict and len(args) == 2:
        return args[1]
    if origin is list and args:
        return args[0]
    for arg in args:  # Optional / Union / Annotated: the first model-bearing member
        inner = _step(arg, part) if part is not None else arg
        if inner is not None and inner is not type(None):
            return inner if part is not None else _step(inner, None) if not (
                isinstance(inner, type) and issubclass(inner, BaseModel)) else inner
    return None


def validate(src: Located, model: type[M], context: dict[str, Any] | None = None) -> tuple[M | None, list[Problem]]:
    """Validate located data against a pydantic model; every error becomes a FILE:LINE Problem."""
    try:
        return model.model_validate(src.data if src.data is not None else {}, context=context), []
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and ("[" in p or p.startswith("function"))))
            path = ".".join(str(p) for p in loc) or "(top level)"
            if err["type"] == "extra_forbidden":
                key = str(loc[-1])
                hint = _did_you_mean(key, _allowed_keys(model, loc[:-1]))
                problems.append(src.problem(loc, f"unknown key '{path}'{hint}"))
            elif err["type"] == "missing":
                problems.append(src.problem(loc[:-1], f"'{path}' is required"))
            else:
                msg = err["msg"].removeprefix("Value error, ")
                problems.append(src.problem(loc, f"{path}: {msg}"))
        return None, sorted(set(problems), key=lambda p: p.line)
