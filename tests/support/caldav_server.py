"""A real CalDAV server for the calendar tests: Radicale (from PyPI) storing in a temporary folder, any
user and password accepted, served in a thread of the test's process.

It binds to a port the system picks (port 0) and the port is read back from the bound socket, never
probed beforehand (a probed port may be taken by someone else before the bind). Radicale's own command
line refuses port 0, so its WSGI application is served here by the standard library's server, the
one Radicale's own server is built on."""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from radicale import Application, config


class _Server(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a client that keeps its connection open does not hold up the shutdown


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # one line per request on stderr otherwise
        pass


@contextmanager
def radicale(folder: Path) -> Iterator[str]:
    """Yield the server's base URL (http://127.0.0.1:PORT/) while it runs."""
    configuration = config.load()
    configuration.update({"storage": {"filesystem_folder": str(folder)}, "auth": {"type": "none"},
                          "rights": {"type": "owner_only"}}, "tests/support/caldav_server.py", privileged=True)
    server = make_server("127.0.0.1", 0, Application(configuration), server_class=_Server,
                         handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
