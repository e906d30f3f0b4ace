"""Job-queue settings, read from the environment: broker, job store, timings of heartbeats, recovery and cancel."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path

from engine.paths import data_home

DEFAULT_QUEUE = "playground"

# Environment variable -> field, for the timing knobs. Defaults suit real jobs (minutes to hours); tests shrink them.
_NUMBERS = {
    "PLAYGROUND_HEARTBEAT_SECONDS": "heartbeat_seconds",
    "PLAYGROUND_LEASE_SECONDS": "lease_seconds",
    "PLAYGROUND_SWEEP_SECONDS": "sweep_seconds",
    "PLAYGROUND_REQUEUE_AFTER_SECONDS": "requeue_after_seconds",
    "PLAYGROUND_CANCEL_GRACE_SECONDS": "cancel_grace_seconds",
    "PLAYGROUND_MAX_ATTEMPTS": "max_attempts",
    "PLAYGROUND_MAX_JOB_HOURS": "max_job_hours",
    "PLAYGROUND_PROGRESS_SECONDS": "progress_seconds",
    "PLAYGROUND_ARTIFACT_SWEEP_SECONDS": "artifact_sweep_seconds",
}


@dataclass(frozen=True)
class Settings:
    """Where jobs are queued and recorded, and how fast dead workers and lost messages are noticed."""

    home: Path
    broker_url: str | None = None  # None: the embedded SQLite broker under `home`, no server needed
    database_url: str | None = None  # None: a SQLite job store under `home`
    result_backend: str | None = None
    queue: str = DEFAULT_QUEUE
    heartbeat_seconds: float = 5.0  # a running job writes a heartbeat this often
    lease_seconds: float = 60.0  # a running job without a heartbeat for this long has lost its worker
    sweep_seconds: float = 15.0  # every worker runs the recovery sweep this often
    requeue_after_seconds: float = 60.0  # a queued job whose broker message is gone this long is sent again
    cancel_grace_seconds: float = 30.0  # a cancelled job that has not stopped by then is stopped by force
    max_attempts: int = 3  # a job whose worker died this many times is failed instead of resumed
    max_job_hours: float = 72.0  # a job running longer is stopped and failed; the visibility timeout is above it
    progress_seconds: float = 0.3  # progress reaches the store at most this often (a few writes a second)
    # The artifact store is swept of strays this often, and a stray must be this old: no upload takes as long.
    artifact_sweep_seconds: float = 3600.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from PLAYGROUND_* variables; a malformed number raises ValueError naming the variable."""
        env = os.environ if environ is None else environ
        home = Path(env["PLAYGROUND_HOME"]).expanduser().resolve() if env.get("PLAYGROUND_HOME") else data_home()
        numbers: dict[str, float | int] = {}
        kinds = {f.name: f.type for f in fields(cls)}
        for var, name in _NUMBERS.items():
            raw = env.get(var, "").strip()
            if not raw:
                continue
            try:
                value: float | int = int(raw) if kinds[name] == "int" else float(raw)
            except ValueError as exc:
                raise ValueError(f"{var}={raw!r} is not a number") from exc
            if value <= 0:
                raise ValueError(f"{var}={raw!r} must be greater than 0")
            numbers[name] = value
        settings = cls(
            home=home,
            broker_url=env.get("PLAYGROUND_BROKER_URL") or None,
            database_url=env.get("PLAYGROUND_DATABASE_URL") or None,
            result_backend=env.get("PLAYGROUND_RESULT_BACKEND") or None,
            queue=env.get("PLAYGROUND_QUEUE") or DEFAULT_QUEUE,
            **numbers,  # type: ignore[arg-type]
        )
        if settings.lease_seconds < 2 * settings.heartbeat_seconds:
            raise ValueError(
                f"PLAYGROUND_LEASE_SECONDS ({settings.lease_seconds:g}) must be at least twice "
                f"PLAYGROUND_HEARTBEAT_SECONDS ({settings.heartbeat_seconds:g}), or live jobs would look dead"
            )
        return settings

    @property
    def embedded(self) -> bool:
        """True when no broker URL is set and the SQLite broker under the data dir carries the messages."""
        return self.broker_url is None

    @property
    def broker(self) -> str:
        """The broker URL Celery connects to."""
        return self.broker_url or f"sqlite:///{self.home / 'broker.sqlite'}"

    @property
    def database(self) -> str:
        """The SQLAlchemy URL of the job store."""
        return self.database_url or f"sqlite:///{self.home / 'jobs.sqlite'}"

    @property
    def results(self) -> str:
        """Where Celery records task states (STARTED, SUCCESS); the job store stays the source of truth.

        A database, not Redis: with a Redis result backend every process that sends a job subscribes to its result
        channel, and a web app would fail to submit while Redis is down instead of leaving the job to the sweep.
        """
        if self.result_backend:
            return self.result_backend
        if self.database_url and not self.database_url.startswith("sqlite"):
            return f"db+{self.database_url}"
        return f"db+sqlite:///{self.home / 'celery-results.sqlite'}"  # apart from the store: no lock contention

    @property
    def jobs_dir(self) -> Path:
        """The folder that holds one artifact folder per job."""
        return self.home / "jobs"

    @property
    def max_job_seconds(self) -> float:
        return self.max_job_hours * 3600

    @property
    def visibility_timeout(self) -> int:
        """Redis redelivers an unacknowledged message after this long: above the longest job, so never mid-job."""
        return int(self.max_job_seconds + 3600)
