"""The job runtime without Celery: outcomes, throttled progress with full history, cancel (cooperative and by force).

The engine call is replaced by small functions here, because the point is what the runtime does around any engine
call; the integration tests in test_jobs_*.py run the real engine in real workers.
"""

from __future__ import annotations

import json
import multiprocessing
import signal
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest

from engine.errors import DataError
from engine.progress import ProgressEvent
from worker import runtime
from worker.records import CANCELLED, FAILED, RUNNING, SUCCEEDED, utcnow
from worker.settings import Settings
from worker.store import JobStore

from .helpers import wait_until


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Settings:
    for name in ("PLAYGROUND_BROKER_URL", "PLAYGROUND_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PLAYGROUND_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PLAYGROUND_HEARTBEAT_SECONDS", "0.2")
    monkeypatch.setenv("PLAYGROUND_LEASE_SECONDS", "2")
    monkeypatch.setenv("PLAYGROUND_PROGRESS_SECONDS", "0.25")
    monkeypatch.setenv("PLAYGROUND_CANCEL_GRACE_SECONDS", "1")
    return Settings.from_env()


@pytest.fixture
def store(settings: Settings) -> JobStore:
    job_store = JobStore(settings.database, settings.home)
    job_store.create_schema()
    return job_store


def _queued(store: JobStore, job_id: str = "job0000000000001") -> str:
    spec = {"data": {"train": "reviews.csv"}, "params": {"epochs": 1}}
    store.create(job_id=job_id, owner="alice", kind="train", spec=spec, queue="q", max_attempts=3)
    return job_id


def _event(kind: str, step: int, **extra) -> ProgressEvent:
    return ProgressEvent(kind=kind, step=step, total_steps=100, epoch=step / 50, **extra)


def test_a_data_error_fails_the_job_with_message_hint_and_a_traceback_in_the_log(store: JobStore) -> None:
    job_id = _queued(store)
    run = runtime.start(job_id, "train", task_id=f"{job_id}.1")
    with run:
        raise DataError("label column 'sentiment' not found; columns are ['text', 'stars']")
    job = store.get(job_id)
    assert job.status == FAILED
    assert job.error == "label column 'sentiment' not found; columns are ['text', 'stars']"
    assert "playground inspect" in job.hint
    log = (job.artifact_dir / "job.log").read_text()
    assert "Traceback" in log and "DataError" in log
    assert store.events(job_id)[-1].message.startswith("failed: label column 'sentiment' not found")


def test_an_unexpected_error_is_failed_with_its_type_and_points_to_the_log(store: JobStore) -> None:
    job_id = _queued(store)
    with runtime.start(job_id, "train", task_id=f"{job_id}.1"):
        raise KeyError("weights")
    job = store.get(job_id)
    assert job.status == FAILED and job.error == "KeyError: 'weights'"
    assert f"playground jobs logs {job_id}" in job.hint


def test_progress_is_throttled_but_every_logged_point_is_kept(store: JobStore, settings: Settings) -> None:
    job_id = _queued(store)
    writes = []
    record = store.record_progress

    def counting(*args, **kwargs):
        writes.append(time.monotonic())
        return record(*args, **kwargs)

    run = runtime.start(job_id, "train", task_id=f"{job_id}.1")
    run.store.record_progress = counting  # count the writes this run makes; they still reach the database
    started = time.monotonic()
    with run:
        run.on_event(_event("start", 0))
        for step in range(1, 101):
            run.on_event(_event("step", step))
            run.on_event(_event("log", step, loss=1.0 / step, learning_rate=1e-4))
            if step % 50 == 0:
                run.on_event(_event("eval", step, loss=0.1, metrics={"macro_f1": 0.9, "loss": 0.1}))
            time.sleep(0.01)
        run.on_event(_event("end", 100))
        from engine.progress import announce

        announce(run.on_event, "evaluating")  # after training: scoring the test split
        assert store.get(job_id).phase == "evaluating"  # written at once, for the Jobs tab to say
        run.succeeded({"metrics": {"accuracy": 0.95, "macro_f1": 0.94, "weighted_f1": 0.95}})
    elapsed = time.monotonic() - started
    urgent = 6  # start, the first logged loss, two evals, end, and the phase after training
    assert len(writes) <= elapsed / settings.progress_seconds + urgent + 2, (len(writes), elapsed)
    assert len(writes) < 40  # against 300 events
    events = store.events(job_id)
    assert [ev.step for ev in events if ev.kind == "log"] == list(range(1, 101))
    assert [ev.metrics["macro_f1"] for ev in events if ev.kind == "eval"] == [0.9, 0.9]
    job = store.get(job_id)
    assert (job.status, job.step, job.total_steps) == (SUCCEEDED, 100, 100)
    assert job.summary == {"accuracy": 0.95, "macro_f1": 0.94, "weighted_f1": 0.95}


