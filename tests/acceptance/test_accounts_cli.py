"""`outreach contacts import` with account columns, `accounts list|show [--json]` and `queue list
--json`'s `from_email`, as scripts call them: the CLI in subprocesses (SPEC section 11). SQLite."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.support import make_project

CSV = """email,first_name,account_id,account_name,company_domain,role,owner
cfo@acme.example,Carla,ACME-1,Acme Corp,acme.example,economic_buyer,rita@example.com
champ@acme.example,Chad,ACME-1,,,champion,rita@example.com
bad@acme.example,Bad,ACME-1,,,ceo,
"""


def run(root: Path, *args: str, code: int = 0, stdin: str | None = None) -> str:
    p = subprocess.run([sys.executable, "-m", "outreach.cli", *args, "--project", str(root)], input=stdin,
                       capture_output=True, text=True, env=os.environ.copy(), timeout=120)
    assert p.returncode == code, f"outreach {' '.join(args)} -> {p.returncode}\n{p.stdout}\n{p.stderr}"
    assert "Traceback" not in p.stderr
    return p.stdout + p.stderr


def test_accounts_from_the_command_line(tmp_path: Path) -> None:
    root = make_project(tmp_path / "proj", f"sqlite:///{tmp_path / 'o.db'}")
    (root / "people.csv").write_text(CSV)
    out = run(root, "contacts", "import", str(root / "people.csv"), code=1)
    assert "row 4: role 'ceo' is not a committee role" in out
    run(root, "users", "add", "rita@example.com", "--role", "rep", "--name", "Rita Reyes", "--no-password")
    run(root, "evidence", "add", "cfo@acme.example", "email.replied")

    listed: list[dict[str, Any]] = json.loads(run(root, "accounts", "list", "--json"))
    assert [a["account"] for a in listed] == [{"id": "ACME-1", "name": "Acme Corp", "domain": "acme.example"}]
    shown = json.loads(run(root, "accounts", "show", "acme.example", "--json"))
    assert set(shown) == {"account", "stage", "proof", "members", "paused_until"}
    assert shown["stage"] == "evaluating" and shown["paused_until"]
    assert [m["email"] for m in shown["proof"]["members"]] == ["cfo@acme.example"]
    assert shown["members"] == [
        {"id": 1, "email": "cfo@acme.example", "role": "economic_buyer", "stage": "interested"},
        {"id": 2, "email": "champ@acme.example", "role": "champion", "stage": "aware"}]
    assert "because the economic buyer reached interested" in run(root, "accounts", "show", "ACME-1")
    assert "no account 'NOPE'" in run(root, "accounts", "show", "NOPE", code=2)

    run(root, "plan")
    touches = json.loads(run(root, "queue", "list", "--json"))
    assert touches and {t["from_email"] for t in touches} == {"rita@example.com"}
