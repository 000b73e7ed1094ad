"""The arrows docs/ARCHITECTURE.md allows, checked on the code's own imports: no circle, and none of the
arrows that must not exist. Module-level and function-level imports both count."""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("outreach", "channels")


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


MODULES = _modules()


@cache  # every test below reads every module: parse each once per test process, not once per test
def _imports(path: Path) -> tuple[tuple[str, bool], ...]:
    """(imported module, at module level?) for every import of the project's own modules and of the
    third-party packages the rules name."""
    tree = ast.parse(path.read_text())
    top = set(map(id, tree.body))
    found: list[tuple[str, bool]] = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        found.extend((name, id(node) in top) for name in names)
    return tuple(found)


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for mod, path in MODULES.items():
        for name, _ in _imports(path):
            target = name
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != mod and not mod.startswith(target + "."):
                graph[mod].add(target)
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_import_graph_has_no_circle() -> None:
    cycle = _cycle(_graph())
    assert cycle is None, " -> ".join(cycle or [])


def _in(module: str, *prefixes: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


# (who, what it must not import, why): each rule of docs/ARCHITECTURE.md's "arrows that must not exist"
FORBIDDEN = [
    (("channels",), ("outreach",), "channels know only outreach.errors: they never import the planner or engine"),
    (("outreach.sandbox",), ("outreach", "channels"), "the sandbox speaks the providers' formats, not ours"),
    (("outreach",), ("sendgrid", "twilio", "smtplib"),
     "the engine never imports a provider SDK: channels do (the sandbox, apart, signs as the providers do)"),
    (("outreach.stages", "outreach.policy", "outreach.preferences", "outreach.learning", "outreach.planner",
      "outreach.queue", "outreach.evidence", "outreach.dispatcher", "outreach.ruleset", "outreach.templating",
      "outreach.conditions", "outreach.pacing"),
     ("fastapi", "starlette", "httpx", "uvicorn", "outreach.web"), "decisions know no HTTP"),
    (("outreach.db", "outreach.models", "outreach.batch_loads", "outreach.evidence", "outreach.planner",
      "outreach.queue", "outreach.dispatcher", "outreach.engine"), ("typer", "outreach.cli"),
     "the data layer and the engine know no terminal"),
    (("outreach.ruleset", "outreach.project", "outreach.engine"), ("outreach.checks",),
     "reading rules only parses them; the checks sit above the engine"),
]
ALLOWED = {("channels", "outreach.errors")}


@pytest.mark.parametrize(("who", "banned", "why"), FORBIDDEN, ids=[f[2] for f in FORBIDDEN])
def test_arrows_that_must_not_exist(who: tuple[str, ...], banned: tuple[str, ...], why: str) -> None:
    wrong = []
    for mod, path in MODULES.items():
        if not _in(mod, *who) or (who == ("outreach",) and _in(mod, "outreach.sandbox")):
            continue
        for name, _ in _imports(path):
            own = any(_in(mod, w) and _in(name, w) and w != "outreach" for w in who)  # a package's own modules
            allowed = any(_in(mod, a) and _in(name, b) for a, b in ALLOWED)
            if _in(name, *banned) and not own and not allowed:
                wrong.append(f"{mod} imports {name}")
    assert not wrong, f"{why}: " + "; ".join(sorted(set(wrong)))


LAZY_ALLOWED = {
    # module: why it imports inside a function (an optional heavy SDK, or start-up time)
    "outreach.engine": "each provider's SDK only when that provider is configured",
    "outreach.server": "a worker never serves the web app, so it does not import FastAPI",
}


def test_no_function_level_import_stands_in_for_a_module_level_one() -> None:
    lazy = sorted({f"{mod} imports {name}" for mod, path in MODULES.items()
                   for name, at_top in _imports(path)
                   if not at_top and _in(name, *PACKAGES) and mod not in LAZY_ALLOWED
                   and not _in(mod, "outreach.cli")})
    assert not lazy, "; ".join(lazy)
