"""The recovery sweep against a real broker (Redis, and the embedded SQLite one), without worker processes.

The sweep is given a `now` in the future instead of the test sleeping through lease and re-send timeouts.
"""

from __future__ import annotations

import json
import multiprocessing
import sqlite3
from datetime import timedelta

import pytest
import redis

from worker import broker
from worker.api import Jobs
from worker.app import create_app
from worker.records import FAILED, QUEUED, RUNNING, utcnow
from worker.recovery import sweep
from worker.settings import Settings

from .helpers import tiny_spec


@pytest.fixture
def redis_jobs(playground_env: dict, redis_url: str, training_csv):
    settings = Settings.from_env(
        {**playground_env, "PLAYGROUND_BROKER_URL": redis_url, "PLAYGROUND_MAX_ATTEMPTS": "2"}
    )
    jobs = Jobs(settings)
    yield jobs
    jobs.close()


def _redis_task_ids(url: str, queue: str) -> list[str]:
    client = redis.Redis.from_url(url)
    return [json.loads(raw)["headers"]["id"] for raw in client.lrange(queue, 0, -1)]


def _later(seconds: float):
    return utcnow() + timedelta(seconds=seconds)


def test_a_queued_job_whose_message_was_flushed_from_redis_is_sent_again(redis_jobs: Jobs, training_csv) -> None:
    settings = redis_jobs.settings
    job_id = redis_jobs.submit(tiny_spec(training_csv), "alice")
    assert _redis_task_ids(settings.broker, settings.queue) == [f"{job_id}.1"]
    assert broker.messages_in(settings, settings.queue) == {job_id: [None]}

    # Waiting its turn with its message in the queue: left alone however long it waits.
    assert not sweep(redis_jobs.store, redis_jobs.app, settings, now=_later(3600))

    redis.Redis.from_url(settings.broker).flushdb()
    assert sweep(redis_jobs.store, redis_jobs.app, settings, now=_later(1)).resent == []  # too recent to judge
    report = sweep(redis_jobs.store, redis_jobs.app, settings, now=_later(settings.requeue_after_seconds + 1))
    assert report.resent == [job_id]
    assert _redis_task_ids(settings.broker, settings.queue) == [f"{job_id}.2"]
    job = redis_jobs.get(job_id)
    assert (job.status, job.sends, job.task_id) == (QUEUED, 2, f"{job_id}.2")


def test_a_job_whose_worker_went_silent_is_requeued_and_failed_after_max_attempts(redis_jobs: Jobs, training_csv):
    settings, store = redis_jobs.settings, redis_jobs.store
    job_id = redis_jobs.submit(tiny_spec(training_csv), "alice")
    redis.Redis.from_url(settings.broker).delete(settings.queue)  # a worker took the message...
    store.claim(job_id, task_id=f"{job_id}.1", host="gpu-7", name="w1@gpu-7", pid=4242)  # ...and died mid-job

    assert not sweep(store, redis_jobs.app, settings, now=_later(settings.lease_seconds / 2)).resumed
    report = sweep(store, redis_jobs.app, settings, now=_later(settings.lease_seconds + 1))
    assert report.resumed == [job_id]
    assert _redis_task_ids(settings.broker, settings.queue) == [f"{job_id}.2"]
    job = redis_jobs.get(job_id)
    assert (job.status, job.attempts, job.sends) == (QUEUED, 1, 2)
    assert "w1@gpu-7 (pid 4242) stopped responding" in redis_jobs.events(job_id)[-1].message

    store.claim(job_id, task_id=f"{job_id}.2", host="gpu-8", name="w2@gpu-8", pid=4343)  # attempt 2 dies too
    report = sweep(store, redis_jobs.app, settings, now=_later(settings.lease_seconds + 1))
    assert report.failed == [job_id]
    job = redis_jobs.get(job_id)
    assert (job.status, job.attempts) == (FAILED, 2)
    assert "died 2 times" in job.error and "w2@gpu-8" in job.error
    assert "out of memory" in job.hint


def _sweep_in_process(env: dict, barrier, results) -> None:
    settings = Settings.from_env(env)
    jobs = Jobs(settings)
    barrier.wait()
    report = sweep(jobs.store, create_app(settings), settings, now=_later(settings.lease_seconds + 1))
    results.put(report.resumed)


