"""`outreach report` as scripts and people run it: a subprocess, the JSON shape of SPEC section 11,
the terminal tables, and exit 2 with a clear message for a bad date or an unknown owner."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from sqlmodel import col

from outreach import db
from outreach.analytics import build, paths
from outreach.analytics.model import Filters, narrowing, parse_attr
from outreach.db import session_scope
from outreach.models import Contact, ContactPart
from outreach.project import Project
from tests.support import make_project
from tests.support.report_data import REP2, SINCE, UNTIL, seed_report


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("report")
    path = make_project(tmp / "proj", f"sqlite:///{tmp / 'r.db'}")
    project = Project.open(path)
    with session_scope(project.engine) as s:
        seed_report(s)
    db.dispose_all()
    return path


def cli(root: Path, *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
    p = subprocess.run([sys.executable, "-m", "outreach.cli", "report", *args, "--project", str(root)],
                       capture_output=True, text=True, env=os.environ.copy(), timeout=120)
    assert p.returncode == code, p.stdout + p.stderr
    assert "Traceback" not in p.stderr
    return p


def test_json_has_the_spec_shape(root: Path) -> None:
    data = json.loads(cli(root, "--json", "--since", SINCE, "--until", UNTIL, "--owner", REP2).stdout)
    assert list(data) == ["period", "funnel", "conversion", "velocity", "steps", "channels", "history", "queue"]
    assert data["period"] == {"since": SINCE, "until": UNTIL}
    shapes = {"funnel": ["stage", "now", "reached"],
              "conversion": ["from", "to", "entered", "advanced", "rate", "low", "high"],
              "velocity": ["stage", "n", "median_days", "p80_days"],
              "steps": ["rule", "step", "sent", "responses", "advanced", "opt_outs", "expired"],
              "channels": ["interaction", "channel", "sent", "responses", "rate", "low", "high"],
              "history": ["date", "stage", "count"], "queue": ["owner", "waiting", "expired"]}
    for key, fields in shapes.items():
        assert data[key], key
        assert all(list(row) == fields for row in data[key]), key
    # rep2 owns D (customer) and E (interested on the last day)
    assert [f["now"] for f in data["funnel"]] == [0, 1, 0, 0, 1]
    assert data["queue"] == [{"owner": REP2, "waiting": 0, "expired": 1}]


def test_tables_for_people(root: Path) -> None:
    out = cli(root, "--since", SINCE, "--until", UNTIL).stdout
    assert "Report 2026-11-01 to 2026-11-10" in out
    assert "too few to read (2 of 3)" in out  # aware -> interested, under report.min_cases (20)


@pytest.mark.parametrize(("args", "message"), [
    (["--since", "2026-11-31"], "--since '2026-11-31' is not a date"),
    (["--since", "2026-11-10", "--until", "2026-11-01"], "after --until"),
    (["--owner", "nobody@example.com"], "--owner 'nobody@example.com': no user"),
])
def test_bad_options_exit_2(root: Path, args: list[str], message: str) -> None:
    assert message in cli(root, *args, code=2).stderr


def test_html_page_is_self_contained(root: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    data = json.loads(cli(root, "--json", "--since", SINCE, "--until", UNTIL, "--html", str(out)).stdout)
    page = out.read_text()
    # no file or address outside the page: scripts and styles are inline, Chart.js included
    assert not re.search(r"<(script|img|iframe)[^>]+src=|<link[^>]+href=|https?://[^\s\"']+\.(js|css)", page)
    assert "Chart.js v4" in page and "outreachCharts" in page
    embedded = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', page, re.S)
    assert embedded and json.loads(embedded.group(1)) == data
    for widget in ("funnel", "conversion", "history", "velocity", "channels", "steps", "deliverability"):
        assert f'data-chart="{widget}"' in page
    assert "too few to read" in page and "<td>trigger pricing-follow-up</td>" in page


def test_stage_playbook_and_attribute_filters(root: Path) -> None:
    out = json.loads(cli(root, "--json", "--since", SINCE, "--until", UNTIL, "--playbook", "trigger:pricing-follow-up",
                         "--stage", "evaluating").stdout)
    assert [(s["rule"], s["sent"]) for s in out["steps"]] == [("trigger:pricing-follow-up", 1)]
    assert [f["now"] for f in out["funnel"]] == [0, 0, 1, 0, 0]  # A: the trigger touched it, it is evaluating
    text = cli(root, "--since", SINCE, "--until", UNTIL, "--attr", "industry=retail").stdout
    assert "only industry = retail" in text
    assert "--attr 'industry'" in cli(root, "--attr", "industry", code=2).stderr
    assert "stage 'nowhere'" in cli(root, "--stage", "nowhere", code=2).stderr


def test_one_filter_reads_its_kept_part_and_answers_as_counted_from_the_rows(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each filter alone is answered in the subprocess from its part's kept counts (migration 0018): the JSON
    is the report counted from the contacts' rows, as every report was before."""
    root = make_project(tmp_path / "proj", f"sqlite:///{tmp_path / 'r.db'}")
    project = Project.open(root)
    with session_scope(project.engine) as s:
        ids = seed_report(s)
        for name, industry in {"A": "software", "C": "retail", "D": "retail"}.items():
            s.execute(update(Contact).where(col(Contact.id) == ids[name]).values(attributes={"industry": industry}))
    cases = [("--owner", REP2, {"owner": REP2}), ("--stage", "evaluating", {"stage": "evaluating"}),
             ("--attr", "industry=retail", {"attrs": ["industry=retail"]}),
             ("--playbook", "aware", {"playbook": "aware"})]
    for option, value, given in cases:
        got = json.loads(cli(root, "--json", "--since", SINCE, "--until", UNTIL, option, value).stdout)
        monkeypatch.setattr(paths, "refreshed", lambda *_: False)  # counted from the rows, nothing kept read
        with session_scope(project.engine) as s:
            f = narrowing(Filters(date.fromisoformat(SINCE), date.fromisoformat(UNTIL), given.get("owner")),
                          project.rules, given.get("stage"), given.get("playbook"),
                          [parse_attr(a) for a in given.get("attrs", [])])
            counted = build.build_report(s, project.rules, f)
        monkeypatch.undo()
        assert got == json.loads(json.dumps(counted)), option
        assert got["funnel"] != [] and any(row["now"] for row in got["funnel"]), option
    with session_scope(project.engine) as s:  # the subprocess kept the parts
        assert s.execute(select(func.count()).select_from(ContactPart)).scalar_one() > 0
    db.dispose_all()
