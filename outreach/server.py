"""`outreach run` and `outreach worker`: the scheduler, and for `run` the web app, in one process.
SIGTERM or Ctrl-C stops taking new work and lets in-flight sends finish."""

from __future__ import annotations

import logging
import re
import signal
import socket
import threading
from urllib.parse import urlsplit, urlunsplit

from outreach.engine import Engine
from outreach.errors import OutreachError
from outreach.project import Project
from outreach.reload import watch_rules
from outreach.scheduler import start_scheduler
from outreach.workers import Heartbeat

log = logging.getLogger(__name__)
# tokens that travel in URLs: Inbound Parse's ?token=, the unsubscribe and click links' path
_QUERY_TOKEN = re.compile(r"([?&](?:token|access_token|key|sig|signature)=)[^&#\s]*", re.IGNORECASE)
_PATH_TOKEN = re.compile(r"(/unsubscribe/|/c/)[^/?#\s]+")


def redact(text: str) -> str:
    return _PATH_TOKEN.sub(r"\1[redacted]", _QUERY_TOKEN.sub(r"\1[redacted]", text))


class RedactTokens(logging.Filter):
    """Keeps the tokens in request URLs out of uvicorn's access log (and out of whatever ships it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


def install_log_redaction() -> None:
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactTokens) for f in access.filters):
        access.addFilter(RedactTokens())


def listen(project: Project, port: int | None) -> socket.socket:
    """The web app's socket, bound before anything else starts. Port 0 (`--port 0` or server.port: 0)
    takes a free port the system picks; a server.public_url on port 0 then takes that port too, so
    links and callbacks point here (tests and side-by-side local runs read it from the log line)."""
    s = project.settings.server
    wanted = s.port if port is None else port
    sock = socket.socket(socket.AF_INET6 if ":" in s.host else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restart may rebind at once, as uvicorn does
    try:
        sock.bind((s.host, wanted))
    except OSError as exc:
        sock.close()
        raise OutreachError(f"cannot listen on {s.host}:{wanted}: {exc.strerror}") from None
    bound = int(sock.getsockname()[1])
    public = urlsplit(s.public_url)
    if public.port == 0:
        host = f"[{public.hostname}]" if ":" in (public.hostname or "") else public.hostname or s.host
        url = urlunsplit(public._replace(netloc=f"{host}:{bound}"))
        project.settings = project.settings.model_copy(update={"server": s.model_copy(update={"public_url": url})})
    return sock


def serve(project: Project, *, port: int | None = None, web: bool = True) -> None:
    sock = listen(project, port) if web else None
    engine = Engine(project)
    # registered before the first claim, beating from its own thread (a long send batch does not stop it)
    heart = Heartbeat(engine.db, engine.worker_id, project.settings.dispatch.worker_timeout)
    heart.start()
    scheduler, jobs = start_scheduler(engine)
    watcher = watch_rules(project)  # rules/ and content/ changes, and SIGHUP
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        # uvicorn takes these while it serves, then restores ours and raises the signal again: ours
        # only notes it, so the sends in flight finish below instead of the process dying mid-batch
        signal.signal(sig, lambda *_: stop.set())
    try:
        if sock is not None:
            # a worker has no web app: FastAPI and the pages are imported only where they are served
            import uvicorn

            from outreach.web.app import create_app

            s, bound = project.settings.server, int(sock.getsockname()[1])
            host = f"[{s.host}]" if ":" in s.host else s.host
            log.info("serving on http://%s:%d (webhooks at %s)", host, bound, s.public_url)
            # the client's address comes from server.trusted_proxies (web/guards.py), never from
            # uvicorn's own trust in X-Forwarded-For
            config = uvicorn.Config(create_app(engine), host=s.host, port=bound, log_level="info",
                                    proxy_headers=False)
            install_log_redaction()  # after uvicorn.Config, which configures its loggers
            server = uvicorn.Server(config)

            def end_serving() -> None:  # a signal that came before uvicorn took over ends the serving too
                stop.wait()
                server.should_exit = True

            threading.Thread(target=end_serving, name="stop-web", daemon=True).start()
            server.run(sockets=[sock])
        else:
            log.info("worker %s running", engine.worker_id)
            stop.wait()
    finally:
        log.info("stopping: finishing in-flight sends, claiming nothing more")
        jobs.dispatcher.stop.set()
        watcher.stop()
        scheduler.shutdown(wait=True)
        heart.stop()  # the sends in flight are settled: what is left `sending` is settled, the row deleted

