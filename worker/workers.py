"""Worker heartbeats: every worker process records who it is, what it runs on and that it is still there.

A job's own heartbeat (worker/store.py) says a running job is alive; this table says a worker is, busy or idle. Each
`playground worker` beats every `heartbeat_seconds` from a thread of its parent process, and counts as alive while
its last beat is younger than `lease_seconds`: the same threshold after which the recovery sweep takes a silent
job's worker for dead. A worker that stops cleanly removes its row; one that died keeps it, shown as not alive, until
a live worker forgets it a day later.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import BigInteger, DateTime, Integer, String, delete, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Mapped, mapped_column

from worker.device import Device, probe_device
from worker.records import utcnow
from worker.settings import Settings
from worker.sidetables import Base, SqlStore

log = logging.getLogger("playground.heartbeat")

_SCHEMA_LOCK_KEY = 0x706C6177  # "plaw"
FORGET_AFTER = timedelta(days=1)  # a dead worker's row is shown as not alive this long, then dropped


class WorkerRow(Base):
    __tablename__ = "playground_workers"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)  # Celery's node name, as jobs record it
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    queues: Mapped[str] = mapped_column(String(1000))  # comma-separated
    concurrency: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(DateTime)
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    device: Mapped[str | None] = mapped_column(String(255))
    device_memory_used: Mapped[int | None] = mapped_column(BigInteger)  # bytes, over the GPUs it sees
    device_memory_total: Mapped[int | None] = mapped_column(BigInteger)
    ram_used: Mapped[int | None] = mapped_column(BigInteger)  # bytes, of the whole host
    ram_total: Mapped[int | None] = mapped_column(BigInteger)


@dataclass(frozen=True)
class WorkerInfo:
    """One worker as its last heartbeat described it."""

    name: str
    host: str
    pid: int
    queues: tuple[str, ...]
    concurrency: int
    started_at: datetime
    heartbeat_at: datetime
    device: Device

    def age(self, now: datetime | None = None) -> float:
        """Seconds since the last heartbeat (never negative, whatever the hosts' clocks say)."""
        return max(0.0, ((now or utcnow()) - self.heartbeat_at).total_seconds())

    def alive(self, lease_seconds: float, now: datetime | None = None) -> bool:
        """True while the last heartbeat is younger than the lease, the store's liveness threshold."""
        return self.age(now) < lease_seconds


class WorkerStore(SqlStore):
    """Record and read worker heartbeats on the job store's database."""

    tables = (WorkerRow.__table__,)
    schema_lock_key = _SCHEMA_LOCK_KEY

    def beat(self, info: WorkerInfo) -> None:
        """Record a heartbeat (the first one adds the worker), and forget workers silent for a day."""
        values = dict(
            host=info.host,
            pid=info.pid,
            queues=",".join(info.queues),
            concurrency=info.concurrency,
            started_at=info.started_at,
            heartbeat_at=info.heartbeat_at,
            device=info.device.name,
            device_memory_used=info.device.memory_used,
            device_memory_total=info.device.memory_total,
            ram_used=info.device.ram_used,
            ram_total=info.device.ram_total,
        )
        with self._session() as s:
            # Only this worker writes its own row, so update-then-insert cannot race with another writer of it.
            if s.execute(update(WorkerRow).where(WorkerRow.name == info.name).values(**values)).rowcount == 0:
                s.add(WorkerRow(name=info.name, **values))
            s.execute(delete(WorkerRow).where(WorkerRow.heartbeat_at < info.heartbeat_at - FORGET_AFTER))

    def forget(self, name: str) -> None:
        """Remove a worker that is stopping cleanly."""
        with self._session() as s:
            s.execute(delete(WorkerRow).where(WorkerRow.name == name))

    def list(self) -> list[WorkerInfo]:
        """Every recorded worker, alive or not, by host and name."""
        with self._session(write=False) as s:
            rows = s.execute(select(WorkerRow).order_by(WorkerRow.host, WorkerRow.name)).scalars()
            return [_info(row) for row in rows]


def _info(row: WorkerRow) -> WorkerInfo:
    return WorkerInfo(
        name=row.name,
        host=row.host,
        pid=row.pid,
        queues=tuple(q for q in row.queues.split(",") if q),
        concurrency=row.concurrency,
        started_at=row.started_at,
        heartbeat_at=row.heartbeat_at,
        device=Device(
            row.device or "unknown", row.device_memory_used, row.device_memory_total, row.ram_used, row.ram_total
        ),
    )


class WorkerBeat:
    """Records a worker's heartbeat until stopped: run by `python -m worker.workers` beside the worker.

    Not a thread of the worker itself: Celery forks a fresh child for every job, and a fork taken while a thread
    holds a lock (logging's, the database pool's) leaves the child stuck on it, so the job never starts.
    """

    def __init__(
        self,
        store: WorkerStore,
        settings: Settings,
        *,
        name: str,
        host: str,
        pid: int,
        queues: list[str],
        concurrency: int,
    ):
        self.store = store
        self.interval = settings.heartbeat_seconds
        self._who = dict(name=name, host=host, pid=pid, queues=tuple(queues), concurrency=concurrency)
        self._started_at = utcnow()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="worker-heartbeat", daemon=True)

    def beat(self) -> None:
        """Record one heartbeat now, with the device and memory as they are now."""
        info = WorkerInfo(**self._who, started_at=self._started_at, heartbeat_at=utcnow(), device=probe_device())
        try:
            self.store.beat(info)
        finally:
            # Job processes are forked from this one, and a pooled connection must never cross a fork: none stays
            # open between beats (one connection every few seconds costs next to nothing).
            self.store.engine.dispose()

    def start(self) -> None:
        """Beat once (the worker shows up at once), then keep beating from the thread."""
        self._beat_logged()
        self._thread.start()

    def halt(self) -> None:
        """Ask the beating to end (safe from a signal handler); `stop` then removes the row."""
        self._stop.set()

    def halted(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds; True once `halt` was called."""
        return self._stop.wait(timeout)

    def stop(self) -> None:
        """Stop beating and remove the worker's row: a clean stop is not a dead worker."""
        self._stop.set()
        self._thread.join(self.interval + 5)
        try:
            self.store.forget(self._who["name"])
        except SQLAlchemyError as exc:
            log.warning("could not remove this worker's heartbeat row (it will read as not alive): %s", exc)
        finally:
            self.store.engine.dispose()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._beat_logged()

    def _beat_logged(self) -> None:
        try:
            self.beat()
        except SQLAlchemyError as exc:  # the store is down for a moment: jobs keep running, the next beat retries
            log.warning("worker heartbeat not recorded, retrying in %.0f s: %s", self.interval, exc)


def main(argv: list[str] | None = None) -> int:
    """`python -m worker.workers --parent PID --name NODE ...`: the heartbeat process beside each worker."""
    import argparse
    import os
    import signal

    from worker.sidetables import make_engine

    parser = argparse.ArgumentParser(prog="python -m worker.workers", description=main.__doc__)
    parser.add_argument("--parent", type=int, required=True, help="the worker's pid: beat while it lives")
    parser.add_argument("--name", required=True, help="the worker's Celery node name")
    parser.add_argument("--host", required=True)
    parser.add_argument("--queues", required=True, help="comma-separated")
    parser.add_argument("--concurrency", type=int, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s: %(levelname)s/heartbeat] %(message)s")
    settings = Settings.from_env()
    store = WorkerStore(make_engine(settings.database))
    who = dict(name=args.name, host=args.host, pid=args.parent, queues=args.queues.split(","))
    beat = WorkerBeat(store, settings, **who, concurrency=args.concurrency)
    signal.signal(signal.SIGTERM, lambda *_: beat.halt())  # the worker stopping cleanly: forget its row
    beat.start()
    while not beat.halted(timeout=1.0):
        if os.getppid() != args.parent:  # the worker died without stopping us: leave its row to age out
            return 0
    beat.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
