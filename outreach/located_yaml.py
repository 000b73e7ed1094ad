"""YAML loading that remembers where each value stood, so that errors can say FILE:LINE."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from outreach.errors import Problem

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

    def get(self, loc: Loc) -> Any:
        node = self.data
        for part in loc:
            node = node[part]
        return node

    def problem(self, loc: Loc, message: str, warning: bool = False) -> Problem:
        return Problem(self.file, self.line(loc), message, warning)


def path_text(loc: Loc) -> str:
    """`playbooks.aware[0].after`: how a key path reads in a message."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}" if out else str(part)
    return out or "(top level)"


MAX_NODES = 200_000  # aliases can make a small file expand without end ("billion laughs")
MAX_DEPTH = 100  # mappings and lists inside one another: rules need a handful, a hostile file thousands
_MERGE = "tag:yaml.org,2002:merge"


class _Walker:
    """YAML nodes -> plain data, recording the line of every path; duplicate keys are problems."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.lines: dict[Loc, int] = {}
        self.problems: list[Problem] = []
        self.count = 0
        self.path: set[int] = set()  # nodes being walked: an alias to one of them is a cycle

    def walk(self, node: yaml.Node, loc: Loc) -> Any:
        self.count += 1
        if self.count > MAX_NODES or id(node) in self.path:
            raise yaml.constructor.ConstructorError(
                None, None, "an alias (*name) refers to itself or expands too far", node.start_mark)
        self.lines.setdefault(loc, node.start_mark.line + 1)
        if isinstance(node, yaml.ScalarNode):
            return _scalar(node)
        self.path.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                return [self.walk(item, (*loc, i)) for i, item in enumerate(node.value)]
            return self._mapping(node, loc)
        finally:
            self.path.discard(id(node))

    def _mapping(self, node: yaml.Node, loc: Loc) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        merged: list[tuple[int, dict[Any, Any]]] = []
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if key_node.tag == _MERGE:  # `<<: *defaults`: its keys, unless given here
                values = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
                merged += [(line, m) for m in (self.walk(v, (*loc, "<<")) for v in values) if isinstance(m, dict)]
                continue
            # keys stay strings: YAML 1.1 would read `on:` (a trigger's key) as True
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(self.walk(key_node, ("?",)))
            if key in out:  # PyYAML keeps the last silently; a marketer meant one of them
                self.problems.append(Problem(self.file, line, f"'{path_text((*loc, key))}' is given twice "
                                             f"(first on line {self.lines[(*loc, key)]})"))
            self.lines[(*loc, key)] = line
            out[key] = self.walk(value_node, (*loc, key))
        for line, mapping in merged:
            for key, value in mapping.items():
                if key not in out:
                    out[key] = value
                    self.lines[(*loc, key)] = line
        return out


class _Loader(yaml.SafeLoader):
    """The safe loader, with a bound on nesting: PyYAML composes recursively, and a file nested
    thousands of levels deep would otherwise end in a RecursionError instead of FILE:LINE."""

    depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(None, None, f"nested more than {MAX_DEPTH} levels deep",
                                                  self.peek_event().start_mark)  # type: ignore[no-untyped-call]
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def _scalar(node: yaml.Node) -> Any:
    constructor = yaml.SafeLoader(stream="")
    try:
        return constructor.construct_object(node, deep=True)
    except (ValueError, TypeError, OverflowError) as exc:  # `!!int abc` and friends
        kind = node.tag.rsplit(":", 1)[-1]
        raise yaml.constructor.ConstructorError(None, None, f"'{node.value}' is not a valid {kind} ({exc})",
                                                node.start_mark) from None
    finally:
        constructor.dispose()


def _syntax_message(exc: yaml.MarkedYAMLError) -> str:
    problem = exc.problem or str(exc)
    if "'\\t'" in problem:
        return "a tab character: YAML is indented with spaces only"
    context = ""
    if exc.context and exc.context_mark and exc.problem_mark and exc.context_mark.line != exc.problem_mark.line:
        context = f" ({exc.context} that starts on line {exc.context_mark.line + 1})"
    return f"YAML syntax error: {problem}{context}"


def load_text(text: str, file: str) -> tuple[Located | None, list[Problem]]:
    """Parse YAML text; a syntax error becomes a Problem instead of an exception. Data comes back
    with duplicate-key problems too (the last value kept) so that the rest can still be checked."""
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        return None, [Problem(file, line, _syntax_message(exc))]
    except yaml.YAMLError as exc:
        return None, [Problem(file, 1, f"YAML error: {exc}")]
    walker = _Walker(file)
    try:
        data = walker.walk(node, ()) if node is not None else None
    except yaml.YAMLError as exc:  # a value that does not construct, like a bad !!timestamp
        mark = getattr(exc, "problem_mark", None)
        return None, [Problem(file, mark.line + 1 if mark else 1, f"YAML error: {getattr(exc, 'problem', exc)}")]
    return Located(file, data, walker.lines), walker.problems


def load_file(path: Path, display: str | None = None) -> tuple[Located | None, list[Problem]]:
    name = display or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[:exc.start].count(b"\n") + 1
        return None, [Problem(name, line, "not UTF-8 text: save the file as UTF-8")]
    except OSError as exc:
        return None, [Problem(name, 1, f"cannot read: {exc.strerror}")]
    return load_text(text, name)


def did_you_mean(word: str, choices: list[str]) -> str:
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
        by_alias = {f.alias or n: f for n, f in ann.model_fields.items()}
        field = by_alias.get(str(part))
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


_KINDS = {"dict_type": "a mapping (key: value lines)", "model_type": "a mapping (key: value lines)",
          "model_attributes_type": "a mapping (key: value lines)", "list_type": "a list (- item lines, or [a, b])",
          "string_type": "text", "int_type": "a whole number", "int_parsing": "a whole number",
          "float_type": "a number", "float_parsing": "a number", "bool_type": "true or false",
          "bool_parsing": "true or false", "date_type": "a date (2026-12-24)", "date_from_datetime_parsing":
          "a date (2026-12-24)"}


def _message(err: Any, path: str) -> str:
    kind, ctx, value = err["type"], err.get("ctx") or {}, err.get("input")
    if kind in ("literal_error", "enum"):
        return f"{path}: '{value}' is not allowed (use {ctx.get('expected', '').replace(' or ', ', ')})"
    if kind in _KINDS:
        return f"{path} should be {_KINDS[kind]}, not {_show(value)}"
    if kind == "too_short":
        n = ctx.get("min_length", 1)
        return f"{path} needs at least {n} item{'s' if n != 1 else ''}"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        word = {"greater_than_equal": "at least", "greater_than": "more than",
                "less_than_equal": "at most", "less_than": "less than"}[kind]
        bound = next(iter(ctx.values()), "")
        return f"{path} must be {word} {bound}, not {_show(value)}"
    return f"{path}: {err['msg'].removeprefix('Value error, ')}"


def _show(value: Any) -> str:
    if value is None:
        return "empty"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"'{value}'"


def _clean_loc(data: Any, loc: tuple[Any, ...]) -> Loc:
    """The error's path through the data, without pydantic's tags for validators and union members
    (`function-after[...]`, `str`); a key that is not in the data (a missing one) is kept."""
    out: list[str | int] = []
    node = data
    for part in loc:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        elif isinstance(part, str) and (not isinstance(node, dict | list) or "[" in part
                                        or part.startswith("function")):
            continue
        else:
            node = None
        out.append(part)
    return tuple(out)


def validate(src: Located, model: type[M], context: dict[str, Any] | None = None,
             at: Loc = ()) -> tuple[M | None, list[Problem]]:
    """Validate the data at `at` against a pydantic model; every error becomes a FILE:LINE Problem."""
    data = src.get(at)
    try:
        return model.model_validate(data if data is not None or at else {}, context=context), []
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            rel = _clean_loc(data, err["loc"])
            loc = (*at, *rel)
            path = path_text(loc)
            if err["type"] == "extra_forbidden" and rel:
                hint = did_you_mean(str(rel[-1]), _allowed_keys(model, rel[:-1]))
                problems.append(src.problem(loc, f"unknown key '{path}'{hint}"))
            elif err["type"] == "missing":
                problems.append(src.problem(loc[:-1], f"'{path}' is required"))
            else:
                problems.append(src.problem(loc, _message(err, path)))
        return None, sorted(set(problems), key=lambda p: p.line)
