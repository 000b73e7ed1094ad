"""The queue moves a rep or a script makes, through the CLI in a subprocess: approve --all --owner
approves that rep's touches only, resend and drop settle an uncertain send and nothing else, and a
refused move exits 2 naming the touch and changes nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import update
from sqlmodel import col

from outreach.contacts import import_csv
from outreach.db import session_scope
from outreach.engine import Engine
from outreach.evidence import EvidenceIn
from outreach.models import Touch, TouchStatus
from outreach.project import Project
from tests.support import make_project


def cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    p = subprocess.run([sys.executable, "-m", "outreach.cli", *args, "--project", str(root)],
                       capture_output=True, text=True, timeout=120)
    assert "Traceback" not in p.stderr, p.stderr
    return p


def touches(root: Path) -> list[dict[str, Any]]:
    p = cli(root, "queue", "list", "--json")
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)  # type: ignore[no-any-return]


def test_queue_moves_through_the_cli(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'q.db'}"
    root = make_project(tmp_path / "proj", url)
    engine = Engine(Project.open(root))  # the setup in-process; the moves below go through the CLI
    now = datetime.now(UTC)
    with session_scope(engine.db) as session:
        import_csv(session, root / "contacts.csv", region="US", first_stage="aware", now=now - timedelta(days=3))
    engine.record([EvidenceIn("email.clicked", now - timedelta(days=2), "cli", contact_id=i) for i in range(1, 7)],
                  now=now - timedelta(days=2))
    engine.plan(now)  # interested for two days: a check-in a rep approves
    before = touches(root)
    pending = {t["id"]: t for t in before if t["status"] == TouchStatus.PENDING}
    owners = {t["id"]: t["contact"]["email"] for t in before}
    assert len(pending) >= 3, before

    p = cli(root, "queue", "approve", "--all", "--owner", "rep2@example.com")
    assert p.returncode == 0, p.stderr
    after = {t["id"]: t["status"] for t in touches(root)}
    rep2 = {"alan@bletchley.example", "katherine@orbit.example"}
    moved = {i for i in pending if after[i] == TouchStatus.APPROVED}
    assert moved and {owners[i] for i in moved} <= rep2  # only rep2's contacts
    assert all(after[i] == TouchStatus.PENDING for i in pending if owners[i] not in rep2)

    # two sends a dead worker left uncertain, and one still pending
    left = sorted(i for i in pending if after[i] == TouchStatus.PENDING)
    a, b, other = left[0], left[1], left[2]
    with session_scope(engine.db) as session:
        session.execute(update(Touch).where(col(Touch.id).in_([a, b])).values(status=TouchStatus.UNCERTAIN))

    refused = cli(root, "queue", "resend", str(other))
    assert refused.returncode == 2 and f"{other} is pending_approval" in refused.stderr
    refused = cli(root, "queue", "drop", str(a), str(other))  # one refused: none moves
    assert refused.returncode == 2 and f"{other} is pending_approval" in refused.stderr
    assert {t["id"]: t["status"] for t in touches(root)}[a] == TouchStatus.UNCERTAIN

    started = datetime.now(UTC)
    assert cli(root, "queue", "resend", str(a)).returncode == 0
    assert cli(root, "queue", "drop", str(b)).returncode == 0
    now = {t["id"]: t for t in touches(root)}
    assert now[a]["status"] == TouchStatus.APPROVED and "resent" in now[a]["reason"]
    assert datetime.fromisoformat(now[a]["due_at"].replace("Z", "+00:00")) >= started.replace(microsecond=0)
    assert now[b]["status"] == TouchStatus.CANCELLED
    again = cli(root, "queue", "resend", str(b))  # a dropped send stays dropped
    assert again.returncode == 2 and f"{b} is cancelled" in again.stderr
    assert cli(root, "queue", "resend", "999999").returncode == 2
