"""Jinja2 in its sandbox: the buyers' templates (content/<key>.<channel>.j2) and `if:` conditions.

A variable that is missing or empty is an error for that touch, never a blank in front of a buyer;
`{{ x | default('...') }}` is how a template says otherwise."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import (
    BaseLoader,
    Environment,
    FileSystemLoader,
    StrictUndefined,
    TemplateNotFound,
    TemplateSyntaxError,
    UndefinedError,
)
from jinja2.sandbox import SandboxedEnvironment

from outreach.errors import Problem, RenderError
from outreach.located_yaml import did_you_mean

if TYPE_CHECKING:
    from outreach.ruleset import Ruleset

log = logging.getLogger(__name__)
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
    return _new_env(_Loader(content_dir) if content_dir else None)


def _new_env(loader: BaseLoader | None) -> SandboxedEnvironment:
    return _Env(loader=loader, undefined=StrictUndefined, autoescape=False, trim_blocks=True,
                keep_trailing_newline=False)


def compile_condition(expression: str) -> Any:
    """Compile an `if:` expression once; call the result with the context variables."""
    return environment().compile_expression(expression, undefined_to_none=False)


def eval_condition(compiled: Any, context: dict[str, Any]) -> bool:
    """An `if:` that cannot be evaluated for this contact (a missing field, a type error) is false:
    one odd contact must not stop the evidence of the others from being recorded."""
    try:
        return bool(compiled(**context))
    except UndefinedError:
        return False
    except Exception as exc:
        log.warning("an `if:` failed, taken as false: %s: %s", type(exc).__name__, exc)
        return False


@dataclass
class Rendered:
    subject: str | None
    text: str
    html: str | None = None


def template_name(key: str, channel: str) -> str:
    return f"{key}.{channel}.j2"


def render(content_dir: Path, key: str, channel: str, context: dict[str, Any],
           env: SandboxedEnvironment | None = None) -> Rendered:
    """Render content `key` for `channel`; RenderError says which variable or template failed."""
    env = env or environment(str(content_dir))
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
    """The channels content `key` has a template for (the frozen ones, when a server froze them)."""
    frozen = _frozen.get(str(content_dir))
    if frozen is not None:
        return {ch for ch in REQUIRED_BLOCKS if template_name(key, ch) in frozen}
    return _on_disk(content_dir, key)


def _on_disk(content_dir: Path, key: str) -> set[str]:
    return {ch for ch in REQUIRED_BLOCKS if (content_dir / template_name(key, ch)).is_file()}


OPTIONAL_BLOCKS = {"email": ("html",), "meeting": (), "sms": ()}


def _templates(content_dir: Path) -> list[tuple[Path, str, str | None]]:
    """(path, display name, channel or None for a partial) of every file under content/."""
    out = []
    for path in sorted(content_dir.rglob("*")):
        rel = path.relative_to(content_dir).as_posix()
        if path.is_file() and not any(part.startswith(".") for part in rel.split("/")):
            parts = path.name.split(".")
            out.append((path, f"content/{rel}", parts[-2] if len(parts) >= 3 else None))
    return out


def check_templates(content_dir: Path) -> list[Problem]:
    """Every template is named <key>.<channel>.j2, compiles, and has the blocks its channel needs.
    Files whose name starts with `_` are partials for {% include %} and {% extends %}: compiled only."""
    from jinja2 import nodes

    problems: list[Problem] = []
    env = environment(str(content_dir))
    for path, display, channel in _templates(content_dir):
        rel = display.removeprefix("content/")
        if not path.name.endswith(".j2"):
            problems.append(Problem(display, 1, "not a template (templates end in .j2): ignored", warning=True))
            continue
        partial = path.name.startswith("_")
        if not partial and channel not in REQUIRED_BLOCKS:
            hint = did_you_mean(channel or "", list(REQUIRED_BLOCKS)) if channel else ""
            problems.append(Problem(display, 1, f"name templates <key>.<channel>.j2 with channel email, sms or "
                                    f"meeting, like aware/welcome.email.j2{hint} (or start a partial's name "
                                    "with _)"))
            continue
        try:
            source = path.read_text(encoding="utf-8")
            ast = env.parse(source, name=rel)
            env.compile(ast, name=rel, filename=str(path))  # unknown filters and tests show up here
        except UnicodeDecodeError as exc:
            line = path.read_bytes()[:exc.start].count(b"\n") + 1
            problems.append(Problem(display, line, "not UTF-8 text: save the file as UTF-8"))
            continue
        except TemplateSyntaxError as exc:
            problems.append(Problem(display, exc.lineno or 1, f"template syntax error: {exc.message}"))
            continue
        for ref in (*ast.find_all(nodes.Include), *ast.find_all(nodes.Extends), *ast.find_all(nodes.Import),
                    *ast.find_all(nodes.FromImport)):
            name = getattr(getattr(ref, "template", None), "value", None)
            if isinstance(name, str) and not (content_dir / name).is_file():
                problems.append(Problem(display, ref.lineno, f"'{name}' does not exist in content/"))
        if partial or channel is None or next(ast.find_all(nodes.Extends), None) is not None:
            continue  # a child template's blocks merge with its parent's
        blocks = {b.name: b.lineno for b in ast.find_all(nodes.Block)}
        known = [*REQUIRED_BLOCKS[channel], *OPTIONAL_BLOCKS[channel]]
        if channel != "sms":
            for name, line in blocks.items():
                if name not in known:
                    problems.append(Problem(display, line, f"{_a(channel)} {channel} template has no block '{name}'"
                                            f"{did_you_mean(name, known)} (its blocks: {', '.join(known)})"))
        for needed in REQUIRED_BLOCKS[channel]:
            if needed not in blocks:
                problems.append(Problem(display, 1, f"{_a(channel)} {channel} template needs a "
                                        f"{{% block {needed} %}}...{{% endblock %}}"))
    return problems


def _a(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def check_rule_content(rs: Ruleset, content_dir: Path) -> list[Problem]:
    """Each step and trigger has a template for at least one channel it may use."""
    problems = check_templates(content_dir) if content_dir.is_dir() else [
        Problem("content/", 1, "no content/ folder")]
    uses: list[tuple[tuple[str, ...], str, str, str, str | None]] = [
        (("step", stage, st.id), f"playbooks.{stage}.{st.id}", st.content, st.interaction, st.channel)
        for stage, steps in rs.playbooks.items() for st in steps]
    uses += [(("trigger", tr.id), f"triggers.{tr.id}", tr.content, tr.interaction, tr.channel)
             for tr in rs.triggers]
    for key, name, content, interaction, channel in uses:
        inter = rs.interactions.get(interaction)
        if inter is None or (channel and channel not in inter.channels):
            continue  # reported by the rules' cross-check
        allowed = [channel] if channel else list(inter.channels)
        have = _on_disk(content_dir, content)  # validation looks at the disk, never at a frozen copy
        file, line = rs.where.get((*key, "content"), ("rules/", 1))
        if not have & set(allowed):
            wanted = ", ".join(f"content/{template_name(content, c)}" for c in allowed)
            problems.append(Problem(file, line, f"{name}: content '{content}' has no template for any channel "
                                    f"it may use (add one of: {wanted})"))
        else:
            missing = [c for c in allowed if c not in have]
            if missing:
                problems.append(Problem(file, line, f"{name}: content '{content}' has no template for "
                                        f"{', '.join(missing)}: that channel will not be picked for it",
                                        warning=True))
    return problems


def check_samples(content_dir: Path, context: dict[str, Any]) -> list[Problem]:
    """Render every template for a sample contact: a variable it lacks is worth a warning (a contact
    without it fails that touch), and an SMS past 2 segments costs more and may arrive split."""
    problems: list[Problem] = []
    if not content_dir.is_dir():
        return problems
    env = _new_env(FileSystemLoader(str(content_dir)))  # the files on disk, never a server's frozen copy
    for path, display, channel in _templates(content_dir):
        if channel not in REQUIRED_BLOCKS or path.name.startswith("_") or not path.name.endswith(".j2"):
            continue
        key = display.removeprefix("content/").removesuffix(f".{channel}.j2")
        try:
            rendered = render(content_dir, key, channel, context, env)
        except RenderError as exc:
            if isinstance(exc.__cause__, UndefinedError):
                problems.append(Problem(display, _template_line(exc.__cause__, path, content_dir, env),
                                        f"for the sample contact, {exc.__cause__.message}: a contact without "
                                        "it fails this touch (or write `| default('...')`)", warning=True))
            continue
        if channel == "sms":
            segments = sms_segments(rendered.text)
            if segments > 2:
                problems.append(Problem(display, 1, f"renders to {segments} segments for the sample contact "
                                        f"({len(rendered.text)} characters): over 2 costs more and may arrive "
                                        "split", warning=True))
    return problems


def _template_line(exc: BaseException, path: Path, content_dir: Path, env: SandboxedEnvironment) -> int:
    """The template line an error was raised on, from the traceback's template frames."""
    frame = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == str(path):
            frame = tb
        tb = tb.tb_next
    if frame is None:
        return 1
    if "__jinja_exception__" in frame.tb_frame.f_globals:  # Jinja rewrote it: already a template line
        return frame.tb_lineno
    template = env.get_template(path.relative_to(content_dir).as_posix())
    return template.get_corresponding_lineno(frame.tb_lineno)


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


def sample_context(settings: Any, stage: str = "interested") -> dict[str, Any]:
    """What templates see for a made-up buyer with long-ish values, for `check`: the real contacts
    are in the database, which `check` does not open."""
    from datetime import UTC, datetime

    from outreach.messages import template_context
    from outreach.models import Contact, Touch

    contact = Contact(
        id=123456, email="alexandra.vandenberghe@northwind-analytics.example", phone="+14155550123",
        first_name="Alexandra", last_name="Vandenberghe-Okonkwo", company="Northwind Analytical Engines International",
        title="Vice President of Finance Operations", timezone="America/New_York",
        owner="christopher.montgomery@example.com", external_id="CRM-0012345",
        attributes={"industry": "financial services", "country": "US"}, stage=stage)
    now = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    touch = Touch(id=987654, contact_id=123456, dedupe_key="sample", stage=stage, rule=f"playbook:{stage}",
                  step="sample", interaction="routine", content="sample", channel="sms", due_at=now)
    return template_context(settings, touch, contact)