def test_sweeps_racing_on_one_dead_job_resume_it_exactly_once(
    redis_jobs: Jobs, playground_env, redis_url, training_csv
):
    settings, store = redis_jobs.settings, redis_jobs.store
    job_id = redis_jobs.submit(tiny_spec(training_csv), "alice")
    redis.Redis.from_url(settings.broker).delete(settings.queue)
    store.claim(job_id, task_id=f"{job_id}.1", host="h", name="dead", pid=1)
    store.close()
    redis_jobs.close()

    # The sweeps run at a `now` past the lease; with the usual re-send delay, that `now` would also make the freshly
    # requeued job look long-queued. Real time never does that (requeued means queued_at = now), so keep them apart.
    env = {**playground_env, "PLAYGROUND_BROKER_URL": redis_url, "PLAYGROUND_REQUEUE_AFTER_SECONDS": "600"}
    ctx = multiprocessing.get_context("fork")
    racers = 6
    barrier, results = ctx.Barrier(racers), ctx.Queue()
    procs = [ctx.Process(target=_sweep_in_process, args=(env, barrier, results)) for _ in range(racers)]
    for proc in procs:
        proc.start()
    resumed = [results.get(timeout=60) for _ in procs]
    for proc in procs:
        proc.join(10)
    assert sorted(map(len, resumed)) == [0] * (racers - 1) + [1]
    assert _redis_task_ids(settings.broker, settings.queue) == [f"{job_id}.2"]
    assert redis_jobs.get(job_id).sends == 2


def test_the_embedded_broker_is_inspected_too_and_a_lost_message_is_sent_again(playground_env, training_csv):
    settings = Settings.from_env(playground_env)  # no broker URL: the SQLite broker under the data dir
    assert settings.embedded
    jobs = Jobs(settings)
    try:
        job_id = jobs.submit(tiny_spec(training_csv), "alice")
        assert broker.messages_in(settings, settings.queue) == {job_id: [None]}
        assert not sweep(jobs.store, jobs.app, settings, now=_later(3600))

        with sqlite3.connect(settings.home / "broker.sqlite") as db:
            db.execute("DELETE FROM kombu_message")  # the message is lost
        report = sweep(jobs.store, jobs.app, settings, now=_later(settings.requeue_after_seconds + 1))
        assert report.resent == [job_id]
        assert broker.messages_in(settings, settings.queue) == {job_id: [None]}
        assert jobs.get(job_id).status == QUEUED

        jobs.store.claim(job_id, task_id=f"{job_id}.2", host="h", name="n", pid=1)
        assert jobs.get(job_id).status == RUNNING
    finally:
        jobs.close()


def test_a_job_submitted_while_the_broker_is_down_is_kept_and_sent_once_it_is_back(
    playground_env, redis_url, training_csv
):
    down = Settings.from_env({**playground_env, "PLAYGROUND_BROKER_URL": "redis://127.0.0.1:1/0"})  # nothing there
    jobs = Jobs(down)
    try:
        job_id = jobs.submit(tiny_spec(training_csv), "alice")  # recorded, not lost, and no exception for the UI
        assert jobs.get(job_id).status == QUEUED
    finally:
        jobs.close()

    back = Settings.from_env({**playground_env, "PLAYGROUND_BROKER_URL": redis_url})
    jobs = Jobs(back)
    try:
        report = sweep(jobs.store, jobs.app, back, now=_later(back.requeue_after_seconds + 1))
        assert report.resent == [job_id]
        assert _redis_task_ids(redis_url, back.queue) == [f"{job_id}.2"]
    finally:
        jobs.close()


def test_the_artifact_sweep_keeps_what_records_name_and_removes_the_folders_and_uploads_of_deleted_ones(
    playground_env: dict, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    from worker.artifacts import ArtifactStore
    from worker.recovery import sweep_artifacts
    from worker.uploads import DatasetStore

    from ..conftest import write_training_csv

    env = {**playground_env, "PLAYGROUND_ARTIFACTS": str(tmp_path / "bucket")}
    env["PLAYGROUND_ARTIFACT_SWEEP_SECONDS"] = "1"
    monkeypatch.setenv("PLAYGROUND_ARTIFACTS", env["PLAYGROUND_ARTIFACTS"])
    settings = Settings.from_env(env)
    jobs = Jobs(settings)
    try:
        artifacts = ArtifactStore.from_env(settings.home)
        datasets = DatasetStore(jobs.store.engine, settings.home)
        datasets.create_schema()
        datasets.artifacts = artifacts
        kept, _ = datasets.register("alice", write_training_csv(tmp_path / "kept.csv"))
        dropped = settings.home / "uploads" / "feedfacefeedface" / "train.csv"  # its host died before the record
        dropped.parent.mkdir(parents=True)
        write_training_csv(dropped)
        artifacts.put_file(dropped)
        live = jobs.submit(tiny_spec(kept.path), "alice")
        folder = settings.home / "jobs" / live
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "job.log").write_text("attempt 1/3\n")
        artifacts.put_folder(folder)
        artifacts.put_folder(_orphan := settings.home / "jobs" / "0123456789abcdef")  # no record names it

        assert sweep_artifacts(jobs.store, settings) == []  # all of it is younger than the grace period
        time.sleep(1.2)
        removed = sweep_artifacts(jobs.store, settings)
        assert sorted(removed) == ["jobs/0123456789abcdef", "uploads/feedfacefeedface"]
        assert artifacts.exists(folder / "job.log") and artifacts.exists(kept.path)
        assert not artifacts.exists(_orphan) and not artifacts.exists(dropped)
    finally:
        jobs.close()
