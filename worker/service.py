"""Start a worker: the Celery worker (prefork, one job per child process) plus its recovery sweeper beside it."""

from __future__ import annotations

import argparse
import logging
import os
import socket
import subprocess
import sys
from collections.abc import Mapping, Sequence

from celery.utils.nodenames import host_format

from worker.app import create_app
from worker.settings import Settings
from worker.sidetables import make_engine
from worker.store import JobStore
from worker.workers import WorkerStore

log = logging.getLogger(__name__)

# Progress bars drawn into a log file are noise: a job's progress goes to the store instead.
_CHILD_ENV = {
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


def run_worker(
    *, concurrency: int = 1, queues: Sequence[str] = (), loglevel: str = "INFO", settings: Settings | None = None
) -> int:
    """Run a worker in this process until it is stopped; returns the exit code."""
    if concurrency < 1:
        raise ValueError(f"--concurrency must be at least 1, got {concurrency}")
    settings = settings or Settings.from_env()
    queues = [q for q in queues if q] or [settings.queue]
    if "torch" in sys.modules:
        # Children are forked from this process: CUDA touched here would be unusable in every job.
        log.warning("torch is already imported in the worker's parent process; keep CUDA out of it")
    for name, value in _CHILD_ENV.items():
        os.environ.setdefault(name, value)  # inherited by every job's child process
    store = JobStore(settings.database, settings.home)
    store.create_schema()
    store.close()
    workers = WorkerStore(make_engine(settings.database))
    workers.create_schema()
    app = create_app(settings)
    broker = "embedded SQLite broker" if settings.embedded else "broker " + app.connection_for_write().as_uri()
    print(f"playground worker: {broker}, job store {_safe(settings.database)}, data dir {settings.home}", flush=True)
    sweeper = subprocess.Popen([sys.executable, "-m", "worker.recovery", "--parent", str(os.getpid())])
    nodename = f"playground-{os.getpid()}@%h"
    # Named as Celery names the node (and so as each job records its worker), to tie running jobs to their worker.
    # A process of its own, not a thread: Celery forks a child per job, and a thread must never be mid-lock then.
    who = ["--name", host_format(nodename), "--host", socket.gethostname(), "--queues", ",".join(queues)]
    beat = subprocess.Popen(
        [sys.executable, "-m", "worker.workers", "--parent", str(os.getpid()), *who, "--concurrency", str(concurrency)]
    )
    argv = [
        "worker",
        "--pool=prefork",
        f"--concurrency={concurrency}",
        f"--queues={','.join(queues)}",
        f"--loglevel={loglevel}",
        f"--hostname={nodename}",
        "--without-gossip",  # gossip and mingle need broadcast and only slow the start; the store is the truth
        "--without-mingle",
    ]
    try:
        app.worker_main(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    finally:
        for helper in (beat, sweeper):
            helper.terminate()
        for helper in (beat, sweeper):
            try:
                helper.wait(10)
            except subprocess.TimeoutExpired:
                helper.kill()
    return 0


def spawn_worker(
    *, concurrency: int = 1, queues: Sequence[str] = (), env: Mapping[str, str] | None = None, **popen: object
) -> subprocess.Popen:
    """Start a worker as a child process (in its own process group), e.g. beside `playground serve`."""
    command = [sys.executable, "-m", "worker", "--concurrency", str(concurrency)]
    if queues:
        command += ["--queues", ",".join(queues)]
    return subprocess.Popen(command, env=dict(env) if env is not None else None, start_new_session=True, **popen)


def _safe(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def add_worker_flags(parser: argparse.ArgumentParser) -> None:
    """The flags of `playground worker`, shared with the CLI."""
    parser.add_argument("--concurrency", type=int, default=1, help="jobs run at once (default 1; use 1 per GPU)")
    parser.add_argument(
        "--queues",
        action="append",
        help="queues to take jobs from, comma-separated (default PLAYGROUND_QUEUE or 'playground'); repeatable",
    )
    parser.add_argument("--loglevel", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])


def split_queues(values: list[str] | None) -> list[str]:
    """['a,b', 'c'] -> ['a', 'b', 'c']."""
    return [q.strip() for value in values or [] for q in value.split(",") if q.strip()]
