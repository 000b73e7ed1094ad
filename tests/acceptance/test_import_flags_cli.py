"""`contacts import` in a subprocess: a stage column nothing explains rejects its rows, naming them;
`--stage-column` starts the contacts there; a warning line per owner nobody can act for, the exit code
unchanged; a mapping's `stages:` naming no stage of the rules is a usage error. The admin's queue lists
the same owners."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sqlalchemy import select

from outreach.db import session_scope
from outreach.engine import Engine
from outreach.models import Contact
from outreach.project import Project
from outreach.users import add_user
from tests.support import make_project
from tests.support.web import client, password_hash, sign_in

CSV = """email,owner,stage
a@buyer.example,admin@example.com,interested
b@buyer.example,ghost@example.com,evaluating
c@buyer.example,ghost@example.com,
d@buyer.example,,
"""


def cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    p = subprocess.run([sys.executable, "-m", "outreach.cli", *args, "--project", str(root)],
                       capture_output=True, text=True, timeout=120)
    assert "Traceback" not in p.stderr, p.stderr
    return p


def test_import_flags_and_stage_column(tmp_path: Path) -> None:
    root = make_project(tmp_path / "proj", f"sqlite:///{tmp_path / 'o.db'}")
    engine = Engine(Project.open(root))
    with session_scope(engine.db) as s:
        user, _token = add_user(s, "admin@example.com", "admin", None)
        user.password_hash = password_hash()
    (root / "crm.csv").write_text(CSV)

    plain = cli(root, "contacts", "import", str(root / "crm.csv"), "--quiet")
    assert plain.returncode == 1
    assert "crm.csv: row 2: stage 'interested': an imported stage needs its meaning" in plain.stderr
    assert "crm.csv: row 3: stage 'evaluating'" in plain.stderr and "row 4" not in plain.stderr

    staged = cli(root, "contacts", "import", str(root / "crm.csv"), "--stage-column", "stage", "--quiet")
    assert staged.returncode == 0, staged.stderr
    warnings = [line for line in staged.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == [
        "warning: 2 contact(s) are owned by ghost@example.com, who has no user account that can sign in: nobody "
        "can approve their touches (outreach users add ghost@example.com --role rep)",
        "warning: 1 contact(s) have no owner, and steps a rep approves (interested/check-in, "
        "evaluating/strategy-session, evaluating/expert-review, ...) will wait for nobody: give them an owner "
        "column, or hand them to a rep"]
    with session_scope(engine.db) as s:
        assert {c.email: c.stage for c in s.execute(select(Contact)).scalars()} == {
            "a@buyer.example": "interested", "b@buyer.example": "evaluating", "c@buyer.example": "aware",
            "d@buyer.example": "aware"}

    (root / "map.yaml").write_text('columns: {"Lifecycle": stage}\nstages: {"SQL": qualified}\n')
    wrong = cli(root, "contacts", "import", str(root / "crm.csv"), "--map", str(root / "map.yaml"), "--dry-run")
    assert wrong.returncode == 2 and "stages: qualified is not a stage of the rules" in wrong.stderr

    c = client(engine)
    sign_in(c, "admin@example.com")
    flags = c.get("/queue").text.split('id="owner-flags"')[1].split("</div>")[0]
    assert "2 owned by ghost@example.com, who has no user account" in flags and "1 with no owner" in flags
