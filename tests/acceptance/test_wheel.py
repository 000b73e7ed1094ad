"""The built wheel, installed in a fresh virtual environment outside the repository, makes a
working project: `outreach init demo && cd demo && outreach check && outreach plan`. The example
project, the migrations, the templates and the static files must all be in the wheel."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow

IN_THE_WHEEL = [
    "outreach/example/config.yaml", "outreach/example/contacts.csv", "outreach/example/rules/nurture.yaml",
    "outreach/example/rules/tests/aware.yaml", "outreach/example/content/aware/welcome.email.j2",
    "outreach/migrations/env.py", "outreach/migrations/script.py.mako",
    "outreach/migrations/versions/0001_initial_schema.py", "outreach/web/templates/base.html",
    "outreach/web/static/app.css", "outreach/web/static/charts.js",
    "outreach/web/static/vendor/chartjs/chart.umd.min.js", "outreach/analytics/templates/report_page.html",
    "outreach/py.typed", "channels/py.typed",
    "outreach/web/static/swagger-ui/swagger-ui-bundle.js", "outreach/web/static/swagger-ui/swagger-ui.css",
    "outreach/web/templates/inbox.html",
]


def run(args: list[str | Path], cwd: Path, env: dict[str, str], timeout: float = 300) -> str:
    done = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(map(str, args))} -> {done.returncode}\n{done.stdout}\n{done.stderr}"
    assert "Traceback" not in done.stderr
    return done.stdout


def test_wheel_installed_outside_the_repository_makes_a_working_project(tmp_path: Path) -> None:
    # no path, project or setting of the test run may leak into the installed one
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV") and not k.startswith(("OUTREACH_", "SENDGRID_", "TWILIO_"))}
    env["PYTHONWARNINGS"] = "ignore"
    # build from a copy: an in-tree build/ from an earlier run must not leak into the wheel
    source = tmp_path / "source"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
        ".git", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", ".venv", "*.db", "test-artifacts"))
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", tmp_path / "dist", source], tmp_path, env)
    (wheel,) = (tmp_path / "dist").glob("outreach-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert [n for n in IN_THE_WHEEL if n not in names] == []
    assert not [n for n in names if n.startswith("tests/")]

    # --system-site-packages lends the dependencies (no download); the outreach is the wheel's
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--system-site-packages", venv], tmp_path, env)
    bin_dir = venv / ("Scripts" if os.name == "nt" else "bin")
    python, outreach = bin_dir / "python", bin_dir / "outreach"
    run([python, "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall", wheel], tmp_path, env)
    where = run([python, "-c", "import outreach; print(outreach.__file__)"], tmp_path, env).strip()
    assert Path(where).resolve().is_relative_to(venv.resolve()), where

    work = tmp_path / "work"
    work.mkdir()
    run([outreach, "init", "demo"], work, env)
    demo = work / "demo"
    assert {p.name for p in demo.iterdir()} >= {"config.yaml", "rules", "content", "contacts.csv"}
    assert (demo / "rules" / "tests").is_dir()
    assert "ok:" in run([outreach, "check"], demo, env)
    run([outreach, "plan"], demo, env)
    run([outreach, "contacts", "import", "contacts.csv"], demo, env)
    run([outreach, "plan", "--now", "2026-03-02T10:00:00Z"], demo, env)
