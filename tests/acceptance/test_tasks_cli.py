"""A rep's task through the CLI in a subprocess: `queue list --json` shows the call with the number to
dial, `queue approve` refuses it (exit 2), and `queue done` records the outcome, which moves the stage."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from outreach.contacts import import_csv
from outreach.db import session_scope
from outreach.engine import Engine
from outreach.evidence import EvidenceIn
from outreach.project import Project
from tests.support import make_project
from tests.support.tasks import add_task_steps


def cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    p = subprocess.run([sys.executable, "-m", "outreach.cli", *args, "--project", str(root)],
                       capture_output=True, text=True, timeout=120)
    assert "Traceback" not in p.stderr, p.stderr
    return p


def test_a_call_task_through_the_cli(tmp_path: Path) -> None:
    root = add_task_steps(make_project(tmp_path / "proj", f"sqlite:///{tmp_path / 'q.db'}"))
    engine = Engine(Project.open(root))
    now = datetime.now(UTC)
    with session_scope(engine.db) as session:
        import_csv(session, root / "contacts.csv", region="US", first_stage="aware", now=now - timedelta(days=3))
    clicked = now - timedelta(days=2)
    engine.record([EvidenceIn("email.clicked", clicked, "cli", contact_id=1)], now=clicked)
    engine.plan(now)

    p = cli(root, "queue", "list", "--json", "--status", "pending_approval")
    assert p.returncode == 0, p.stderr
    rows: list[dict[str, Any]] = json.loads(p.stdout)
    call = next(t for t in rows if t["step"] == "intro-call")
    assert call["channel"] == "call" and call["task"] == {"phone": "+14155550101"}
    assert call["contact"]["email"] == "ada@analytical.example"
    assert "task" not in next(t for t in rows if t["step"] == "check-in")  # a message is no task

    refused = cli(root, "queue", "approve", str(call["id"]))
    assert refused.returncode == 2 and "record its outcome" in refused.stderr
    done = cli(root, "queue", "done", str(call["id"]), "--outcome", "connected", "--note", "Budget in Q3",
               "--by", "rep@example.com")
    assert done.returncode == 0, done.stderr
    assert "stage interested -> evaluating" in done.stdout
    after = {t["id"]: t for t in json.loads(cli(root, "queue", "list", "--json").stdout)}
    assert after[call["id"]]["status"] == "sent" and after[call["id"]]["sent_at"]
    shown = cli(root, "contacts", "show", "1", "--json")
    assert "call.connected" in shown.stdout and "Budget in Q3" in shown.stdout
