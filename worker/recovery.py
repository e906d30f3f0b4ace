"""The recovery sweep: no job is lost, none runs twice at once. Every worker runs it on a timer; they may overlap.

One sweep looks at the store (the source of truth) and fixes three situations (and, far less often, `sweep_artifacts`
removes from the artifact store what no record names any more):

1. running, but no heartbeat for `lease_seconds`: its worker died. The job goes back to queued and is sent again; the
   next worker claims it and resumes from its last checkpoint. After `max_attempts` such deaths it is failed instead.
2. running with a cancel requested long ago: its process ignored both the cooperative stop and its own watchdog.
   It is marked cancelled and the process killed (Celery revoke with terminate on Redis; a local kill otherwise).
3. queued, and the broker no longer holds its message (Redis flushed or restarted without persistence, or a worker
   died holding it before the claim): the message is sent again.

Each fix is one conditional UPDATE naming the state the sweep saw, so when several sweeps race, one wins and only
the winner publishes. Duplicate messages are harmless anyway: a job is claimed with a conditional UPDATE too.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import random
import signal
import socket
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from celery import Celery

from worker import broker
from worker.app import create_app
from worker.artifacts import ArtifactStore
from worker.records import CANCELLED, FAILED, Job, utcnow
from worker.settings import Settings
from worker.store import JobStore, task_id_for
from worker.uploads import DatasetStore

log = logging.getLogger("playground.recovery")


@dataclass
class SweepReport:
    """Job ids acted on by one sweep."""

    resumed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    resent: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.resumed or self.failed or self.cancelled or self.resent)


def sweep(store: JobStore, app: Celery, settings: Settings, *, now: datetime | None = None) -> SweepReport:
    """Run one recovery pass over the store; safe to run from many workers at once."""
    now = now or utcnow()
    report = SweepReport()
    stale_before = now - timedelta(seconds=settings.lease_seconds)
    for job in store.running_with_stale_heartbeat(stale_before):
        _recover_dead_worker(store, app, settings, job, stale_before, report)

    # A job's own watchdog stops it at the grace period; this is the backstop for a process too stuck to do so.
    overdue_before = now - timedelta(seconds=2 * settings.cancel_grace_seconds + settings.heartbeat_seconds)
    for job in store.cancel_overdue(overdue_before):
        message = "cancelled: stopped by force by the recovery sweep, it ignored the cancel"
        if store.end_running(job, CANCELLED, message=message):
            report.cancelled.append(job.id)
            _kill(app, settings, job)

    resend_before = now - timedelta(seconds=settings.requeue_after_seconds)
    # A message a worker took but has not claimed yet is normally seconds from its claim; one held longer than a
    # lease belongs to a worker that died before claiming, and is as lost as a flushed one.
    delivered_before = now - timedelta(seconds=max(settings.requeue_after_seconds, settings.lease_seconds))
    queued = store.queued_since_before(resend_before)
    for queue in sorted({job.queue for job in queued}):
        messages = broker.messages_in(settings, queue)
        if messages is None:
            log.debug("cannot look inside queue %s on this broker; lost messages there are not re-sent", queue)
            continue
        for job in (j for j in queued if j.queue == queue):
            entries = messages.get(job.id, [])
            waiting = any(at is None for at in entries)
            being_started = any(at is not None and at >= delivered_before for at in entries)
            if waiting or being_started:
                continue
            task_id = task_id_for(job.id, job.sends + 1)
            if store.mark_resent(job, task_id=task_id):
                log.warning("job %s was queued but its broker message is gone; sending it again", job.id)
                broker.publish(app, job, task_id)
                report.resent.append(job.id)
    if report:
        log.info("recovery sweep: %s", report)
    return report


def _recover_dead_worker(
    store: JobStore, app: Celery, settings: Settings, job: Job, stale_before: datetime, report: SweepReport
) -> None:
    where = f"{job.worker_name or job.worker_host} (pid {job.worker_pid})"
    silent = f"no heartbeat since {job.heartbeat_at:%H:%M:%S} UTC" if job.heartbeat_at else "no heartbeat"
    if job.cancel_requested:
        if store.end_running(
            job, CANCELLED, message=f"cancelled; its worker {where} stopped responding", stale_before=stale_before
        ):
            report.cancelled.append(job.id)
        return
    if job.attempts >= job.max_attempts:
        error = f"its worker died {job.attempts} times (last {where}, {silent}); not retried again"
        hint = (
            "a worker process that dies on the same job is often out of memory: lower batch_size or max_length; "
            f"see `playground jobs logs {job.id}`"
        )
        if store.end_running(
            job, FAILED, message=f"failed: {error}", error=error, hint=hint, stale_before=stale_before
        ):
            report.failed.append(job.id)
        return
    task_id = task_id_for(job.id, job.sends + 1)
    reason = f"worker {where} stopped responding ({silent}); queued again to resume from its last checkpoint"
    if not store.requeue_stale(job, stale_before, task_id=task_id, reason=reason):
        return  # another sweep got there first, or the job came back to life
    log.warning("job %s: %s", job.id, reason)
    if job.task_id and not settings.embedded:
        # If that worker is alive but wedged, make sure it cannot carry on beside the resumed attempt.
        broker.revoke(app, job.task_id)
    broker.publish(app, job, task_id)
    report.resumed.append(job.id)


def _kill(app: Celery, settings: Settings, job: Job) -> None:
    if not settings.embedded and job.task_id:
        broker.revoke(app, job.task_id)
    elif job.worker_host == socket.gethostname() and job.worker_pid and _is_worker_process(job.worker_pid):
        # The embedded broker has no broadcast for Celery's revoke, but an embedded setup runs on one host.
        with contextlib.suppress(ProcessLookupError):
            os.kill(job.worker_pid, signal.SIGKILL)


def _is_worker_process(pid: int) -> bool:
    # A pid may have been reused since the job recorded it: kill it only if it still looks like one of our workers.
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return False
    return b"worker" in cmdline


def sweep_artifacts(store: JobStore, settings: Settings) -> list[str]:
    """Remove from the artifact store (and this host's data folder) what no job or dataset record names any more,
    older than `artifact_sweep_seconds`; the paths removed. Every worker may run it: removing twice is harmless."""
    datasets = DatasetStore(store.engine, settings.home)
    datasets.create_schema()

    def known(unit: str) -> bool:
        top, name = unit.split("/", 1)
        return store.get(name) is not None if top == "jobs" else datasets.known(name)

    artifacts = ArtifactStore.from_env(settings.home)
    return artifacts.sweep(known, grace_seconds=settings.artifact_sweep_seconds)


def run_sweeper(settings: Settings, *, parent_pid: int | None = None) -> None:
    """Sweep now and then every `sweep_seconds` (jittered) until the parent worker process is gone; sweep the
    artifact store of strays every `artifact_sweep_seconds`."""
    store = JobStore(settings.database, settings.home)
    app = create_app(settings)
    artifacts_due = time.monotonic() + settings.artifact_sweep_seconds * random.uniform(0.1, 1.0)
    while parent_pid is None or os.getppid() == parent_pid:
        try:
            sweep(store, app, settings)
            if time.monotonic() >= artifacts_due:
                artifacts_due = time.monotonic() + settings.artifact_sweep_seconds
                sweep_artifacts(store, settings)
        except Exception:  # a supervisor loop: log the failure in full and try again on the next round
            log.exception("recovery sweep failed; retrying in %.0f s", settings.sweep_seconds)
        time.sleep(settings.sweep_seconds * random.uniform(0.8, 1.2))  # workers started together drift apart


def main(argv: list[str] | None = None) -> int:
    """`python -m worker.recovery [--parent PID] [--once]`: the sweeper process each worker runs beside itself."""
    parser = argparse.ArgumentParser(prog="python -m worker.recovery", description=main.__doc__)
    parser.add_argument("--parent", type=int, help="exit when this process (the worker) is gone")
    parser.add_argument("--once", action="store_true", help="sweep once and exit")
    parser.add_argument("--artifacts", action="store_true", help="with --once: sweep the artifact store of strays too")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s: %(levelname)s/sweeper] %(message)s")
    settings = Settings.from_env()
    if args.once:
        store = JobStore(settings.database, settings.home)
        print(sweep(store, create_app(settings), settings))
        if args.artifacts:
            print(f"artifact sweep removed: {sweep_artifacts(store, settings)}")
        return 0
    run_sweeper(settings, parent_pid=args.parent)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
