"""`outreach init DIR`: a new project folder made from the example project (config.yaml, rules/ with
its tests, content/, contacts.csv)."""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

from outreach.errors import InvalidInput, OutreachError

# what a new project gets, in the order `init` reports it (a folder is copied with all below it)
EXAMPLE_FILES = ("config.yaml", "rules", "content", "contacts.csv")
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.db", "*.db-*", ".outreach-secret", "*.rejected.csv")


def example_dir() -> Path:
    """The folder that holds the example project. An installed package carries it as
    outreach/example/ (the build copies it there, see setup.py); an editable install or a source
    checkout has no such copy, since git keeps one: the project at the repository root, which is
    the folder above this package."""
    packaged = resources.files("outreach") / "example"
    if isinstance(packaged, Path) and (packaged / "config.yaml").is_file():
        return packaged
    root = Path(__file__).resolve().parent.parent
    if (root / "config.yaml").is_file() and (root / "rules").is_dir():
        return root
    raise OutreachError("the example project is missing from this installation of outreach "
                        "(reinstall it from a wheel or a source checkout)")


def create_project(directory: Path) -> list[str]:
    """Copy the example project into `directory` (made if need be) and return what was made, as
    `config.yaml`, `rules/`, ... Refuses (InvalidInput) where a config.yaml exists already."""
    if (directory / "config.yaml").exists():
        raise InvalidInput(f"{directory}/config.yaml exists already: not overwriting a project")
    source = example_dir()
    directory.mkdir(parents=True, exist_ok=True)
    made = []
    for name in EXAMPLE_FILES:
        path = source / name
        if path.is_dir():
            shutil.copytree(path, directory / name, ignore=_IGNORE, dirs_exist_ok=True)
            made.append(f"{name}/")
        elif path.is_file():
            shutil.copy(path, directory / name)
            made.append(name)
    return made
