"""The job store on SQLite and on PostgreSQL: one claim wins a race, a replaced attempt can no longer write."""

from __future__ import annotations

import multiprocessing
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from worker.records import CANCELLED, FAILED, QUEUED, RUNNING, SUCCEEDED, utcnow
from worker.store import JobStore


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[JobStore]:
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else f"sqlite:///{tmp_path}/jobs.db"
    job_store = JobStore(url, tmp_path)
    job_store.create_schema()
    job_store.create_schema()  # idempotent: every process calls it at start
    yield job_store
    job_store.close()


def _new_job(store: JobStore, owner: str = "alice", queue: str = "q") -> str:
    job_id = uuid.uuid4().hex[:16]
    store.create(
        job_id=job_id, owner=owner, kind="train", spec={"data": {"train": "x.csv"}}, queue=queue, max_attempts=3
    )
    return job_id


def _claim_in_process(url: str, home: str, job_id: str, barrier, results) -> None:
    store = JobStore(url, Path(home))
    barrier.wait()
    job = store.claim(
        job_id,
        task_id=f"{job_id}.1",
        host="test",
        name=f"racer-{multiprocessing.current_process().pid}",
        pid=multiprocessing.current_process().pid,
    )
    results.put(job.worker_name if job else None)


def test_racing_claims_from_many_processes_give_the_job_to_exactly_one(store: JobStore) -> None:
    job_id = _new_job(store)
    store.close()  # no pooled connection may cross the fork
    ctx = multiprocessing.get_context("fork")
    racers = 8
    barrier, results = ctx.Barrier(racers), ctx.Queue()
    procs = [
        ctx.Process(target=_claim_in_process, args=(store.url, str(store.home), job_id, barrier, results))
        for _ in range(racers)
    ]
    for proc in procs:
        proc.start()
    outcomes = [results.get(timeout=60) for _ in procs]
    for proc in procs:
        proc.join(10)
    winners = [name for name in outcomes if name]
    assert len(winners) == 1, outcomes
    job = store.get(job_id)
    assert job.status == RUNNING and job.attempts == 1 and job.worker_name == winners[0]
    assert store.claim(job_id, task_id="late", host="h", name="late", pid=1) is None  # running: not claimable


def test_a_replaced_attempt_can_no_longer_write_and_the_next_one_can(store: JobStore) -> None:
    job_id = _new_job(store)
    first = store.claim(job_id, task_id=f"{job_id}.1", host="a", name="a", pid=1)
    assert first is not None and first.attempts == 1
    assert store.record_progress(job_id, 1, {"step": 3, "total_steps": 10}, [{"kind": "log", "step": 3, "loss": 0.5}])

    # Its worker went silent: a sweep puts the job back in the queue.
    assert store.requeue_stale(first, utcnow() + timedelta(seconds=1), task_id=f"{job_id}.2", reason="worker lost")
    assert not store.requeue_stale(first, utcnow() + timedelta(seconds=1), task_id=f"{job_id}.3", reason="again")
    assert store.get(job_id).status == QUEUED

    second = store.claim(job_id, task_id=f"{job_id}.2", host="b", name="b", pid=2)
    assert second is not None and second.attempts == 2
    # The first attempt, had it come back to life, is fenced off from the job.
    assert store.heartbeat(job_id, 1, beat=True) == (False, False)
    assert not store.record_progress(job_id, 1, {"step": 4}, [{"kind": "log", "step": 4, "loss": 0.4}])
    assert not store.finish(job_id, 1, FAILED, message="late", error="x")
    assert store.heartbeat(job_id, 2, beat=True) == (True, False)
    assert store.finish(job_id, 2, SUCCEEDED, message="succeeded", summary={"macro_f1": 0.9})

    job = store.get(job_id)
    assert (job.status, job.attempts, job.step, job.summary) == (SUCCEEDED, 2, 3, {"macro_f1": 0.9})
    assert job.sends == 2 and job.task_id == f"{job_id}.2"
    logged = [ev for ev in store.events(job_id) if ev.kind == "log"]
    assert [(ev.step, ev.attempt) for ev in logged] == [(3, 1)]  # the fenced write left nothing behind


def test_cancel_ends_a_queued_job_at_once_and_flags_a_running_one(store: JobStore) -> None:
    queued, running, done = _new_job(store), _new_job(store), _new_job(store)
    store.claim(running, task_id="r", host="h", name="n", pid=1)
    store.claim(done, task_id="d", host="h", name="n", pid=1)
    store.finish(done, 1, SUCCEEDED, message="ok")

    assert store.request_cancel(queued)
    assert store.get(queued).status == CANCELLED
    assert store.claim(queued, task_id="q", host="h", name="n", pid=1) is None  # a later message finds it cancelled

    assert store.request_cancel(running)
    job = store.get(running)
    assert job.status == RUNNING and job.cancel_requested and job.cancel_requested_at is not None
    assert store.heartbeat(running, 1, beat=False) == (True, True)

    assert not store.request_cancel(done)
    assert store.get(done).status == SUCCEEDED


def test_events_are_read_after_a_cursor_and_queue_positions_follow_send_order(store: JobStore) -> None:
    first, second, other_queue = _new_job(store), _new_job(store), _new_job(store, queue="gpu")
    assert (store.get(first).position, store.get(second).position, store.get(other_queue).position) == (1, 2, 1)
    assert [job.position for job in store.list(statuses=(QUEUED,))] == [1, 2, 1][::-1]  # newest first

    store.claim(first, task_id="t", host="h", name="n", pid=1)
    assert store.get(second).position == 1
    store.record_progress(first, 1, {"step": 1}, [{"kind": "log", "step": 1, "loss": 0.7}])
    events = store.events(first)
    assert [ev.kind for ev in events] == ["status", "status", "log"]
    cursor = events[-1].id
    store.record_progress(first, 1, {"step": 2}, [{"kind": "eval", "step": 2, "metrics": {"macro_f1": 0.8}}])
    newer = store.events(first, since=cursor)
    assert [(ev.kind, ev.metrics) for ev in newer] == [("eval", {"macro_f1": 0.8})]
    assert store.find(first[:6]) == [first] or first in store.find(first[:6])
    assert [job.owner for job in store.list(owner="nobody")] == []
