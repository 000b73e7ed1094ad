"""Data out through the CLI in a subprocess: `contacts export` (CSV escaped against formula injection,
JSON Lines), `contacts export-personal` and `contacts forget`, then a re-import refused."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

from tests.support import make_project


def cli(root: Path, *args: str, code: int = 0) -> str:
    p = subprocess.run([sys.executable, "-m", "outreach.cli", *args, "--project", str(root)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == code, f"outreach {' '.join(args)} -> {p.returncode}\n{p.stdout}\n{p.stderr}"
    assert "Traceback" not in p.stderr
    return p.stdout + p.stderr


def test_export_personal_data_and_forget_from_the_cli(tmp_path: Path) -> None:
    root = make_project(tmp_path / "proj", f"sqlite:///{tmp_path / 'out.db'}")
    people = tmp_path / "people.csv"
    people.write_text("email,first_name,company,external_id\n"
                      "eve@example.org,=HYPERLINK(\"http://x\"),@evil,X1\n"
                      "sam@example.org,Sam,-2+3,X2\n")
    cli(root, "contacts", "import", str(people))
    cli(root, "evidence", "add", "sam@example.org", "pricing.viewed", "--data", '{"page": "/pricing"}')

    rows = list(csv.DictReader(io.StringIO(cli(root, "contacts", "export"))))
    eve = next(r for r in rows if r["external_id"] == "X1")
    assert eve["first_name"] == "'=HYPERLINK(\"http://x\")" and eve["company"] == "'@evil"
    sam = next(r for r in rows if r["external_id"] == "X2")
    assert sam["company"] == "'-2+3" and sam["evidence"] == "1"
    out = tmp_path / "all.jsonl"
    cli(root, "contacts", "export", "--format", "jsonl", "--out", str(out))
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["external_id"] for line in lines] == ["X1", "X2"] and lines[0]["first_name"].startswith("=")
    cli(root, "contacts", "export", "--format", "xml", code=2)

    personal = json.loads(cli(root, "contacts", "export-personal", "sam@example.org"))
    assert personal["contact"]["email"] == "sam@example.org"
    assert personal["evidence"][0]["data"] == {"page": "/pricing"}

    assert "forgotten" in cli(root, "contacts", "forget", "sam@example.org", "--by", "dpo@example.org")
    cli(root, "contacts", "export-personal", "sam@example.org", code=2)  # nobody by that address now
    again = cli(root, "contacts", "import", str(people), code=1)
    assert "row 3: email 'sam@example.org' belongs to a person who asked to be forgotten" in again
