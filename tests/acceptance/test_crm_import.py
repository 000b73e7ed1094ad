"""`outreach contacts import --map hubspot|salesforce|FILE [--dry-run]` in a subprocess, on exports in
the CRMs' own formats (tests/fixtures/crm), and the progress bar on a file of a few thousand rows."""

from __future__ import annotations

import csv
import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

from tests.support import FIXTURES, make_project


def cli(root: Path, *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
    p = subprocess.run([sys.executable, "-m", "outreach.cli", *args, "--project", str(root)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == code, f"outreach {' '.join(args)} -> {p.returncode}\n{p.stdout}\n{p.stderr}"
    assert "Traceback" not in p.stderr
    return p


def test_crm_exports_import_through_their_mappings(tmp_path: Path) -> None:
    root = make_project(tmp_path / "proj", f"sqlite:///{tmp_path / 'crm.db'}")
    hubspot = shutil.copy(FIXTURES / "crm" / "hubspot-contacts.csv", tmp_path / "hubspot.csv")
    salesforce = shutil.copy(FIXTURES / "crm" / "salesforce-contacts.csv", tmp_path / "salesforce.csv")

    dry = cli(root, "contacts", "import", str(hubspot), "--map", "hubspot", "--dry-run").stdout
    assert "row 2: a new contact" in dry and "external_id      51" in dry and "nothing written" in dry
    assert "row 4: rejected: Create Date '15/03/2024' is not a date" in dry
    with sqlite3.connect(tmp_path / "crm.db") as conn:  # the dry run wrote nothing
        assert conn.execute("SELECT count(*) FROM contact").fetchone() == (0,)

    got = cli(root, "contacts", "import", str(hubspot), "--map", "hubspot", code=1)
    assert "imported 2 new" in got.stdout and "row 4: Create Date" in got.stderr
    rejected = list(csv.DictReader((tmp_path / "hubspot.rejected.csv").open()))
    assert rejected[0]["Record ID"] == "53"  # the rejected file keeps the export's own columns
    cli(root, "contacts", "import", str(salesforce), "--map", "salesforce")
    rows = {r["external_id"]: r for r in map(json.loads, cli(root, "contacts", "export", "--format",
                                                               "jsonl").stdout.splitlines())}
    assert rows["52"]["consent_email"] is False and rows["51"]["consent_email"] is True
    katherine = rows["0035g00000AbCdFAAZ"]
    assert katherine["account_name"] == "Orbit Finance" and katherine["phone"] == "+13125550104"
    assert katherine["consent_email"] is False
    again = cli(root, "contacts", "import", str(hubspot), "--map", "hubspot", "--dry-run").stdout
    assert "row 2: updates contact" in again
    cli(root, "contacts", "import", str(hubspot), "--map", "pipedrive", code=2)


def test_a_large_file_shows_progress_unless_quiet(tmp_path: Path) -> None:
    root = make_project(tmp_path / "proj", f"sqlite:///{tmp_path / 'big.db'}")
    big = tmp_path / "big.csv"
    big.write_text("email,first_name\n" + "".join(f"p{i}@example.org,P{i}\n" for i in range(6000)))
    loud = cli(root, "contacts", "import", str(big))
    assert "importing big.csv" in loud.stderr and "imported 6000 new" in loud.stdout
    quiet = cli(root, "contacts", "import", str(big), "--quiet")
    assert "importing" not in quiet.stderr and "updated 6000" in quiet.stdout
