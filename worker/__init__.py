"""Job queue of Finetune Playground: Celery workers, a durable SQL job store, progress, cancel and recovery.

The web app, the CLI and the REST API use `worker.api`; `playground worker` runs `worker.service.run_worker`.
"""
