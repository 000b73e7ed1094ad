"""Data out through the CLI in a subprocess: `contacts export` (CSV escaped against formula injection,
JSON Lines), `contacts export-personal` and `contacts forget`, then a re-import refused."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

from outreach import db
from outreach.contacts import import_csv
from outreach.db import session_scope
from outreach.engine import Engine
from outreach.project import Project
from tests.support import at, make_project
from tests.support.receiver import SECRET, Receiver


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


def test_outbound_deliveries_and_replay_from_the_cli(tmp_path: Path) -> None:
    receiver = Receiver(failures=1)
    root = make_project(tmp_path / "proj", f"sqlite:///{tmp_path / 'hooks.db'}",
                        outbound_webhooks=[{"url": receiver.url, "secret": SECRET, "events": ["email.replied"]}])
    people = tmp_path / "people.csv"
    people.write_text("email\nada@example.org\n")
    engine = Engine(Project.open(root))
    with session_scope(engine.db) as s:
        import_csv(s, people, region="US", first_stage="aware", now=at("2026-03-02 09:00"))
    db.dispose_all()
    try:
        cli(root, "evidence", "add", "ada@example.org", "email.replied")
        assert "failed again" in cli(root, "webhooks", "replay", "1", code=1)  # the receiver is down
        assert "delivered" in cli(root, "webhooks", "replay", "1")
        log = json.loads(cli(root, "webhooks", "deliveries", "--json"))
    finally:
        receiver.close()
    assert [(d["id"], d["event"], d["status"], d["attempts"]) for d in log] == [(1, "email.replied", "delivered", 2)]
    assert [p["data"]["contact"]["email"] for p in receiver.accepted] == ["ada@example.org"]
    cli(root, "webhooks", "replay", "99", code=2)


def test_staff_revoking_consent_tells_the_receivers_an_opt_out(tmp_path: Path) -> None:
    receiver = Receiver(failures=0)
    root = make_project(tmp_path / "proj", f"sqlite:///{tmp_path / 'revoke.db'}",
                        outbound_webhooks=[{"url": receiver.url, "secret": SECRET, "events": ["contact.opted_out"]}])
    people = tmp_path / "people.csv"
    people.write_text("email\nada@example.org\n")
    try:
        cli(root, "contacts", "import", str(people))
        cli(root, "contacts", "consent", "ada@example.org", "--channel", "email", "--revoked", "--source",
            "phone call", "--reason", "asked us to stop")
        cli(root, "contacts", "consent", "ada@example.org", "--channel", "email", "--granted", "--source",
            "signed form", "--reason", "asked to hear again")  # a grant is no opt-out: nothing sent
        assert "delivered" in cli(root, "webhooks", "replay", "1")
        log = json.loads(cli(root, "webhooks", "deliveries", "--json"))
    finally:
        receiver.close()
    assert [(d["event"], d["status"]) for d in log] == [("contact.opted_out", "delivered")]
    [told] = receiver.accepted
    assert told["data"]["contact"]["email"] == "ada@example.org" and told["data"]["channel"] == "email"
    assert (told["data"]["revoked_by"], told["data"]["reason"]) == ("cli", "asked us to stop")
