"""The engine served as users run it (`outreach run` in a child process) and a kept-alive HTTP client
for the webhook benchmarks: the client is another process, so that it does not share the server's GIL.

The scheduler inside `outreach run` plans and dispatches at start; its intervals are set long
(`QUIET`) and the start-up jobs are waited out, so that the timing is the webhooks' own."""

from __future__ import annotations

import http.client
import math
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from common import ROOT

# config overrides: no re-plan or dispatch poll while the bench posts
QUIET = {"dispatch.plan_every": "1d", "dispatch.poll_every": "1d"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    base: str  # http://127.0.0.1:PORT
    pid: int

    def cpu(self) -> float:
        """Seconds of CPU the server process has used (user + system, all its threads). On a shared
        machine this moves much less than wall time: a busy neighbour delays the server, it does not
        make it work more."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def served(project: Path, settle: float = 2.0) -> Iterator[Server]:
    """`outreach run --project project` on a free port, once /healthz answers and the start-up jobs
    have had `settle` seconds. Its log is project/serve.log."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    log = (project / "serve.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "outreach.cli", "run", "--project", str(project),
                             "--port", str(port)], stdout=log, stderr=subprocess.STDOUT, env=env, cwd=project)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"outreach run exited ({proc.returncode}); see {project / 'serve.log'}:\n"
                                 + (project / "serve.log").read_text()[-3000:])
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("outreach run did not answer /healthz within 120 s")
            time.sleep(0.2)
        time.sleep(settle)
        yield Server(base, proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


class Client:
    """One kept-alive connection: POSTs answer (status, body)."""

    def __init__(self, base: str) -> None:
        host = base.split("://", 1)[1]
        # long: on a 10,000,000-row database one batch took over a minute; the bench should say how long
        self.conn = http.client.HTTPConnection(host, timeout=900)

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        self.conn.request("POST", path, body, headers)
        response = self.conn.getresponse()
        return response.status, response.read()

    def close(self) -> None:
        self.conn.close()


def percentile(values: list[float], p: float) -> float:
    """The nearest-rank percentile (p in 0..100) of `values`."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]
