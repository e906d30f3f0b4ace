"""The job store: one SQL table of jobs and one of their events, the source of truth for every job.

SQLite under the data dir by default, PostgreSQL by URL. Every state change is one conditional UPDATE whose
WHERE clause names the state it expects (status, attempt), so two workers or two recovery sweeps racing for the
same job cannot both win: exactly one UPDATE matches a row, the other sees rowcount 0 and backs off.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Mapped, Session, mapped_column
from sqlalchemy.sql import ColumnElement

from worker.records import CANCELLED, QUEUED, RUNNING, Job, JobEvent, utcnow
from worker.sidetables import Base, SqlStore, make_engine

_SCHEMA_LOCK_KEY = 0x706C6179  # "play": serialises CREATE TABLE between processes starting at once on PostgreSQL


class JobRow(Base):
    __tablename__ = "playground_jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner: Mapped[str] = mapped_column(String(200), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    spec: Mapped[dict] = mapped_column(JSON)
    queue: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    queued_at: Mapped[datetime | None] = mapped_column(DateTime)
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime)
    step: Mapped[int] = mapped_column(Integer, default=0)
    total_steps: Mapped[int | None] = mapped_column(Integer)
    epoch: Mapped[float | None] = mapped_column(Float)
    eta_seconds: Mapped[float | None] = mapped_column(Float)
    phase: Mapped[str | None] = mapped_column(String(40))  # what a running job does now (engine.progress.PHASES)
    error: Mapped[str | None] = mapped_column(Text)
    hint: Mapped[str | None] = mapped_column(Text)
    summary: Mapped[dict | None] = mapped_column(JSON)
    artifact_dir: Mapped[str] = mapped_column(String(500))  # relative to the data dir, which hosts mount anywhere
    worker_host: Mapped[str | None] = mapped_column(String(255))
    worker_name: Mapped[str | None] = mapped_column(String(255))
    worker_pid: Mapped[int | None] = mapped_column(Integer)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    sends: Mapped[int] = mapped_column(Integer, default=0)
    task_id: Mapped[str | None] = mapped_column(String(64))
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    cancel_requested_at: Mapped[datetime | None] = mapped_column(DateTime)


class EventRow(Base):
    __tablename__ = "playground_job_events"
    __table_args__ = (Index("ix_playground_job_events_job_id_id", "job_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(String(32), ForeignKey("playground_jobs.id", ondelete="CASCADE"))
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    kind: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(DateTime)
    step: Mapped[int | None] = mapped_column(Integer)
    total_steps: Mapped[int | None] = mapped_column(Integer)
    epoch: Mapped[float | None] = mapped_column(Float)
    loss: Mapped[float | None] = mapped_column(Float)
    learning_rate: Mapped[float | None] = mapped_column(Float)
    metrics: Mapped[dict | None] = mapped_column(JSON)
    message: Mapped[str | None] = mapped_column(Text)


class JobStore(SqlStore):
    """Reads and writes job records; safe to share between threads, re-connects after a fork."""

    tables = (JobRow.__table__, EventRow.__table__)
    schema_lock_key = _SCHEMA_LOCK_KEY

    def __init__(self, url: str, home: Path):  # no super().__init__: the engine is made on first use, per process
        self.url = url
        self.home = home
        self._engine: Engine | None = None
        self._pid = -1

    @property
    def engine(self) -> Engine:  # type: ignore[override]
        # A pooled connection must never cross a fork (Celery's prefork children): each process opens its own.
        if self._engine is None or self._pid != os.getpid():
            self._engine = make_engine(self.url)
            self._pid = os.getpid()
        return self._engine

    def close(self) -> None:
        """Close pooled connections."""
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    # ---- reading -------------------------------------------------------------------------------------------------

    def get(self, job_id: str) -> Job | None:
        """The job with this id, or None."""
        with self._session(write=False) as s:
            row = s.get(JobRow, job_id)
            if row is None:
                return None
            position = self._position(s, row) if row.status == QUEUED else None
            return self._job(row, position)

    def find(self, id_or_prefix: str) -> list[str]:
        """Ids equal to, or starting with, `id_or_prefix` (at most 10)."""
        pattern = id_or_prefix.replace("\\", "").replace("%", "").replace("_", "\\_") + "%"
        with self._session(write=False) as s:
            rows = s.execute(select(JobRow.id).where(JobRow.id.like(pattern, escape="\\")).limit(10)).scalars()
            return list(rows)

    def list(self, owner: str | None = None, statuses: tuple[str, ...] = (), limit: int = 200) -> list[Job]:
        """Jobs, newest first, optionally of one owner and some statuses."""
        query = select(JobRow).order_by(JobRow.created_at.desc(), JobRow.id).limit(limit)
        if owner is not None:
            query = query.where(JobRow.owner == owner)
        if statuses:
            query = query.where(JobRow.status.in_(statuses))
        with self._session(write=False) as s:
            rows = list(s.execute(query).scalars())
            positions = self._positions(s) if any(r.status == QUEUED for r in rows) else {}
            return [self._job(row, positions.get(row.id)) for row in rows]

    def events(self, job_id: str, since: int = 0, limit: int = 1000) -> list[JobEvent]:
        """Events of one job with an id above `since`, oldest first."""
        query = (
            select(EventRow).where(EventRow.job_id == job_id, EventRow.id > since).order_by(EventRow.id).limit(limit)
        )
        with self._session(write=False) as s:
            return [_event(row) for row in s.execute(query).scalars()]

    def running_with_stale_heartbeat(self, cutoff: datetime) -> list[Job]:
        """Running jobs whose last heartbeat is older than `cutoff`: their worker is gone."""
        query = select(JobRow).where(JobRow.status == RUNNING, JobRow.heartbeat_at < cutoff)
        with self._session(write=False) as s:
            return [self._job(row) for row in s.execute(query).scalars()]

    def cancel_overdue(self, cutoff: datetime) -> list[Job]:
        """Running jobs asked to cancel before `cutoff` that are still running."""
        query = select(JobRow).where(
            JobRow.status == RUNNING, JobRow.cancel_requested.is_(True), JobRow.cancel_requested_at < cutoff
        )
        with self._session(write=False) as s:
            return [self._job(row) for row in s.execute(query).scalars()]

    def queued_since_before(self, cutoff: datetime) -> list[Job]:
        """Queued jobs last sent to the broker before `cutoff`."""
        query = select(JobRow).where(JobRow.status == QUEUED, JobRow.queued_at < cutoff)
        with self._session(write=False) as s:
            return [self._job(row) for row in s.execute(query).scalars()]

    # ---- writing -------------------------------------------------------------------------------------------------

    def create(self, *, job_id: str, owner: str, kind: str, spec: dict, queue: str, max_attempts: int) -> Job:
        """Record a new queued job; the caller sends its first message with task id `<job_id>.1`."""
        now = utcnow()
        row = JobRow(
            id=job_id,
            owner=owner,
            kind=kind,
            spec=spec,
            queue=queue,
            status=QUEUED,
            created_at=now,
            queued_at=now,
            artifact_dir=f"jobs/{job_id}",
            max_attempts=max_attempts,
            sends=1,
            task_id=task_id_for(job_id, 1),
            step=0,
            attempts=0,
            cancel_requested=False,
        )
        with self._session() as s:
            s.add(row)
            s.flush()
            s.add(_status_event(job_id, 0, f"queued on '{queue}' by {owner}"))
        return self.get(job_id)  # type: ignore[return-value]

    def claim(self, job_id: str, *, task_id: str, host: str, name: str, pid: int) -> Job | None:
        """Move a queued job to running for this worker; None when another worker has it or it is finished."""
        now = utcnow()
        with self._session() as s:
            row: JobRow | None = None

            def running() -> list[EventRow]:
                nonlocal row  # kept here, not only in the session's weak identity map, for the return below
                row = s.get(JobRow, job_id)  # loaded after the UPDATE: it carries the new attempt number
                assert row is not None
                return [_status_event(job_id, row.attempts, f"running on {host} (pid {pid}), attempt {row.attempts}")]

            claimed = _transition(
                s,
                job_id,
                where=[JobRow.status == QUEUED, JobRow.cancel_requested.is_(False)],
                values=dict(
                    status=RUNNING,
                    attempts=JobRow.attempts + 1,
                    started_at=func.coalesce(JobRow.started_at, now),
                    heartbeat_at=now,
                    worker_host=host,
                    worker_name=name,
                    worker_pid=pid,
                    task_id=task_id,
                ),
                events=running,
            )
            return self._job(row) if claimed and row is not None else None

    def heartbeat(self, job_id: str, attempt: int, *, beat: bool) -> tuple[bool, bool]:
        """(still ours, cancel requested) for the running attempt; with `beat` also refresh its heartbeat."""
        with self._session() as s:
            if beat:
                _transition(s, job_id, where=_lease(attempt), values=dict(heartbeat_at=utcnow()))
            row = s.execute(
                select(JobRow.status, JobRow.attempts, JobRow.cancel_requested).where(JobRow.id == job_id)
            ).one_or_none()
        if row is None:
            return False, False
        return row.status == RUNNING and row.attempts == attempt, bool(row.cancel_requested)

    def record_progress(self, job_id: str, attempt: int, progress: dict[str, Any], events: list[dict]) -> bool:
        """Write progress fields and new history events of the running attempt; False when it is no longer ours."""
        now = utcnow()
        with self._session() as s:
            return _transition(
                s,
                job_id,
                where=_lease(attempt),
                values=dict(heartbeat_at=now, **progress),
                events=lambda: (EventRow(job_id=job_id, attempt=attempt, at=now, **ev) for ev in events),
            )

    def finish(
        self,
        job_id: str,
        attempt: int,
        status: str,
        *,
        message: str,
        error: str | None = None,
        hint: str | None = None,
        summary: dict | None = None,
    ) -> bool:
        """End the running attempt in a terminal status; False when the job is no longer this attempt's."""
        with self._session() as s:
            return _transition(
                s,
                job_id,
                where=_lease(attempt),
                values=dict(status=status, finished_at=utcnow(), error=error, hint=hint, summary=summary or {}),
                events=_status(job_id, attempt, message),
            )

    def request_cancel(self, job_id: str) -> bool:
        """Cancel a queued job at once, or flag a running one; False when the job is already finished."""
        now = utcnow()
        with self._session() as s:
            if _transition(
                s,
                job_id,
                where=[JobRow.status == QUEUED],
                values=dict(status=CANCELLED, cancel_requested=True, cancel_requested_at=now, finished_at=now),
                events=_status(job_id, None, "cancelled before it started"),
            ):
                return True
            if _transition(
                s,
                job_id,
                where=[JobRow.status == RUNNING, JobRow.cancel_requested.is_(False)],
                values=dict(cancel_requested=True, cancel_requested_at=now),
                events=_status(job_id, None, "cancel requested; stopping at the next training step"),
            ):
                return True
            status = s.execute(select(JobRow.status).where(JobRow.id == job_id)).scalar_one_or_none()
            return status == RUNNING  # already flagged: still on its way out

    def requeue_stale(self, job: Job, cutoff: datetime, *, task_id: str, reason: str) -> bool:
        """Put a running job silent since before `cutoff` back to queued, to be resumed; racing sweeps are safe."""
        with self._session() as s:
            return _transition(
                s,
                job.id,
                where=[*_lease(job.attempts), JobRow.heartbeat_at < cutoff],
                values=dict(
                    status=QUEUED, queued_at=utcnow(), task_id=task_id, sends=JobRow.sends + 1, eta_seconds=None
                ),
                events=_status(job.id, job.attempts, reason),
            )

    def end_running(
        self,
        job: Job,
        status: str,
        *,
        message: str,
        error: str | None = None,
        hint: str | None = None,
        stale_before: datetime | None = None,
    ) -> bool:
        """End a running job from outside its worker (dead worker, overdue cancel), if it is still that attempt."""
        conditions = _lease(job.attempts)
        if stale_before is not None:
            conditions.append(JobRow.heartbeat_at < stale_before)
        with self._session() as s:
            return _transition(
                s,
                job.id,
                where=conditions,
                values=dict(status=status, finished_at=utcnow(), error=error, hint=hint, eta_seconds=None),
                events=_status(job.id, job.attempts, message),
            )

    def mark_resent(self, job: Job, *, task_id: str) -> bool:
        """Record that a queued job's lost message is sent again as `task_id`; only one sweep wins."""
        with self._session() as s:
            return _transition(
                s,
                job.id,
                where=[JobRow.status == QUEUED, JobRow.task_id == job.task_id],
                values=dict(task_id=task_id, queued_at=utcnow(), sends=JobRow.sends + 1),
                events=_status(job.id, job.attempts, "its broker message was lost; sent again"),
            )

    def add_event(self, job_id: str, attempt: int | None, message: str) -> None:
        """Append a free-text status event (shown by `playground jobs follow`)."""
        with self._session() as s:
            s.add(_status_event(job_id, attempt, message))

    def delete_finished(self, job_id: str) -> bool:
        """Remove a finished job's record and events; False when it is not there, or still queued or running."""
        finished = select(JobRow.id).where(JobRow.id == job_id, JobRow.status.notin_((QUEUED, RUNNING)))
        plain = {"synchronize_session": False}
        with self._session() as s:
            s.execute(delete(EventRow).where(EventRow.job_id.in_(finished)).execution_options(**plain))
            return s.execute(delete(JobRow).where(JobRow.id.in_(finished)).execution_options(**plain)).rowcount == 1

    # ---- helpers -------------------------------------------------------------------------------------------------

    def _job(self, row: JobRow, position: int | None = None) -> Job:
        return Job(
            id=row.id,
            owner=row.owner,
            kind=row.kind,
            spec=dict(row.spec or {}),
            queue=row.queue,
            status=row.status,
            created_at=row.created_at,
            queued_at=row.queued_at,
            started_at=row.started_at,
            finished_at=row.finished_at,
            heartbeat_at=row.heartbeat_at,
            step=row.step or 0,
            total_steps=row.total_steps,
            epoch=row.epoch,
            eta_seconds=row.eta_seconds,
            phase=row.phase,
            error=row.error,
            hint=row.hint,
            summary=dict(row.summary or {}),
            artifact_dir=self.home / row.artifact_dir,
            worker_host=row.worker_host,
            worker_name=row.worker_name,
            worker_pid=row.worker_pid,
            attempts=row.attempts or 0,
            max_attempts=row.max_attempts,
            sends=row.sends or 0,
            task_id=row.task_id,
            cancel_requested=bool(row.cancel_requested),
            cancel_requested_at=row.cancel_requested_at,
            position=position,
        )

    @staticmethod
    def _position(s: Session, row: JobRow) -> int:
        ahead = s.execute(
            select(func.count())
            .select_from(JobRow)
            .where(JobRow.status == QUEUED, JobRow.queue == row.queue, JobRow.queued_at < row.queued_at)
        ).scalar_one()
        return int(ahead) + 1

    @staticmethod
    def _positions(s: Session) -> dict[str, int]:
        rows = s.execute(
            select(JobRow.id, JobRow.queue).where(JobRow.status == QUEUED).order_by(JobRow.queued_at, JobRow.id)
        ).all()
        seen: dict[str, int] = {}
        positions = {}
        for job_id, queue in rows:
            seen[queue] = seen.get(queue, 0) + 1
            positions[job_id] = seen[queue]
        return positions


