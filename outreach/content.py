"""Jinja2 in its sandbox: the buyers' templates (content/<key>.<channel>.j2) and `if:` conditions.

A variable that is missing or empty is an error for that touch, never a blank in front of a buyer;
`{{ x | default('...') }}` is how a template says otherwise."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import FileSystemLoader, StrictUndefined, TemplateSyntaxError, UndefinedError
from jinja2.sandbox import SandboxedEnvironment

from .errors import Problem, RenderError

if TYPE_CHECKING:
    from .ruleset import Ruleset

REQUIRED_BLOCKS = {"email": ("subject", "text"), "meeting": ("title", "description"), "sms": ()}


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


@lru_cache(maxsize=8)
def environment(content_dir: str | None = None) -> SandboxedEnvironment:
    loader = FileSystemLoader(content_dir) if content_dir else None
    env = _Env(loader=loader, undefined=StrictUndefined, autoescape=False, trim_blocks=True,
               keep_trailing_newline=False)
    return env


def compile_condition(expression: str) -> Any:
    """Compile an `if:` expression once; call the result with the context variables."""
    return environment().compile_expression(expression, undefined_to_none=False)


def eval_condition(compiled: Any, context: dict[str, Any]) -> bool:
    try:
        return bool(compiled(**context))
    except UndefinedError:
        return False


@dataclass
class Rendered:
    subject: str | None
    text: str
    html: str | None = None


def template_name(key: str, channel: str) -> str:
    return f"{key}.{channel}.j2"


def render(content_dir: Path, key: str, channel: str, context: dict[str, Any]) -> Rendered:
    """Render content `key` for `channel`; RenderError says which variable or template failed."""
    env = environment(str(content_dir))
    name = template_name(key, channel)
    try:
        template = env.get_template(name)
        ctx = template.new_context({k: _view(k, v) for k, v in context.items()})

        def block(b: str) -> str | None:
            fn = template.blocks.get(b)
            return "".join(fn(ctx)).strip() if fn else None

        if channel == "sms":
            return Rendered(None, template.render(**ctx.get_all()).strip())
        if channel == "meeting":
            return Rendered(block("title"), block("description") or "")
        return Rendered(block("subject"), block("text") or "", block("html"))
    except UndefinedError as exc:
        raise RenderError(f"missing variable in content/{name}: {exc.message}") from exc
    except TemplateSyntaxError as exc:
        raise RenderError(f"content/{name}:{exc.lineno}: {exc.message}") from exc
    except OSError as exc:
        raise RenderError(f"content/{name} not found") from exc
    except Exception as exc:  # the sandbox refused something, or a filter failed
        raise RenderError(f"content/{name}: {type(exc).__name__}: {exc}") from exc


def _view(name: str, value: Any) -> Any:
    return View(name, value) if isinstance(value, dict) else value


def available_channels(content_dir: Path, key: str) -> set[str]:
    return {ch for ch in REQUIRED_BLOCKS if (content_dir / template_name(key, ch)).is_file()}


def check_templates(content_dir: Path) -> list[Problem]:
    """Every template parses and has the blocks its channel needs."""
    problems: list[Problem] = []
    env = environment(str(content_dir))
    for path in sorted(content_dir.rglob("*.j2")):
        rel = path.relative_to(content_dir).as_posix()
        display = f"content/{rel}"
        parts = path.name.split(".")
        if len(parts) < 3 or parts[-2] not in REQUIRED_BLOCKS:
            problems.append(Problem(display, 1, "name templates <key>.<channel>.j2 with channel "
                                    "email, sms or meeting"))
            continue
        try:
            source = path.read_text(encoding="utf-8")
            ast = env.parse(source, name=rel)
        except UnicodeDecodeError:
            problems.append(Problem(display, 1, "not UTF-8 text"))
            continue
        except TemplateSyntaxError as exc:
            problems.append(Problem(display, exc.lineno or 1, f"template syntax error: {exc.message}"))
            continue
        from jinja2 import nodes

        blocks = {b.name for b in ast.find_all(nodes.Block)}
        for needed in REQUIRED_BLOCKS[parts[-2]]:
            if needed not in blocks:
                problems.append(Problem(display, 1, f"a {parts[-2]} template needs a "
                                        f"{{% block {needed} %}}...{{% endblock %}}"))
    return problems


def check_rule_content(rs: Ruleset, content_dir: Path) -> list[Problem]:
    """Each step and trigger has a template for at least one channel it may use."""
    problems = check_templates(content_dir) if content_dir.is_dir() else [
        Problem("content/", 1, "no content/ folder")]
    uses: list[tuple[tuple[str, ...], str, str, str | None]] = [
        (("step", stage, st.id), st.content, st.interaction, st.channel)
            for stage, steps in rs.playbooks.items() for st in steps]
    uses += [(("trigger", tr.id), tr.content, tr.interaction, tr.channel) for tr in rs.triggers]
    for key, content, interaction, channel in uses:
        inter = rs.interactions.get(interaction)
        if inter is None:
            continue
        allowed = [channel] if channel else list(inter.channels)
        have = available_channels(content_dir, content)
        file, line = rs.where.get((*key, "content"), ("rules/", 1))
        if not have & set(allowed):
            wanted = ", ".join(f"content/{template_name(content, c)}" for c in allowed)
            problems.append(Problem(file, line, f"{'.'.join(key[1:])}: content '{content}' has no "
                                    f"template for any channel it may use (add one of: {wanted})"))
        else:
            missing = [c for c in allowed if c not in have]
            if missing:
                problems.append(Problem(file, line, f"{'.'.join(key[1:])}: content '{content}' has no "
                                        f"template for {', '.join(missing)}: that channel will not be "
                                        "picked for it", warning=True))
    return problems


GSM7 = set("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZ"
           "ÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
GSM7_EXT = set("^{}\\[~]|€\f")


def sms_segments(text: str) -> int:
    """How many SMS segments a body takes (GSM-7: 160/153 characters; otherwise UCS-2: 70/67)."""
    if all(c in GSM7 or c in GSM7_EXT for c in text):
        units = sum(2 if c in GSM7_EXT else 1 for c in text)
        return 1 if units <= 160 else -(-units // 153)
    units = sum(2 if ord(c) > 0xFFFF else 1 for c in text)
    return 1 if units <= 70 else -(-units // 67)
