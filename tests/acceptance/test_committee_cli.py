"""From the command line: `outreach check` names a meeting's unknown committee role or expert with its
FILE:LINE (exit 2), and `contacts import` gives the unowned their owners by the `accounts: owners:` rule."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.acceptance.test_accounts_cli import run
from tests.support import make_project

CSV = """email,first_name,account_id,territory
a@acme.example,A,ACME,east
b@acme.example,B,ACME,east
c@beta.example,C,BETA,east
d@delta.example,D,,west
"""


def test_attendees_are_checked_and_owners_assigned(tmp_path: Path) -> None:
    root = make_project(tmp_path / "proj", f"sqlite:///{tmp_path / 'o.db'}")
    accounts, nurture = root / "rules" / "accounts.yaml", root / "rules" / "nurture.yaml"
    accounts.write_text(accounts.read_text().replace("  daily_cap: 3 ", (
        "  owners: {by: territory, round_robin: {east: [rita@example.com, otto@example.com]}}\n"
        "  experts: {solutions_engineer: sam@example.com}\n  daily_cap: 3 ")))
    nurture.write_text(nurture.read_text().replace("    meeting: {duration: 30m}", (
        "    meeting: {duration: 30m, attendees: {roles: [economic_buyer, cfo], experts: [solutions_enginer]}}")))
    out = run(root, "check", code=2)
    assert "rules/nurture.yaml:90: triggers.proposal-call.meeting.attendees: 'cfo' is not a committee role" in out
    assert "no expert 'solutions_enginer' under accounts: experts: (did you mean 'solutions_engineer'?)" in out

    nurture.write_text(nurture.read_text().replace("economic_buyer, cfo", "economic_buyer").replace(
        "solutions_enginer", "solutions_engineer"))
    run(root, "check")
    (root / "people.csv").write_text(CSV)
    out = run(root, "contacts", "import", str(root / "people.csv"))
    assert "imported 4 new" in out and "3 given an owner by the rules" in out  # the west has no rep
    with sqlite3.connect(tmp_path / "o.db") as db:
        owners = {e: o for e, o in db.execute("SELECT email, owner FROM contact") if e in CSV}
    assert owners == {"a@acme.example": "rita@example.com", "b@acme.example": "rita@example.com",
                      "c@beta.example": "otto@example.com", "d@delta.example": None}
