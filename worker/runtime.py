"""One attempt of one job in a worker process: claim it, keep its lease, report progress, end it in a terminal state.

The tasks in worker/tasks.py stay thin by handing everything that is not "call the engine" to `JobRun`:

- the claim (a conditional UPDATE queued -> running) that lets one worker, and only one, run the job;
- a watchdog thread that writes the heartbeat, reads the cancel flag for `should_stop`, and stops the process by force
  when a cancelled job has not stopped within the grace period (or the job overran, or lost its lease);
- progress events throttled into a few store writes a second, with every logged loss and eval point kept;
- the job log (job.log in the job folder) with the traceback of any failure;
- the outcome: whatever happens, the job ends succeeded, failed (message + hint) or cancelled.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import signal
import socket
import sys
import threading
import time
import traceback
import warnings
from pathlib import Path
from types import TracebackType
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from engine.errors import DataError, ModelNotFoundError
from worker.artifacts import ArtifactStore
from worker.job_artifacts import LOG_FILE, JobArtifacts
from worker.records import CANCELLED, FAILED, SUCCEEDED, TRAIN, Job
from worker.settings import Settings
from worker.specs import Spec, parse_spec
from worker.store import JobStore
from worker.uploads import user_paths

log = logging.getLogger("playground.job")

_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_FINISH_RETRY_SECONDS = 30


def start(job_id: str, kind: str, *, task_id: str, worker_name: str | None = None) -> JobRun | None:
    """Claim the job for this process; None when it is not ours to run (finished, cancelled, running elsewhere)."""
    settings = Settings.from_env()
    store = JobStore(settings.database, settings.home)
    host = socket.gethostname()
    job = store.claim(job_id, task_id=task_id, host=host, name=worker_name or host, pid=os.getpid())
    if job is None:
        current = store.get(job_id)
        state = f"it is {current.status}" if current else "no such job"
        log.info("message %s for job %s skipped: %s", task_id, job_id, state)
        return None
    if job.kind != kind:
        store.finish(
            job.id,
            job.attempts,
            FAILED,
            message="failed: wrong task",
            error=f"a {job.kind} job was sent to the {kind} task",
            hint="this is a bug in the playground; please report it",
        )
        return None
    run = JobRun(store, settings, job)
    if not run.fetch():
        return None
    if run.finished_by_earlier_attempt():
        return None
    return run


class JobRun:
    """The running attempt of a job: lease, progress, log and outcome. Use as a context manager around the engine."""

    def __init__(self, store: JobStore, settings: Settings, job: Job):
        self.store = store
        self.settings = settings
        self.job = job
        self.attempt = job.attempts
        self.artifact_dir: Path = job.artifact_dir  # type: ignore[assignment]
        self.artifact_dir.mkdir(parents=True, exist_ok=True)
        self.outcome: str | None = None
        self._finishing = False
        self._started = time.monotonic()
        self._cancel_at: float | None = None
        self._lost_at: float | None = None
        self._done = threading.Event()
        self._watchdog = threading.Thread(target=self._watch, name=f"job-{job.id}-watchdog", daemon=True)
        self._pending: list[dict[str, Any]] = []
        self._progress: dict[str, Any] = {}
        self._last_flush = 0.0
        self._logged = False  # a loss has been logged (the first is written at once)
        self._last_log_line = 0.0
        self._handler: logging.Handler | None = None
        self._spec = job.spec  # with other hosts' paths made this host's by fetch()
        artifacts = ArtifactStore.from_env(settings.home)
        self.artifacts = JobArtifacts(artifacts, self.artifact_dir, owned=lambda: self._lost_at is None)

    # ---- what the task uses --------------------------------------------------------------------------------------

    @property
    def spec(self) -> Spec:
        """The job's spec, validated again here: the store may hold a spec written by another version."""
        return parse_spec(self._spec, kind=self.job.kind, source=f"the spec of job {self.job.id}")

    @property
    def resume(self) -> bool:
        """True when an earlier attempt left a checkpoint to continue from."""
        checkpoints = self.artifact_dir / "checkpoints"
        return self.attempt > 1 and checkpoints.is_dir() and any(checkpoints.glob("checkpoint-*"))

    def should_stop(self) -> bool:
        """The engine asks this every step: True once the job is cancelled or another attempt owns it."""
        return self._cancel_at is not None or self._lost_at is not None

    def on_event(self, event: Any) -> None:
        """Take an engine ProgressEvent: keep every start/log/eval/end point, write at most a few times a second."""
        data = event.to_dict()
        if data["kind"] == "phase":  # the job moved on (loading the model, scoring the test split, ...)
            self._progress = {**self._progress, "phase": data["phase"]}
            log.info("job %s: %s", self.job.id, PHASE_LOG.get(data["phase"], data["phase"]))
            self._flush()
            return
        self._progress = {
            "step": data["step"],
            "total_steps": data["total_steps"],
            "epoch": _finite(data["epoch"]),
            "eta_seconds": _finite(data["eta_seconds"]),
            "phase": self._progress.get("phase"),
        }
        if data["kind"] != "step":
            self._pending.append(
                {
                    "kind": data["kind"],
                    "step": data["step"],
                    "total_steps": data["total_steps"],
                    "epoch": _finite(data["epoch"]),
                    "loss": _finite(data["loss"]),
                    "learning_rate": _finite(data["learning_rate"]),
                    "metrics": {k: _finite(v) for k, v in data["metrics"].items()} or None,
                }
            )
        self._log_line(data)
        # The first logged loss is written at once, so the chart never says "waiting" while the log shows losses.
        urgent = data["kind"] in ("start", "eval", "end") or (data["kind"] == "log" and not self._logged)
        self._logged = self._logged or data["kind"] == "log"
        if urgent or time.monotonic() - self._last_flush >= self.settings.progress_seconds:
            self._flush()

    def succeeded(self, report: dict[str, Any]) -> None:
        """Record success with the report's headline numbers."""
        summary = report_summary(report)
        numbers = ", ".join(f"{k} {v:.3f}" for k, v in summary.items() if isinstance(v, float))
        self._flush()
        self.artifacts.publish_final()  # first: whoever reads 'succeeded' must find the model in the store
        self._finish(SUCCEEDED, message=f"succeeded{': ' + numbers if numbers else ''}", summary=summary)
        log.info("job %s succeeded: %s", self.job.id, numbers)

    # ---- lifecycle -----------------------------------------------------------------------------------------------

    def __enter__(self) -> JobRun:
        spec_file = self.artifact_dir / "spec.json"
        if not spec_file.exists():  # train writes its own; an evaluation's folder gets one here
            spec_file.write_text(json.dumps(self.job.spec, indent=2) + "\n", encoding="utf-8")
        # Libraries' deprecation notes are for their developers; in the job log a user reads, they look like errors.
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        self._handler = logging.FileHandler(self.artifact_dir / LOG_FILE, encoding="utf-8")
        self._handler.setFormatter(logging.Formatter(_LOG_FORMAT))
        self._handler.setLevel(logging.INFO)
        logging.getLogger().addHandler(self._handler)
        log.setLevel(logging.INFO)
        log.info(
            "job %s (%s) attempt %d/%d on %s pid %d%s",
            self.job.id,
            self.job.kind,
            self.attempt,
            self.job.max_attempts,
            self.job.worker_host,
            os.getpid(),
            ", resuming from the last checkpoint" if self.resume else "",
        )
        self._watchdog.start()
        self.artifacts.watch(self.settings.heartbeat_seconds, checkpoints=self.job.kind == TRAIN)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        try:
            self._flush()
            if exc is None:
                if self.outcome is None:
                    self._finish(
                        FAILED,
                        message="failed: the task ended without a result",
                        error="no result recorded",
                        hint="this is a bug in the playground; please report it",
                    )
                return False
            if not isinstance(exc, Exception):
                # SystemExit / KeyboardInterrupt: the worker is shutting down. The job stays running, its heartbeat
                # stops, and the recovery sweep resumes it elsewhere from its last checkpoint.
                log.warning("job %s interrupted by %s; it will be resumed by another worker", self.job.id, exc_type)
                return False
            if self.should_stop():
                self._stopped()
            else:
                log.error("job %s failed:\n%s", self.job.id, "".join(traceback.format_exception(exc)))
                error, hint = describe_failure(exc, self.job.id)
                error = user_paths(error, self.settings.home)  # users see their file's name, not the server's paths
                self._finish(FAILED, message=f"failed: {error}", error=error, hint=hint)
            return True  # recorded in the store; Celery has nothing more to do with it
        finally:
            self._done.set()
            self.artifacts.stop()
            if self._handler is not None:
                logging.getLogger().removeHandler(self._handler)
                self._handler.close()
            self._keep_log()

    def _keep_log(self) -> None:
        # The log's last lines (the traceback of a failure) go to the store too: for a job that failed on another
        # host, that copy is the only one the web app can show.
        try:
            self.artifacts.publish_log()
        except OSError as exc:
            log.warning("job %s: could not keep its log in the artifact store: %s", self.job.id, exc)

    def fetch(self) -> bool:
        """Fetch from the artifact store what the job needs; False (job failed) when the store cannot be read."""
        try:
            self._spec = self.artifacts.fetch(self.job.spec, later_attempt=self.attempt > 1)
        except OSError as exc:
            log.error("job %s: could not fetch its files from the artifact store: %s", self.job.id, exc)
            error = user_paths(" ".join(str(exc).split()), self.settings.home)
            hint = "check PLAYGROUND_ARTIFACTS and the store's credentials on this worker, then submit again"
            self._finish(FAILED, message=f"failed: {error}", error=error, hint=hint)
            return False
        return True

    def finished_by_earlier_attempt(self) -> bool:
        """Tidy what an earlier attempt left in the job folder; True if its output was complete (job now succeeded)."""
        if self.attempt <= 1:
            return False
        report = self.artifact_dir / "report.json"
        model = self.artifact_dir / "model"
        if report.is_file() and (model.is_dir() or self.job.kind != TRAIN):
            with self:
                log.info("job %s: an earlier attempt finished before its worker died; not running again", self.job.id)
                self.succeeded(json.loads(report.read_text(encoding="utf-8")))
            return True
        if model.is_dir() and self.job.kind == TRAIN:
            shutil.rmtree(model)  # the worker died between writing model/ and report.json; checkpoints remain
        for checkpoint in (self.artifact_dir / "checkpoints").glob("checkpoint-*"):
            if not _complete_checkpoint(checkpoint):
                # Killed while saving: the Trainer writes trainer_state.json last, so without it the folder is
                # half-written, and resuming from it would fail. The previous complete one is still there.
                log.warning("job %s: removing half-written %s", self.job.id, checkpoint.name)
                shutil.rmtree(checkpoint, ignore_errors=True)
        return False

    # ---- internals -----------------------------------------------------------------------------------------------

    def _log_line(self, data: dict[str, Any]) -> None:
        kind, step, total = data["kind"], data["step"], data["total_steps"]
        if kind == "start":
            log.info("training from step %d of %d", step, total)
        elif kind == "eval":
            # Timing figures (runtime, samples per second) are the Trainer's bookkeeping, not scores.
            skip = {"loss", "epoch", "runtime", "samples_per_second", "steps_per_second"}
            numbers = ", ".join(f"{k} {v:.4f}" for k, v in sorted(data["metrics"].items()) if k not in skip)
            loss = f"{data['loss']:.4f}" if data["loss"] is not None else "n/a"
            log.info("epoch %.2f (step %d/%d): validation loss %s, %s", data["epoch"], step, total, loss, numbers)
        elif kind == "log" and time.monotonic() - self._last_log_line >= 10:
            self._last_log_line = time.monotonic()
            log.info(
                "step %d/%d, epoch %.2f: loss %.4f, learning rate %.2e",
                step,
                total,
                data["epoch"],
                data["loss"] or float("nan"),
                data["learning_rate"] or 0.0,
            )

    def _stopped(self) -> None:
        if self._lost_at is not None:
            log.warning("job %s stopped: another attempt owns it now", self.job.id)
            self.outcome = "lost"
            return
        log.info("job %s stopped on request at step %s", self.job.id, self._progress.get("step"))
        self._finish(CANCELLED, message=f"cancelled at step {self._progress.get('step', 0)}")

    def _flush(self) -> None:
        if not self._progress and not self._pending:
            return
        events, self._pending = self._pending, []
        try:
            owned = self.store.record_progress(self.job.id, self.attempt, self._progress, events)
        except SQLAlchemyError as exc:
            self._pending = events + self._pending  # kept for the next write: no point of the history is lost
            log.warning("job %s: could not write progress (%s); will retry", self.job.id, exc)
            return
        self._last_flush = time.monotonic()
        if not owned and not self._finishing:  # after the outcome is recorded the job is no longer 'running'
            self._lose()

    def _finish(self, status: str, *, message: str, **fields: Any) -> None:
        self._finishing = True  # from here on the watchdog must not read the job's new status as a lost lease
        deadline = time.monotonic() + _FINISH_RETRY_SECONDS
        while True:
            try:
                owned = self.store.finish(self.job.id, self.attempt, status, message=message, **fields)
                break
            except SQLAlchemyError as exc:
                if time.monotonic() > deadline:
                    log.error(
                        "job %s: could not record %s: %s; the recovery sweep will retry the job",
                        self.job.id,
                        status,
                        exc,
                    )
                    raise
                time.sleep(1)
        self.outcome = status if owned else "lost"
        if not owned:
            log.warning("job %s: not recorded as %s, another attempt owns it", self.job.id, status)

    def _lose(self) -> None:
        if self._lost_at is None:
            self._lost_at = time.monotonic()
            log.warning("job %s: this attempt (%d) no longer owns the job; stopping", self.job.id, self.attempt)

    def _watch(self) -> None:
        poll = min(0.5, self.settings.heartbeat_seconds / 2)
        beat_due = 0.0
        while not self._done.wait(poll):
            now = time.monotonic()
            beat = now >= beat_due
            try:
                owned, cancel = self.store.heartbeat(self.job.id, self.attempt, beat=beat)
            except SQLAlchemyError as exc:
                log.warning("job %s: job store unreachable (%s)", self.job.id, exc)
                continue
            if beat:
                beat_due = now + self.settings.heartbeat_seconds
            if not owned and not self._finishing and not self._done.is_set():
                self._lose()
            if cancel and self._cancel_at is None:
                self._cancel_at = now
                log.info("job %s: cancel requested; stopping at the next training step", self.job.id)
            self._enforce(now)

    def _enforce(self, now: float) -> None:
        grace = self.settings.cancel_grace_seconds
        if self._cancel_at is not None and now - self._cancel_at > grace:
            self._hard_stop(CANCELLED, f"cancelled: stopped by force, it did not stop within {grace:g} s")
        elif self._lost_at is not None and now - self._lost_at > grace:
            self._hard_stop(None, "stopped by force: another attempt owns the job")
        elif now - self._started > self.settings.max_job_seconds:
            self._hard_stop(FAILED, f"failed: ran longer than {self.settings.max_job_hours:g} h")

    def _hard_stop(self, status: str | None, message: str) -> None:
        # Engine code that never reaches a step (a huge data file, a hung kernel) cannot stop cooperatively. Killing
        # this process is safe: the store is updated first, the worker replaces the process, and the message that
        # Celery puts back finds a finished job and is dropped.
        log.warning("job %s: %s", self.job.id, message)
        if status is not None:
            hint = None if status == CANCELLED else "raise PLAYGROUND_MAX_JOB_HOURS or train for fewer epochs"
            try:
                self.store.finish(
                    self.job.id,
                    self.attempt,
                    status,
                    message=message,
                    error=message.split(": ", 1)[1] if status == FAILED else None,
                    hint=hint,
                )
            except SQLAlchemyError as exc:
                log.error("job %s: could not record %s before stopping: %s", self.job.id, status, exc)
        logging.shutdown()
        os.kill(os.getpid(), signal.SIGKILL)


