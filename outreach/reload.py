"""Safe reload for `outreach run` and `outreach worker`: watch rules/ and content/ (polling their
mtimes: no extra dependency, works on every file system) and reload on SIGHUP. A change that fails
validation is logged with its FILE:LINE problems and the last good rules and templates keep running."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

from outreach.checks.project import reload_rules
from outreach.errors import Problem
from outreach.project import Project
from outreach.templating import freeze, snapshot, thaw

log = logging.getLogger(__name__)
Stamp = tuple[tuple[str, int, int], ...]


def stamp(project: Project) -> Stamp:
    """(file, mtime, size) of every rule file and template: any edit, addition or removal changes it."""
    files = [*project.rules_dir.glob("*.yaml"), *project.rules_dir.glob("*.yml")]
    if project.content_dir.is_dir():
        files += [p for p in project.content_dir.rglob("*") if p.is_file()]
    out = []
    for path in files:
        try:
            st = path.stat()
        except OSError:  # removed while we looked: the next poll sees it gone
            continue
        out.append((str(path), st.st_mtime_ns, st.st_size))
    return tuple(sorted(out))


class RulesWatcher:
    """Polls every `interval` seconds in a daemon thread; `wake()` (SIGHUP) reloads at once."""

    def __init__(self, project: Project, interval: float = 2.0) -> None:
        self.project = project
        self.interval = interval
        self.last_problems: list[Problem] = []
        self._stamp = stamp(project)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        freeze(project.content_dir)  # render what was validated when the project opened

    def poll(self, force: bool = False) -> list[Problem] | None:
        """Reload if something changed (or if forced); None: nothing changed, []: reloaded,
        else the problems that kept the last good rules in place."""
        current = stamp(self.project)
        if not force and current == self._stamp:
            return None
        self._stamp = current
        log.info("rules/ or content/ changed: validating before reloading")
        before = snapshot(self.project.content_dir)
        problems = reload_rules(self.project)  # logs each problem, swaps only if all is valid
        self.last_problems = problems
        if problems:
            return problems
        if snapshot(self.project.content_dir) == before:
            freeze(self.project.content_dir, before)
        else:  # a template changed while we validated: keep the old ones and validate again
            self._stamp = ()
        return []

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> RulesWatcher:
        self._thread = threading.Thread(target=self._run, name="rules-watcher", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        thaw(self.project.content_dir)

    def _run(self) -> None:
        while not self._stop.is_set():
            forced = self._wake.wait(self.interval)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                self.poll(force=forced)
            except Exception:  # the watcher must outlive any surprise
                log.exception("reloading the rules failed; the last good rules keep running")


def watch_rules(project: Project, interval: float = 2.0) -> RulesWatcher:
    """Start watching; on SIGHUP (where there is one) reload at once."""
    watcher = RulesWatcher(project, interval).start()
    if hasattr(signal, "SIGHUP") and threading.current_thread() is threading.main_thread():
        def on_hup(*_: Any) -> None:
            log.info("SIGHUP: reloading the rules")
            watcher.wake()

        signal.signal(signal.SIGHUP, on_hup)
    return watcher