def task_id_for(job_id: str, send: int) -> str:
    """The broker task id of a job's n-th message; the job id can be read back from it."""
    return f"{job_id}.{send}"


def job_id_of(task_id: str) -> str:
    """The job id inside a broker task id."""
    return task_id.rsplit(".", 1)[0]


def _transition(
    session: Session,
    job_id: str,
    *,
    where: Iterable[ColumnElement[bool]],
    values: dict[str, Any],
    events: Callable[[], Iterable[EventRow]] | None = None,
) -> bool:
    """Set `values` on the job if it still matches `where`, then add `events()`; False (no events) if it did not."""
    # Every state change goes through here (see the module docstring); `events` are built only once the UPDATE won.
    result = session.execute(
        update(JobRow).where(JobRow.id == job_id, *where).values(**values).execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return False
    if events is not None:
        session.add_all(events())
    return True


def _lease(attempt: int) -> list[ColumnElement[bool]]:
    # The lease: only the attempt that claimed the job may write to it while it runs.
    return [JobRow.status == RUNNING, JobRow.attempts == attempt]


def _status(job_id: str, attempt: int | None, message: str) -> Callable[[], list[EventRow]]:
    # Built when called, after the UPDATE, so that the event's time follows the change it records.
    return lambda: [_status_event(job_id, attempt, message)]


def _status_event(job_id: str, attempt: int | None, message: str) -> EventRow:
    return EventRow(job_id=job_id, attempt=attempt or 0, kind="status", at=utcnow(), message=message)


def _event(row: EventRow) -> JobEvent:
    return JobEvent(
        id=row.id,
        job_id=row.job_id,
        attempt=row.attempt,
        kind=row.kind,
        at=row.at,
        step=row.step,
        total_steps=row.total_steps,
        epoch=row.epoch,
        loss=row.loss,
        learning_rate=row.learning_rate,
        metrics=dict(row.metrics or {}),
        message=row.message,
    )
