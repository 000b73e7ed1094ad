"""Worker heartbeats, as job queues on PostgreSQL keep them. Every dispatching process (`outreach run`,
`outreach worker`) has a row in `worker` and beats it from its own thread, so a long send batch never
stops the beat. Each beat also looks for workers whose beat is older than `dispatch.worker_timeout`:
their `sending` touches (Touch.claimed_by) are settled by the dispatcher's rule (the provider's
recorded answer makes one `sent`, else `uncertain`; never re-sent) and their rows deleted. A worker
that stops cleanly settles what it left itself and deletes its own row."""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, delete, insert, select, update
from sqlmodel import col

from outreach.db import rows_changed, session_scope
from outreach.dispatcher import settle
from outreach.models import Touch, Worker

log = logging.getLogger(__name__)


def new_worker_id() -> str:
    """host:pid and a random part: a restarted container has the same host name and often pid 1."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def register(engine: Engine, worker_id: str, now: datetime) -> None:
    """The worker's row, beaten now (again, if the others took it for dead and deleted it)."""
    with session_scope(engine) as s:
        if rows_changed(s.execute(update(Worker).where(col(Worker.id) == worker_id).values(beat_at=now))):
            return
        host, _, rest = worker_id.partition(":")
        pid = rest.partition(":")[0]
        s.execute(insert(Worker).values(id=worker_id, host=host, pid=int(pid) if pid.isdigit() else os.getpid(),
                                        started_at=now, beat_at=now))


def beat(engine: Engine, worker_id: str, now: datetime) -> bool:
    """Beat the worker's row; False when it was gone (the others took this worker for dead)."""
    with session_scope(engine) as s:
        return rows_changed(s.execute(update(Worker).where(col(Worker.id) == worker_id).values(beat_at=now))) > 0


@dataclass
class Settled:
    workers: list[str]  # the dead workers whose rows were deleted
    uncertain: int  # their touches that became uncertain (the rest, with an answer, became sent)


def settle_dead(engine: Engine, now: datetime, timeout: timedelta) -> Settled:
    """Settle the touches of workers whose beat is older than `timeout`, and delete their rows. Any
    live process may run it at any time: both UPDATEs only take touches still `sending`."""
    cutoff = now - timeout
    with session_scope(engine) as s:
        dead = [w for (w,) in s.execute(select(col(Worker.id)).where(col(Worker.beat_at) < cutoff))]
        if not dead:  # the common case: one look at a table of a few rows
            return Settled([], 0)
        uncertain = settle(s, col(Touch.claimed_by).in_(dead), now, "its worker stopped beating while sending")
        # only rows still stale: a worker that beat again meanwhile keeps its row
        s.execute(delete(Worker).where(col(Worker.id).in_(dead), col(Worker.beat_at) < cutoff))
    return Settled(dead, uncertain)


def retire(engine: Engine, worker_id: str, now: datetime) -> int:
    """A clean stop, after the sends in flight finished: what this worker still holds `sending` (an
    answer it could not record) is settled by the same rule, and its row deleted."""
    with session_scope(engine) as s:
        uncertain = settle(s, col(Touch.claimed_by) == worker_id, now, "its worker stopped while sending")
        s.execute(delete(Worker).where(col(Worker.id) == worker_id))
    return uncertain


class Heartbeat:
    """The beating thread of one process: register, then every `timeout / 6` beat and settle the dead;
    `stop()` retires the worker. Database errors are logged and the next beat tries again."""

    def __init__(self, engine: Engine, worker_id: str, timeout: timedelta,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.engine, self.worker_id, self.timeout, self.clock = engine, worker_id, timeout, clock
        self.every = timeout.total_seconds() / 6
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)

    def start(self) -> None:
        register(self.engine, self.worker_id, self.clock())
        self._thread.start()

    def tick(self) -> None:
        now = self.clock()
        if not beat(self.engine, self.worker_id, now):
            log.warning("worker %s was taken for dead (no beat for %s): registering again",
                        self.worker_id, self.timeout)
            register(self.engine, self.worker_id, now)
        done = settle_dead(self.engine, now, self.timeout)
        if done.workers:
            log.warning("settled the touches of %d dead worker(s) (%s): %d marked uncertain", len(done.workers),
                        ", ".join(done.workers), done.uncertain)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.tick()
            except Exception:  # the database may be away: the next beat tries again
                log.exception("heartbeat of worker %s failed", self.worker_id)

    def stop(self) -> None:
        """Stop beating and retire: call it once the sends in flight have finished."""
        self._stop.set()
        self._thread.join()
        try:
            if left := retire(self.engine, self.worker_id, self.clock()):
                log.warning("stopping: %d touch(es) left without a recorded answer marked uncertain", left)
        except Exception:  # the row stays; the others take this worker for dead and settle it
            log.exception("could not retire worker %s", self.worker_id)
