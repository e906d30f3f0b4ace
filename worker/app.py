"""The Celery app: broker and result backend from settings, and the delivery rules every job relies on."""

from __future__ import annotations

from datetime import timedelta

from celery import Celery

from worker.embedded import TRANSPORT as EMBEDDED_TRANSPORT
from worker.records import EVALUATE, EXPORT, TRAIN
from worker.settings import Settings

TRAIN_TASK = "playground.train_job"
EVALUATE_TASK = "playground.evaluate_job"
EXPORT_TASK = "playground.export_job"
TASK_FOR_KIND = {TRAIN: TRAIN_TASK, EVALUATE: EVALUATE_TASK, EXPORT: EXPORT_TASK}


def create_app(settings: Settings | None = None) -> Celery:
    """A Celery app for these settings; the tasks in worker.tasks attach to it when a worker starts."""
    settings = settings or Settings.from_env()
    settings.home.mkdir(parents=True, exist_ok=True)
    app = Celery("playground", include=["worker.tasks"], set_as_current=False)
    transport_options = {} if settings.embedded else {"visibility_timeout": settings.visibility_timeout}
    app.conf.update(
        broker_url=settings.broker,
        broker_transport=EMBEDDED_TRANSPORT if settings.embedded else None,
        broker_transport_options=transport_options,
        broker_connection_retry_on_startup=True,
        result_backend=settings.results,
        result_backend_transport_options=transport_options,
        result_expires=timedelta(days=7),
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_default_queue=settings.queue,
        # One job per worker process at a time; a job's message is acknowledged only once the job has ended, and
        # goes back to the queue if the process running it dies (the store's claim keeps it from running twice).
        worker_prefetch_multiplier=1,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_track_started=True,
        # A fresh process per job: all of its memory, GPU memory above all, goes back when the job ends.
        worker_max_tasks_per_child=1,
        # After a job process is killed (hard cancel, out of memory) the worker waits this long for a result that
        # will never come before it takes the next job (Celery's default is 10 s); the store has the outcome.
        worker_lost_wait=1.0,
        # A blip in the broker connection must not cancel hours of training; the store knows the job is running.
        worker_cancel_long_running_tasks_on_connection_loss=False,
        # Remote control needs fanout, which the embedded broker lacks; hard cancel works without it.
        worker_enable_remote_control=not settings.embedded,
        worker_send_task_events=False,
        task_send_sent_event=False,
        worker_redirect_stdouts_level="INFO",
    )
    return app
