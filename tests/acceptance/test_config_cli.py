"""`outreach check` in a subprocess reads the real environment: a provider chosen there without its
credentials is the same `config.yaml:LINE` error as in tests/unit/test_config_sources.py, exit 2 and no
traceback. (It lives here, not with the unit tests, because it starts the CLI.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.unit.test_config_sources import API_KEY, CONFIG, SET


def test_outreach_check_refuses_sendgrid_without_key(tmp_path: Path) -> None:
    """The CLI reads the real environment: the same error, exit 2, no traceback."""
    (tmp_path / "config.yaml").write_text(CONFIG)
    (tmp_path / "rules").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OUTREACH_", "SENDGRID_", "TWILIO_"))}
    env.update(SET, OUTREACH_PROVIDERS__EMAIL="sendgrid", PYTHONWARNINGS="ignore")
    done = subprocess.run([sys.executable, "-m", "outreach", "check", "--project", str(tmp_path)],
                          capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert f"config.yaml:{API_KEY}: sendgrid.api_key: ${{SENDGRID_API_KEY}} is not set" in done.stderr
