"""The buyers' templates (content/<key>.<channel>.j2): which exist, and rendering one for a touch."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import TemplateSyntaxError, UndefinedError
from jinja2.sandbox import SandboxedEnvironment

from outreach.errors import RenderError
from outreach.kinds import Channel
from outreach.templating import (
    View,
    bounded_join,
    environment,
    frozen_sources,
    html_environment,
    inside,
    limits,
)

# a task's template (content/<key>.call.j2, .social.j2) is the rep's script or message: plain text like an SMS
REQUIRED_BLOCKS = {"email": ("subject", "text"), "meeting": ("title", "description"), "sms": (), "call": (),
                   "social": ()}
OPTIONAL_BLOCKS = {"email": ("html",), "meeting": (), "sms": (), "call": (), "social": ()}
PLAIN_TEXT = (Channel.SMS, Channel.CALL, Channel.SOCIAL)


@dataclass
class Rendered:
    subject: str | None
    text: str
    html: str | None = None


def template_name(key: str, channel: str) -> str:
    return f"{key}.{channel}.j2"


def render(content_dir: Path, key: str, channel: str, context: dict[str, Any],
           env: SandboxedEnvironment | None = None) -> Rendered:
    """Render content `key` for `channel`; RenderError says which variable or template failed. Within
    the time and size limits of templating; an email's HTML part with contact data escaped."""
    env = env or environment(str(content_dir))
    name = template_name(key, channel)
    variables = {k: _view(k, v) for k, v in context.items()}
    try:
        with limits():
            template = env.get_template(name)
            ctx = template.new_context(variables)

            def block(b: str) -> str | None:
                fn = template.blocks.get(b)
                return bounded_join(fn(ctx)).strip() if fn else None

            if channel in PLAIN_TEXT:
                return Rendered(None, template.render(**ctx.get_all()).strip())
            if channel == Channel.MEETING:
                return Rendered(block("title"), block("description") or "")
            html = None
            if "html" in template.blocks:
                html_template = html_environment(env).get_template(name)
                fn = html_template.blocks["html"]
                html = bounded_join(fn(html_template.new_context(variables))).strip()
            return Rendered(block("subject"), block("text") or "", html)
    except RenderError as exc:  # over a limit of the sandbox
        raise RenderError(f"content/{name}: {exc}") from exc
    except UndefinedError as exc:
        raise RenderError(f"missing variable in content/{name}: {exc.message}") from exc
    except TemplateSyntaxError as exc:
        raise RenderError(f"content/{name}:{exc.lineno}: {exc.message}") from exc
    except OSError as exc:  # TemplateNotFound names the template (an include's, perhaps)
        raise RenderError(f"content/{name}: template '{exc}' not found in content/") from exc
    except Exception as exc:  # the sandbox refused something, or a filter failed
        raise RenderError(f"content/{name}: {type(exc).__name__}: {exc}") from exc


def render_signature(content_dir: Path, names: list[str], context: dict[str, Any]) -> Rendered | None:
    """The first of `names` (partials under content/, like signatures/_jane-example-com.j2) that exists,
    rendered: its `text` block, and its `html` block escaped as an email's HTML part is. None when none
    exists; RenderError as for any template."""
    name = next((n for n in names if (content_dir / n).is_file() and inside(content_dir, content_dir / n)), None)
    if name is None:
        return None
    env = environment(str(content_dir))
    variables = {k: _view(k, v) for k, v in context.items()}
    try:
        with limits():
            template = env.get_template(name)
            text_block = template.blocks.get("text")
            text = bounded_join(text_block(template.new_context(variables))).strip() if text_block else \
                template.render(**variables).strip()
            html = None
            html_template = html_environment(env).get_template(name)
            if "html" in html_template.blocks:
                html = bounded_join(html_template.blocks["html"](html_template.new_context(variables))).strip()
            return Rendered(None, text, html)
    except RenderError as exc:
        raise RenderError(f"content/{name}: {exc}") from exc
    except Exception as exc:  # a missing variable, a syntax error, the sandbox's refusal
        raise RenderError(f"content/{name}: {type(exc).__name__}: {exc}") from exc


def _view(name: str, value: Any) -> Any:
    return View(name, value) if isinstance(value, dict) else value


def available_channels(content_dir: Path, key: str) -> set[str]:
    """The channels content `key` has a template for (the frozen ones, when a server froze them)."""
    frozen = frozen_sources(content_dir)
    if frozen is not None:
        return {ch for ch in REQUIRED_BLOCKS if template_name(key, ch) in frozen}
    return on_disk(content_dir, key)


def on_disk(content_dir: Path, key: str) -> set[str]:
    return {ch for ch in REQUIRED_BLOCKS if (content_dir / template_name(key, ch)).is_file()}


def template_files(content_dir: Path) -> list[tuple[Path, str, str | None]]:
    """(path, display name, channel or None for a partial) of every file under content/."""
    out = []
    for path in sorted(content_dir.rglob("*")):
        rel = path.relative_to(content_dir).as_posix()
        if path.is_file() and not any(part.startswith(".") for part in rel.split("/")):
            parts = path.name.split(".")
            out.append((path, f"content/{rel}", parts[-2] if len(parts) >= 3 else None))
    return out


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


