"""`outreach run` in a subprocess on a port it picks itself (`server.port: 0`): the port is read back
from the server's own log line, never probed beforehand (a probed port may be taken before the bind)."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

# config overrides for make_project: listen on a port the system picks, and call back wherever that is
ANY_PORT: dict[str, object] = {"server.port": 0, "server.public_url": "http://127.0.0.1:0"}
_SERVING = re.compile(r"serving on (http://\S+)")


def start_run(root: Path, log: Path, env: Mapping[str, str] | None = None,
              timeout: float = 60.0) -> tuple[subprocess.Popen[bytes], str]:
    """Start `outreach run` for the project at `root`, its output to `log`; wait until it answers
    /healthz and return the process and its base URL (http://127.0.0.1:PORT)."""
    with log.open("w") as out:
        server = subprocess.Popen([sys.executable, "-m", "outreach.cli", "run", "--project", str(root)],
                                  env=None if env is None else dict(env), stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    try:
        base = ""
        while not base:
            found = _SERVING.search(log.read_text(errors="replace"))
            base = found.group(1) if found else ""
            if not base:
                _still_starting(server, log, deadline)
                time.sleep(0.05)
        while True:  # bound, but uvicorn listens a moment later
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    return server, base
            except httpx.HTTPError:
                pass
            _still_starting(server, log, deadline)
            time.sleep(0.1)
    except BaseException:
        server.kill()
        server.wait(timeout=30)
        raise


def _still_starting(server: subprocess.Popen[bytes], log: Path, deadline: float) -> None:
    if server.poll() is not None:
        raise RuntimeError(f"outreach run exited with {server.returncode}:\n{log.read_text(errors='replace')}")
    if time.monotonic() > deadline:
        raise TimeoutError(f"outreach run did not answer in time:\n{log.read_text(errors='replace')}")