def _complete_checkpoint(folder: Path) -> bool:
    try:
        json.loads((folder / "trainer_state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return True


PHASE_LOG = {
    "preparing": "reading and checking the data",
    "loading": "loading the base model",
    "training": "training",
    "evaluating": "scoring the test split",
    "reporting": "writing the report and the model",
}


def report_summary(report: dict[str, Any]) -> dict[str, Any]:
    """The headline numbers of a report, and its warnings, for job lists."""
    metrics = report.get("metrics") or {}
    # Classifiers lead with macro-F1, taggers with entity micro-F1, chat models with held-out perplexity.
    keys = (
        "accuracy",
        "macro_f1",
        "weighted_f1",
        "micro_f1",
        "token_accuracy",
        "loss",
        "perplexity",
        "base_perplexity",
    )
    summary = {k: float(metrics[k]) for k in keys if _is_number(metrics.get(k))}
    baseline = report.get("baseline") or {}
    for key in ("macro_f1", "micro_f1"):
        if _is_number(baseline.get(key)):
            summary[f"baseline_{key}"] = float(baseline[key])
    summary: dict[str, Any] = {k: v for k, v in summary.items() if math.isfinite(v)}
    comparison = report.get("comparison")
    if isinstance(comparison, dict) and _is_number(comparison.get("delta")):  # what the techniques bought
        summary["comparison"] = {k: comparison.get(k) for k in ("metric", "metric_name", "delta", "better")}
    # A collapsed model or a loss to the baseline: the job list and the Playground say so before any number.
    warnings = [str(w) for w in report.get("warnings") or []]
    return {**summary, "warnings": warnings} if warnings else summary


def describe_failure(exc: BaseException, job_id: str) -> tuple[str, str]:
    """A one-line error and a hint on what to do next."""
    message = " ".join(str(exc).split()) or type(exc).__name__
    torch = sys.modules.get("torch")
    if isinstance(exc, DataError):
        return (
            message,
            "fix the data file or the column mapping (`playground inspect --train FILE` shows what is "
            "wrong), then submit again",
        )
    if isinstance(exc, ModelNotFoundError):
        return message, "pick a catalog model (`playground models`) or a local model folder, then submit again"
    if isinstance(exc, MemoryError) or (torch is not None and isinstance(exc, torch.OutOfMemoryError)):
        return f"out of memory: {message}", "lower batch_size or max_length, or pick a smaller base model"
    if isinstance(exc, ValueError | FileNotFoundError | FileExistsError):
        return message, "fix the job spec, then submit again"
    return f"{type(exc).__name__}: {message}", f"unexpected error; the traceback is in `playground jobs logs {job_id}`"


def _finite(value: Any) -> Any:
    # A diverged run logs NaN / inf, which PostgreSQL's JSON refuses and SQLite turns into NULL: store None.
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
