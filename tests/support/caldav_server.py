"""A real CalDAV server for the calendar tests: Radicale (from PyPI) on a free local port, storing in a
temporary folder, any user and password accepted."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def radicale(folder: Path) -> Iterator[str]:
    """Yield the server's base URL (http://127.0.0.1:PORT/) while it runs."""
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "radicale", "--server-hosts", f"127.0.0.1:{port}",
                             "--storage-filesystem-folder", str(folder), "--auth-type", "none",
                             "--rights-type", "owner_only", "--logging-level", "warning"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(url + ".well-known/caldav", timeout=1)
                break
            except OSError as exc:
                if getattr(exc, "code", None):  # an HTTP answer: the server is up
                    break
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("radicale did not start: " + (proc.stderr.read().decode() if proc.stderr
                                                                      else "")) from exc
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
