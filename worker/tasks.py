"""The Celery tasks: take a job id, call one engine function, record the outcome. Everything else is in runtime.py.

The engine is imported inside each task, so the worker's parent process never loads torch (and so never
initialises CUDA); each job's fresh child process does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from celery import Task, shared_task

from worker import runtime
from worker.app import EVALUATE_TASK, EXPORT_TASK, TRAIN_TASK
from worker.records import EVALUATE, EXPORT, TRAIN


def _run(task: Task, job_id: str, kind: str, work: Callable[[runtime.JobRun], dict[str, Any]]) -> str:
    # Claim the job (None: another delivery has it, or it has ended), run `work`, record its report as the outcome.
    run = runtime.start(job_id, kind, task_id=task.request.id, worker_name=task.request.hostname)
    if run is None:
        return "skipped"
    with run:
        run.succeeded(work(run))
    return run.outcome or "unknown"


@shared_task(name=TRAIN_TASK, bind=True)
def train_job(self, job_id: str) -> str:
    """Fine-tune the model a train job describes, resuming from its last checkpoint on a later attempt."""

    def work(run: runtime.JobRun) -> dict[str, Any]:
        from engine.train import train

        spec, output = run.spec, run.artifact_dir
        return train(spec, output, on_event=run.on_event, should_stop=run.should_stop, resume=run.resume).report

    return _run(self, job_id, TRAIN, work)


@shared_task(name=EVALUATE_TASK, bind=True)
def evaluate_job(self, job_id: str) -> str:
    """Evaluate a finished model on another labeled file."""

    def work(run: runtime.JobRun) -> dict[str, Any]:
        from engine.evaluation import evaluate

        spec = run.spec
        columns = {"text_column": spec.text_column, "label_column": spec.label_column, "format": spec.format}
        return evaluate(spec.model, spec.data, **columns, output=run.artifact_dir / "report.json")

    return _run(self, job_id, EVALUATE, work)


@shared_task(name=EXPORT_TASK, bind=True)
def export_job(self, job_id: str) -> str:
    """Make a deployable variant (bf16, int8, ONNX, pruned) of a finished model and measure it on its test split."""

    def work(run: runtime.JobRun) -> dict[str, Any]:
        from engine.export import export_model

        spec = run.spec
        how = {"sparsity": spec.sparsity, "prune": spec.prune, "on_event": run.on_event}
        return export_model(spec.model, spec.to, run.artifact_dir, **how)

    return _run(self, job_id, EXPORT, work)
