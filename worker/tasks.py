"""The Celery tasks: take a job id, call one engine function, record the outcome. Everything else is in runtime.py.

The engine is imported inside each task, so the worker's parent process never loads torch (and so never
initialises CUDA); each job's fresh child process does.
"""

from __future__ import annotations

from celery import shared_task

from worker import runtime
from worker.app import EVALUATE_TASK, TRAIN_TASK
from worker.records import EVALUATE, TRAIN


@shared_task(name=TRAIN_TASK, bind=True)
def train_job(self, job_id: str) -> str:
    """Fine-tune the model a train job describes, resuming from its last checkpoint on a later attempt."""
    run = runtime.start(job_id, TRAIN, task_id=self.request.id, worker_name=self.request.hostname)
    if run is None:
        return "skipped"
    with run:
        from engine.train import train

        spec, output = run.spec, run.artifact_dir
        result = train(spec, output, on_event=run.on_event, should_stop=run.should_stop, resume=run.resume)
        run.succeeded(result.report)
    return run.outcome or "unknown"


@shared_task(name=EVALUATE_TASK, bind=True)
def evaluate_job(self, job_id: str) -> str:
    """Evaluate a finished model on another labeled file."""
    run = runtime.start(job_id, EVALUATE, task_id=self.request.id, worker_name=self.request.hostname)
    if run is None:
        return "skipped"
    with run:
        from engine.evaluation import evaluate

        spec = run.spec
        report = evaluate(
            spec.model,
            spec.data,
            text_column=spec.text_column,
            label_column=spec.label_column,
            format=spec.format,
            output=run.artifact_dir / "report.json",
        )
        run.succeeded(report)
    return run.outcome or "unknown"