def test_should_stop_turns_true_when_the_job_is_cancelled_and_the_job_ends_cancelled(store: JobStore) -> None:
    job_id = _queued(store)
    run = runtime.start(job_id, "train", task_id=f"{job_id}.1")
    with run:
        threading.Timer(0.3, store.request_cancel, args=[job_id]).start()
        asked = time.monotonic()
        wait_until(run.should_stop, 5, "should_stop() to see the cancel", interval=0.02)
        assert time.monotonic() - asked < 2
        raise RuntimeError("training stopped on request")  # what engine.train raises (TrainingStopped)
    job = store.get(job_id)
    assert job.status == CANCELLED and job.error is None


def test_an_attempt_that_lost_its_lease_stops_and_records_nothing(store: JobStore, settings: Settings) -> None:
    job_id = _queued(store)
    run = runtime.start(job_id, "train", task_id=f"{job_id}.1")
    with run:
        job = store.get(job_id)
        store.requeue_stale(job, utcnow(), task_id=f"{job_id}.2", reason="test: lease taken over")
        store.claim(job_id, task_id=f"{job_id}.2", host="other", name="other", pid=2)
        wait_until(run.should_stop, 5, "the lost lease to be noticed", interval=0.02)
        run.succeeded({"metrics": {"accuracy": 1.0}})  # a late success must not overwrite the new attempt
    job = store.get(job_id)
    assert (job.status, job.attempts, job.worker_name) == (RUNNING, 2, "other")
    assert run.outcome == "lost"


def _ignore_cancel(job_id: str) -> None:
    # Engine code that never reaches a training step, so never calls should_stop (a huge file being read, say).
    run = runtime.start(job_id, "train", task_id=f"{job_id}.1")
    with run:
        time.sleep(60)


def test_a_job_that_ignores_cancel_is_stopped_by_force_after_the_grace_period(store: JobStore) -> None:
    job_id = _queued(store)
    store.close()
    process = multiprocessing.get_context("fork").Process(target=_ignore_cancel, args=(job_id,))
    process.start()
    wait_until(lambda: store.get(job_id).status == RUNNING, 10, "the job to start")
    store.request_cancel(job_id)
    asked = time.monotonic()
    process.join(15)
    assert process.exitcode == -signal.SIGKILL  # grace is 1 s here
    assert time.monotonic() - asked < 5
    job = store.get(job_id)
    assert job.status == CANCELLED
    assert "stopped by force" in store.events(job_id)[-1].message
    assert "stopped by force" in (job.artifact_dir / "job.log").read_text()


def test_a_later_attempt_keeps_finished_output_and_drops_a_half_written_checkpoint(store: JobStore) -> None:
    done, partial = _queued(store, "job0000000000002"), _queued(store, "job0000000000003")
    for job_id in (done, partial):
        store.claim(job_id, task_id=f"{job_id}.1", host="h", name="dead", pid=1)
        store.requeue_stale(store.get(job_id), utcnow() + timedelta(seconds=1), task_id=f"{job_id}.2", reason="lost")
    folder = store.get(done).artifact_dir
    (folder / "model").mkdir(parents=True)
    (folder / "report.json").write_text(json.dumps({"metrics": {"accuracy": 1.0, "macro_f1": 1.0}}))
    assert runtime.start(done, "train", task_id=f"{done}.2") is None  # nothing left to run
    assert store.get(done).status == SUCCEEDED and store.get(done).summary["macro_f1"] == 1.0

    checkpoints = store.get(partial).artifact_dir / "checkpoints"
    (checkpoints / "checkpoint-6").mkdir(parents=True)
    (checkpoints / "checkpoint-6" / "trainer_state.json").write_text("{}")
    (checkpoints / "checkpoint-12").mkdir()  # killed while saving: no trainer_state.json yet
    run = runtime.start(partial, "train", task_id=f"{partial}.2")
    assert run is not None and run.resume
    assert sorted(p.name for p in checkpoints.iterdir()) == ["checkpoint-6"]


def test_nan_losses_of_a_diverged_run_are_recorded_on_postgresql(monkeypatch, settings, postgres_url) -> None:
    monkeypatch.setenv("PLAYGROUND_DATABASE_URL", postgres_url)  # PostgreSQL's JSON refuses NaN
    pg = JobStore(postgres_url, settings.home)
    pg.create_schema()
    job_id = _queued(pg)
    with runtime.start(job_id, "train", task_id=f"{job_id}.1") as run:
        run.on_event(_event("start", 0))
        run.on_event(_event("log", 1, loss=float("nan"), learning_rate=1e-4))
        run.on_event(_event("eval", 2, loss=float("inf"), metrics={"macro_f1": 0.5, "loss": float("inf")}))
        run.succeeded({"metrics": {"accuracy": 0.5, "macro_f1": float("nan")}})
    job = pg.get(job_id)
    assert job.status == SUCCEEDED and job.summary == {"accuracy": 0.5}
    points = [(ev.kind, ev.loss, ev.metrics) for ev in pg.events(job_id) if ev.kind in ("log", "eval")]
    assert points == [("log", None, {}), ("eval", None, {"macro_f1": 0.5, "loss": None})]
    pg.close()
