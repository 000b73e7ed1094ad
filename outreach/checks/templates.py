"""Checks of content/: every template well named, compiling, with its channel's blocks; every rule's content
present; every template rendered for a sample contact."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import TemplateSyntaxError, UndefinedError, nodes
from jinja2.sandbox import SandboxedEnvironment

from outreach.content import (
    OPTIONAL_BLOCKS,
    PLAIN_TEXT,
    REQUIRED_BLOCKS,
    on_disk,
    render,
    sms_segments,
    template_files,
    template_name,
)
from outreach.errors import Problem, RenderError
from outreach.kinds import TASK_CHANNELS, Channel
from outreach.located_yaml import did_you_mean
from outreach.ruleset import Ruleset
from outreach.templating import disk_environment, environment, inside


def check_templates(content_dir: Path) -> list[Problem]:
    """Every template is named <key>.<channel>.j2, compiles, and has the blocks its channel needs.
    Files whose name starts with `_` are partials for {% include %} and {% extends %}: compiled only."""
    problems: list[Problem] = []
    env = environment(str(content_dir))
    for path, display, channel in template_files(content_dir):
        rel = display.removeprefix("content/")
        if not inside(content_dir, path):
            problems.append(Problem(display, 1, "resolves outside content/ (a symlink?): templates are read "
                                    "from content/ only, so it is refused; copy the file in instead"))
            continue
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
            if isinstance(name, str) and (content_dir / name).is_file() and not inside(content_dir, content_dir / name):
                problems.append(Problem(display, ref.lineno, f"'{name}' resolves outside content/: refused"))
            elif isinstance(name, str) and not (content_dir / name).is_file():
                problems.append(Problem(display, ref.lineno, f"'{name}' does not exist in content/"))
        if partial or channel is None or next(ast.find_all(nodes.Extends), None) is not None:
            continue  # a child template's blocks merge with its parent's
        blocks = {b.name: b.lineno for b in ast.find_all(nodes.Block)}
        known = [*REQUIRED_BLOCKS[channel], *OPTIONAL_BLOCKS[channel]]
        if channel not in PLAIN_TEXT:
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
        (("step", stage, st.id), f"playbooks.{stage}.{st.id}", content, st.interaction, st.channel)
        for stage, steps in rs.playbooks.items() for st in steps for content in st.contents]
    uses += [(("trigger", tr.id), f"triggers.{tr.id}", tr.content, tr.interaction, tr.channel)
             for tr in rs.triggers]
    for key, name, content, interaction, channel in uses:
        inter = rs.interactions.get(interaction)
        if inter is None or (channel and channel not in inter.channels and channel not in TASK_CHANNELS):
            continue  # reported by the rules' cross-check
        allowed = [channel] if channel else list(inter.channels)
        have = on_disk(content_dir, content)  # validation looks at the disk, never at a frozen copy
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
    env = disk_environment(content_dir)
    for path, display, channel in template_files(content_dir):
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
        if channel == Channel.SMS:
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


