"""`outreach run` stopped with SIGTERM (systemd, Docker and Kubernetes all send it) finishes the sends
in flight, settles them, and exits 0 (issue 12, finding 3): nothing is left `sending` for recovery
to turn `uncertain`."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from sqlmodel import col

from outreach import db
from outreach.db import session_scope
from outreach.engine import Engine
from outreach.models import Touch, TouchStatus
from outreach.project import Project
from outreach.sandbox.server import Sandbox
from tests.support import ALWAYS, make_project
from tests.support.serving import ANY_PORT, start_run

pytestmark = pytest.mark.slow


def _count(engine: Engine, status: TouchStatus) -> int:
    with session_scope(engine.db) as s:
        return int(s.execute(select(func.count()).select_from(Touch).where(col(Touch.status) == status)).scalar_one())


def test_sigterm_finishes_the_sends_in_flight(tmp_path: Path) -> None:
    with Sandbox() as sb:
        root = make_project(tmp_path / "proj", f"sqlite:///{tmp_path / 'run.db'}", **{
            "providers.email": "sendgrid", "sendgrid.api_key": "SG.shutdown", "sendgrid.api_base": sb.url,
            "sendgrid.webhook_public_key": "",
            **ANY_PORT, "policy.send_windows": {"email": ALWAYS, "sms": ALWAYS, "meeting": ALWAYS},
            "dispatch.poll_every": "1s", "dispatch.plan_every": "1h"})
        engine = Engine(Project.open(root))
        subprocess.run([sys.executable, "-m", "outreach.cli", "contacts", "import", str(root / "contacts.csv"),
                        "--project", str(root)], check=False, capture_output=True)
        sb.fail_next(None, count=100, delay=3.0, kind="email")  # every send is accepted, 3 s late
        log = tmp_path / "run.log"
        server, base = start_run(root, log)
        try:
            deadline = time.monotonic() + 60
            while _count(engine, TouchStatus.SENDING) == 0:  # the scheduler's first tick plans and claims
                assert time.monotonic() < deadline and server.poll() is None, log.read_text()
                time.sleep(0.1)
            server.send_signal(signal.SIGTERM)
            code = server.wait(timeout=60)
        finally:
            if server.poll() is None:
                server.kill()
            db.dispose_all()
        assert code == 0, log.read_text()
        assert _count(engine, TouchStatus.SENDING) == 0
        assert _count(engine, TouchStatus.UNCERTAIN) == 0
        sent = _count(engine, TouchStatus.SENT)
        assert sent > 0 and len(sb.messages("email")) == sent
        with httpx.Client() as c:  # and the server is really gone
            with pytest.raises(httpx.HTTPError):
                c.get(f"{base}/healthz", timeout=1)
