"""`outreach run` and `outreach worker`: the scheduler, and for `run` the web app, in one process.
SIGTERM or Ctrl-C stops taking new work and lets in-flight sends finish."""

from __future__ import annotations

import logging
import signal
import threading

from outreach.engine import Engine
from outreach.project import Project
from outreach.reload import watch_rules
from outreach.scheduler import start_scheduler

log = logging.getLogger(__name__)


def serve(project: Project, *, port: int | None = None, web: bool = True) -> None:
    engine = Engine(project)
    scheduler, jobs = start_scheduler(engine)
    watcher = watch_rules(project)  # rules/ and content/ changes, and SIGHUP
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        # uvicorn takes these while it serves, then restores ours and raises the signal again: ours
        # only notes it, so the sends in flight finish below instead of the process dying mid-batch
        signal.signal(sig, lambda *_: stop.set())
    try:
        if web:
            # a worker has no web app: FastAPI and the pages are imported only where they are served
            import uvicorn

            from outreach.web.app import create_app

            s = project.settings.server
            log.info("serving on http://%s:%s (webhooks at %s)", s.host, port or s.port, s.public_url)
            server = uvicorn.Server(uvicorn.Config(create_app(engine), host=s.host, port=port or s.port,
                                                   log_level="info"))
            def end_serving() -> None:  # a signal that came before uvicorn took over ends the serving too
                stop.wait()
                server.should_exit = True

            threading.Thread(target=end_serving, name="stop-web", daemon=True).start()
            server.run()
        else:
            log.info("worker %s running", engine.worker_id)
            stop.wait()
    finally:
        log.info("stopping: finishing in-flight sends, claiming nothing more")
        jobs.dispatcher.stop.set()
        watcher.stop()
        scheduler.shutdown(wait=True)

