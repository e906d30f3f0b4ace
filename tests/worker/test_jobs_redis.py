"""Real `playground worker` processes on a real Redis, training the packaged MiniLM on a tiny CSV.

Each test starts its own workers with a data dir, a Redis database and a queue of its own; every worker process is
SIGKILLed at teardown.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pytest
import redis

from worker.api import Jobs
from worker.records import CANCELLED, QUEUED, RUNNING, SUCCEEDED
from worker.settings import Settings

from ..conftest import write_training_csv
from .helpers import tiny_spec, wait_until

pytestmark = pytest.mark.slow


@pytest.fixture
def env(playground_env: dict, redis_url: str) -> dict:
    return {**playground_env, "PLAYGROUND_BROKER_URL": redis_url}


@pytest.fixture
def jobs(env: dict):
    api = Jobs(Settings.from_env(env))
    yield api
    api.close()


def _maps(pid: int) -> str:
    return Path(f"/proc/{pid}/maps").read_text()


def _complete_checkpoint(job) -> bool:
    return any((job.artifact_dir / "checkpoints").glob("checkpoint-*/trainer_state.json"))


def test_a_training_job_goes_queued_running_succeeded_and_its_history_grows(env, jobs, start_worker, training_csv):
    worker = start_worker(env)
    job_id = jobs.submit(tiny_spec(training_csv, epochs=2), "alice")
    seen, history_sizes = [jobs.get(job_id).status], []
    while not (job := jobs.get(job_id)).finished:
        if job.status != seen[-1]:
            seen.append(job.status)
        if job.status == RUNNING:
            history_sizes.append(len(jobs.history(job_id)))
        time.sleep(0.05)
    seen.append(job.status)
    assert seen == [QUEUED, RUNNING, SUCCEEDED], (seen, job.error, worker.log()[-2000:])

    # The history grew while the job ran, one point at a time, not in one write at the end.
    assert history_sizes[0] < history_sizes[-1] and len(set(history_sizes)) >= 3, history_sizes
    history = jobs.history(job_id)
    losses = [ev for ev in history if ev.kind == "log"]
    evals = [ev for ev in history if ev.kind == "eval"]
    assert [ev.step for ev in losses] == list(range(1, job.total_steps + 1))  # every logged loss, not the last
    assert all(math.isfinite(ev.loss) for ev in losses)
    assert [round(ev.epoch) for ev in evals] == [1, 2] and all("macro_f1" in ev.metrics for ev in evals)

    # The report on disk and the job record agree, and the numbers are those of a model that learned.
    report = json.loads((job.artifact_dir / "report.json").read_text())
    assert job.summary["accuracy"] == pytest.approx(report["metrics"]["accuracy"])
    assert job.summary["macro_f1"] == pytest.approx(report["metrics"]["macro_f1"])
    assert report["metrics"]["macro_f1"] >= 0.8
    assert sum(row["support"] for row in report["per_class"].values()) == 6  # 10% of 60 rows held out for testing
    assert (job.artifact_dir / "model" / "config.json").is_file()
    assert json.loads((job.artifact_dir / "spec.json").read_text())["data"]["train"] == str(training_csv)
    assert "succeeded" in (job.artifact_dir / "job.log").read_text()
    assert (job.attempts, job.step, job.total_steps, job.progress) == (1, 12, 12, 1.0)

    # The job ran in a child process; the worker's own process never loaded torch, so it never touched CUDA.
    assert job.worker_pid != worker.pid
    assert "libtorch" not in _maps(worker.pid)

    # "Evaluate on another file": an evaluation job names the finished training job as its model.
    other = write_training_csv(training_csv.parent / "more-reviews.csv", rows=40, seed=7)
    evaluation = jobs.wait(jobs.submit({"model": job_id, "data": str(other)}, "alice"), timeout=120)
    assert (evaluation.kind, evaluation.status) == ("evaluate", SUCCEEDED), evaluation.error
    assert evaluation.spec["model"] == str(job.artifact_dir / "model")
    scored = json.loads((evaluation.artifact_dir / "report.json").read_text())
    assert sum(row["support"] for row in scored["per_class"].values()) == 40
    assert evaluation.summary["macro_f1"] == pytest.approx(scored["metrics"]["macro_f1"])
    assert scored["metrics"]["macro_f1"] >= 0.8


def test_a_job_with_unusable_data_fails_with_the_reason_a_hint_and_the_traceback_in_its_log(
    env, jobs, start_worker, tmp_path
):
    start_worker(env)
    data = tmp_path / "no-labels.csv"
    data.write_text("text,stars\n" + "".join(f"review {i},{i % 5}\n" for i in range(40)))
    spec = tiny_spec(data)
    spec["data"]["label_column"] = "sentiment"
    job = jobs.wait(jobs.submit(spec, "alice"), timeout=120)
    assert job.status == "failed"
    assert "sentiment" in job.error and "\n" not in job.error
    assert job.hint
    log = jobs.log_tail(job.id)
    assert "Traceback" in log and "DataError" in log


def test_cancelling_a_running_job_stops_it_within_seconds_and_the_worker_takes_the_next(
    env, jobs, start_worker, training_csv
):
    start_worker(env)
    long_job = jobs.submit(tiny_spec(training_csv, epochs=40), "alice")
    wait_until(lambda: jobs.get(long_job).step >= 2, 90, "training steps")
    asked = time.monotonic()
    assert jobs.cancel(long_job).cancel_requested
    job = wait_until(lambda: (j := jobs.get(long_job)).finished and j, 10, "the job to stop")
    assert job.status == CANCELLED
    assert time.monotonic() - asked < 10
    assert job.step < job.total_steps
    assert jobs.events(long_job)[-1].message.startswith("cancelled at step")  # cooperative, not by force
    assert not (job.artifact_dir / "model").exists()

    next_job = jobs.submit(tiny_spec(training_csv, epochs=1), "bob")
    done = jobs.wait(next_job, timeout=120)
    assert done.status == SUCCEEDED and done.worker_name == job.worker_name


def test_a_job_that_does_not_stop_in_the_grace_period_is_killed_and_the_worker_goes_on(
    env, jobs, start_worker, training_csv
):
    # Cancelled while it still loads (imports, tokenizer, model): no training step, so no cooperative stop.
    start_worker({**env, "PLAYGROUND_CANCEL_GRACE_SECONDS": "0.5"})
    job_id = jobs.submit(tiny_spec(training_csv, epochs=1), "alice")
    wait_until(lambda: jobs.get(job_id).status == RUNNING, 60, "the job to start")
    asked = time.monotonic()
    jobs.cancel(job_id)
    job = wait_until(lambda: (j := jobs.get(job_id)).finished and j, 10, "the job to be stopped")
    assert job.status == CANCELLED and time.monotonic() - asked < 10
    assert "stopped by force" in jobs.events(job_id)[-1].message

    next_job = jobs.submit(tiny_spec(training_csv, epochs=1), "alice")
    done = jobs.wait(next_job, timeout=120)
    assert done.status == SUCCEEDED and done.worker_name == job.worker_name
    assert jobs.get(job_id).status == CANCELLED  # the redelivered message of the killed process changed nothing


def test_a_job_whose_worker_is_killed_is_finished_by_another_from_its_checkpoint(
    env, jobs, start_worker, training_csv
):
    workers = [start_worker(env), start_worker(env)]
    job_id = jobs.submit(tiny_spec(training_csv, epochs=4), "alice")
    job = wait_until(
        lambda: (j := jobs.get(job_id)).status == RUNNING and _complete_checkpoint(j) and j,
        120,
        "the first checkpoint",
    )
    victim = next(w for w in workers if job.worker_name == f"playground-{w.pid}@{job.worker_host}")
    survivor = next(w for w in workers if w is not victim)
    victim.kill9()  # the worker and its job process, as when the machine dies

    done = jobs.wait(job_id, timeout=120)
    assert done.status == SUCCEEDED, (done.error, survivor.log()[-3000:])
    assert done.attempts == 2
    assert done.worker_name == f"playground-{survivor.pid}@{done.worker_host}"
    starts = [ev for ev in jobs.events(job_id) if ev.kind == "start"]
    assert [ev.attempt for ev in starts] == [1, 2]
    assert starts[0].step == 0 and starts[1].step >= 6  # attempt 2 began at a checkpoint, not from scratch
    assert any("stopped responding" in (ev.message or "") for ev in jobs.events(job_id))
    assert [ev.step for ev in jobs.history(job_id) if ev.kind == "log"] == list(range(1, done.total_steps + 1))
    report = json.loads((done.artifact_dir / "report.json").read_text())
    assert report["metrics"]["macro_f1"] >= 0.8


def test_a_queued_job_still_runs_after_redis_is_flushed(env, jobs, start_worker, training_csv):
    start_worker(env)
    running = jobs.submit(tiny_spec(training_csv, epochs=3), "alice")
    wait_until(lambda: jobs.get(running).status == RUNNING, 60, "the first job to start")
    queued = jobs.submit(tiny_spec(training_csv, epochs=1), "bob")
    assert jobs.get(queued).position == 1

    redis.Redis.from_url(env["PLAYGROUND_BROKER_URL"]).flushdb()  # Redis restarted without persistence

    assert jobs.wait(running, timeout=120).status == SUCCEEDED
    job = jobs.wait(queued, timeout=120)
    assert job.status == SUCCEEDED and job.sends >= 2  # a duplicate send is possible under load, and harmless
    assert any("sent again" in (ev.message or "") for ev in jobs.events(queued))


def test_two_workers_run_two_jobs_at_the_same_time_on_a_postgresql_store(
    env, postgres_url, start_worker, training_csv
):
    env = {**env, "PLAYGROUND_DATABASE_URL": postgres_url}
    start_worker(env)
    start_worker(env)
    jobs = Jobs(Settings.from_env(env))
    try:
        # Long enough to overlap: two workers importing torch at once start seconds apart, and 3 epochs (3 s of
        # training) were over in one before the other had taken its first step.
        ids = [jobs.submit(tiny_spec(training_csv, epochs=12), owner) for owner in ("alice", "bob")]
        both = wait_until(
            lambda: (js := [jobs.get(i) for i in ids]) and all(j.status == RUNNING and j.step > 0 for j in js) and js,
            120,
            "both jobs to train at once",
            interval=0.05,
        )
        assert len({j.worker_name for j in both}) == 2
        assert [jobs.wait(i, timeout=120).status for i in ids] == [SUCCEEDED, SUCCEEDED]
        assert [j.owner for j in jobs.list_jobs("bob")] == ["bob"]
        assert len(jobs.history(ids[0])) > 10
    finally:
        jobs.close()
