"""`outreach init`'s work: the example project copied into a new folder, never over a project."""

from __future__ import annotations

from pathlib import Path

import pytest

from outreach.config import load_settings
from outreach.errors import InvalidInput
from outreach.scaffold import create_project, example_dir


def test_example_dir_holds_the_example_project() -> None:
    assert {"config.yaml", "rules", "content", "contacts.csv"} <= {p.name for p in example_dir().iterdir()}


def test_create_project_copies_the_example_and_it_loads(tmp_path: Path) -> None:
    made = create_project(tmp_path / "demo")
    assert made == ["config.yaml", "rules/", "content/", "contacts.csv"]
    assert (tmp_path / "demo" / "rules" / "tests").is_dir()
    assert not list((tmp_path / "demo").rglob("__pycache__"))
    load_settings(tmp_path / "demo", environ={})  # a fresh project needs no variables (outbox)


def test_create_project_refuses_an_existing_project(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("database: sqlite:///mine.db\n")
    with pytest.raises(InvalidInput, match="exists already"):
        create_project(tmp_path)
    assert (tmp_path / "config.yaml").read_text() == "database: sqlite:///mine.db\n"
    assert not (tmp_path / "rules").exists()
