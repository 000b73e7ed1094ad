"""Build hook, the rest of the packaging is in pyproject.toml. A built package carries the example
project as outreach/example/ (for `outreach init`), copied at build time from the repository root
(config.yaml, rules/ with its tests, content/, contacts.csv), so git keeps a single copy."""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
EXAMPLE = ("config.yaml", "rules", "content", "contacts.csv")  # outreach.scaffold.EXAMPLE_FILES


class BuildWithExample(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads the repository root (outreach/scaffold.py)
        target = Path(self.build_lib) / "outreach" / "example"
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        for name in EXAMPLE:
            source = ROOT / name
            if source.is_dir():
                shutil.copytree(source, target / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            else:
                shutil.copy(source, target / name)


setup(cmdclass={"build_py": BuildWithExample})
