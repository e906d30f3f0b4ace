"""The job store's numbers for monitoring: jobs by status and kind, queue depths, and when recent jobs waited and ran.

Read-only aggregates over the jobs table, for the web app's /metrics and System view; each is one query in the store's
read session (which takes no lock on SQLite), so a scrape never holds up a worker.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select

from worker.records import QUEUED, TERMINAL
from worker.store import JobRow, JobStore


@dataclass(frozen=True)
class JobTimes:
    """When one job was created, started and finished (naive UTC; None where it has not yet)."""

    kind: str
    status: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @property
    def wait_seconds(self) -> float | None:
        """Started minus created: the time spent queued before its first start."""
        return _seconds(self.created_at, self.started_at)

    @property
    def run_seconds(self) -> float | None:
        """Finished minus started, for a job that ended after starting (a resumed job counts its time requeued)."""
        return _seconds(self.started_at, self.finished_at) if self.status in TERMINAL else None


def job_counts(store: JobStore) -> dict[tuple[str, str], int]:
    """{(status, kind): number of jobs} over the whole store."""
    query = select(JobRow.status, JobRow.kind, func.count()).group_by(JobRow.status, JobRow.kind)
    with store._session(write=False) as s:  # the store's own read session: no lock on SQLite
        return {(status, kind): int(count) for status, kind, count in s.execute(query)}


def queue_depths(store: JobStore) -> dict[str, int]:
    """{queue: queued jobs} for every queue that has any."""
    query = select(JobRow.queue, func.count()).where(JobRow.status == QUEUED).group_by(JobRow.queue)
    with store._session(write=False) as s:
        return {queue: int(count) for queue, count in s.execute(query)}


def job_times(store: JobStore, since: datetime) -> list[JobTimes]:
    """Jobs that started or finished at or after `since`, with their timestamps."""
    columns = (JobRow.kind, JobRow.status, JobRow.created_at, JobRow.started_at, JobRow.finished_at)
    query = select(*columns).where(or_(JobRow.started_at >= since, JobRow.finished_at >= since))
    with store._session(write=False) as s:
        return [JobTimes(*row) for row in s.execute(query)]


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return max(0.0, (end - start).total_seconds())  # hosts' clocks may disagree by a little; never below zero
