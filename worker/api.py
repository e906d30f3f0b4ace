"""The one job API that the web app, the CLI and the REST API all use.

    job_id = submit(spec, owner)          # record the job (queued), then send its id to the broker
    get(job_id) / list_jobs(owner)        # plain Job records from the store, the source of truth
    cancel(job_id)                        # cooperative stop, then by force after a grace period
    events(job_id, since)                 # status changes and every logged loss / eval point, after an event id

Module-level functions use settings from the environment; `Jobs(settings)` gives the same API for other settings.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import time
from collections import deque
from functools import cache
from pathlib import Path
from typing import Any

from celery import Celery
from kombu.exceptions import OperationalError as BrokerError
from sqlalchemy.engine import Engine

from engine.catalog import CATALOG
from engine.spec import JobSpec, absolute_path
from worker import broker
from worker.app import create_app
from worker.artifacts import ArtifactStore
from worker.job_artifacts import LOG_FILE
from worker.records import EXPORT, QUEUED, RUNNING, STATUSES, SUCCEEDED, TRAIN, Job, JobEvent
from worker.settings import Settings
from worker.shares import ShareStore
from worker.specs import EvaluateSpec, ExportSpec, Spec, kind_of, parse_spec
from worker.store import JobStore

log = logging.getLogger(__name__)

__all__ = [
    "JobNotFoundError",
    "Jobs",
    "cancel",
    "delete",
    "events",
    "get",
    "history",
    "list_jobs",
    "log_tail",
    "resolve",
    "submit",
    "wait",
]


class JobNotFoundError(ValueError):
    """No job with this id (or none that this owner may see)."""


class Jobs:
    """Submit and follow jobs for one set of settings (one store, one broker)."""

    def __init__(self, settings: Settings | None = None):
        self.settings = settings or Settings.from_env()
        self.store = JobStore(self.settings.database, self.settings.home)
        self.store.create_schema()
        # Job folders live here too when PLAYGROUND_ARTIFACTS names a store; deleting a job removes them from it.
        self.artifacts = ArtifactStore.from_env(self.settings.home)
        self._app: Celery | None = None
        self._shares: ShareStore | None = None

    @property
    def app(self) -> Celery:
        if self._app is None:
            self._app = create_app(self.settings)
        return self._app

    @property
    def shares(self) -> ShareStore:
        """The share links on the job store's database; its table is made on first use, once."""
        if self._shares is None:
            shares = _SharesOnJobStore(self.store)
            shares.create_schema()
            self._shares = shares
        return self._shares

    def close(self) -> None:
        """Release database and broker connections."""
        self.store.close()
        if self._app is not None:
            self._app.close()
            self._app = None

    def submit(self, spec: Spec | dict[str, Any], owner: str, *, queue: str | None = None) -> str:
        """Record a job as queued and send it to the workers; returns its id."""
        owner = (owner or "").strip()
        if not owner or len(owner) > 200:
            raise ValueError(f"owner must be 1 to 200 characters, got {owner!r}")
        parsed = parse_spec(spec) if isinstance(spec, dict) else spec
        if not isinstance(parsed, JobSpec | EvaluateSpec | ExportSpec):
            raise ValueError(
                f"spec must be a JobSpec, an EvaluateSpec, an ExportSpec or a dict, not {type(spec).__name__}"
            )
        parsed = self._localise(parsed, owner)
        job = self.store.create(
            job_id=secrets.token_hex(8),
            owner=owner,
            kind=kind_of(parsed),
            spec=parsed.model_dump(mode="json"),
            queue=queue or self.settings.queue,
            max_attempts=self.settings.max_attempts,
        )
        try:
            broker.publish(self.app, job, job.task_id or "")
        except (BrokerError, OSError) as exc:
            # Recorded is enough: a worker's recovery sweep sends queued jobs whose message is missing.
            log.warning(
                "job %s is recorded but not yet sent (%s); a worker will send it once the broker is back", job.id, exc
            )
        return job.id

    def get(self, job_id: str, *, owner: str | None = None) -> Job:
        """The job's record; JobNotFoundError if there is none (or it belongs to another owner)."""
        job = self.store.get(job_id)
        if job is None or (owner is not None and job.owner != owner):
            raise JobNotFoundError(f"no job {job_id!r}; `playground jobs list` shows the jobs there are")
        return job

    def resolve(self, id_or_prefix: str, *, owner: str | None = None) -> str:
        """The full id of a job from its id or a unique prefix of it (as printed by `playground jobs`)."""
        matches = self.store.find(id_or_prefix.strip()) if id_or_prefix.strip() else []
        if owner is not None:
            matches = [m for m in matches if self.get(m).owner == owner]
        if len(matches) == 1 or id_or_prefix in matches:
            return id_or_prefix if id_or_prefix in matches else matches[0]
        if not matches:
            raise JobNotFoundError(f"no job {id_or_prefix!r}; `playground jobs list` shows the jobs there are")
        raise ValueError(f"job id prefix {id_or_prefix!r} is ambiguous: {', '.join(matches)}")

    def list_jobs(self, owner: str | None = None, *, status: str | None = None, limit: int = 200) -> list[Job]:
        """Jobs newest first, of one owner or (owner None) of everyone."""
        if status is not None and status not in STATUSES:
            raise ValueError(f"unknown status {status!r}; statuses are {', '.join(STATUSES)}")
        return self.store.list(owner, (status,) if status else (), limit)

    def cancel(self, job_id: str, *, owner: str | None = None) -> Job:
        """Cancel a job: a queued one at once, a running one at its next step (by force after the grace period)."""
        self.get(job_id, owner=owner)
        self.store.request_cancel(job_id)
        return self.get(job_id)

    def delete(self, job_id: str, *, owner: str | None = None) -> Job:
        """Remove a finished job: its folder (model, report, log; in the artifact store too), then its record and
        events; returns the removed record. Refused (ValueError, nothing removed) while another job needs it."""
        job = self.get(job_id, owner=owner)
        if not job.finished:
            raise ValueError(f"job {job.id} is {job.status}; cancel it first, and delete it once it has stopped")
        folder = Path(job.artifact_dir) if job.artifact_dir else None
        if folder is not None and not folder.resolve().is_relative_to(self.settings.home.resolve()):
            folder = None  # only ever inside the data dir
        if folder is not None:
            self.refuse_if_in_use(folder, f"job {job.id}")
            if job.kind == TRAIN:
                self._refuse_if_exported(job, folder)
            self._remove_folder(job, folder)
        # Its share links are revoked, not left pointing at nothing: the owner's list of links stays true.
        if revoked := self.shares.revoke_job(job.id):
            log.info("job %s: %d share link(s) revoked with it", job.id, revoked)
        # The record goes last: a delete that fails halfway leaves the job listed, and deleting it again finishes.
        if not self.store.delete_finished(job.id):
            raise JobNotFoundError(f"no job {job_id!r}; `playground jobs list` shows the jobs there are")
        return job

    def active_users_of(self, path: Path) -> list[Job]:
        """The waiting and running jobs whose spec names `path` (a data file, or a folder of a model they read)."""
        names = {str(path), str(Path(path).resolve())}
        active = self.store.list(None, (QUEUED, RUNNING), 1000)
        return [job for job in active if any(name in json.dumps(job.spec or {}, ensure_ascii=False) for name in names)]

    def refuse_if_in_use(self, path: Path, what: str) -> None:
        """ValueError naming the job when a waiting or running job reads `path`: it would fail halfway."""
        users = self.active_users_of(path)
        if users:
            job = users[0]
            raise ValueError(f"{what} is used by job {job.id}, which is {job.status}; wait for it to end or cancel it")

    def _refuse_if_exported(self, job: Job, folder: Path) -> None:
        # Variants are found through the model they were exported from: deleting it would orphan them, so the user
        # deletes them first (refused rather than cascaded: a delete never removes more than the job it names).
        model = (folder / "model").resolve()
        exports = [
            other
            for other in self.store.list(job.owner, (SUCCEEDED,), 1000)
            if other.kind == EXPORT and Path(str((other.spec or {}).get("model", ""))).resolve() == model
        ]
        if exports:
            named = ", ".join(f"{(e.spec or {}).get('to', '?')} (job {e.id})" for e in exports)
            raise ValueError(
                f"job {job.id} has exported variants: {named}; delete those first "
                f"(playground jobs delete ID, or the Jobs tab), then this job"
            )

    def _remove_folder(self, job: Job, folder: Path) -> None:
        try:
            self.artifacts.delete(folder)
            left = folder.exists() or (self.artifacts.remote and self.artifacts.exists(folder))
        except OSError as exc:
            log.warning("could not remove the folder of job %s: %s", job.id, exc)  # the server's paths stay here
            raise ValueError(f"could not remove the files of job {job.id}; the job is kept, try again") from exc
        if left:
            raise ValueError(f"could not remove all files of job {job.id}; the job is kept, delete it again")

    def events(self, job_id: str, since: int = 0, *, owner: str | None = None, limit: int = 1000) -> list[JobEvent]:
        """Events after event id `since`, oldest first: status changes and every logged loss and eval point."""
        self.get(job_id, owner=owner)
        return self.store.events(job_id, since, limit)

    def history(self, job_id: str, *, owner: str | None = None) -> list[JobEvent]:
        """The metric history (log and eval points) by step; a step re-run by a resumed attempt counts once."""
        self.get(job_id, owner=owner)
        points: dict[tuple[str, int | None], JobEvent] = {}
        since = 0
        while batch := self.store.events(job_id, since, 1000):
            for ev in batch:
                if ev.kind in ("log", "eval"):
                    points[(ev.kind, ev.step)] = ev  # later attempts overwrite earlier ones
            since = batch[-1].id
        return sorted(points.values(), key=lambda ev: (ev.step or 0, ev.kind != "log", ev.id))

    def log_tail(self, job_id: str, lines: int = 200, *, owner: str | None = None) -> str:
        """The last `lines` lines of the job's log file (empty before the job starts)."""
        job = self.get(job_id, owner=owner)
        if not job.artifact_dir:
            return ""
        path = job.artifact_dir / LOG_FILE
        # This host's file when the job ran here (or there is no store); else the store's copy, read fresh each
        # time: the worker keeps it there every few seconds, and once more when the attempt ends.
        ran_here = path.is_file() and (job.finished or job.worker_host == socket.gethostname())
        stored = None if ran_here else self.artifacts.read(path)
        if stored is not None:
            return "".join(deque(stored.decode("utf-8", errors="replace").splitlines(keepends=True), maxlen=lines))
        if not path.is_file():
            return ""
        with path.open(encoding="utf-8", errors="replace") as handle:
            return "".join(deque(handle, maxlen=lines))

    def wait(self, job_id: str, *, timeout: float | None = None, poll: float = 0.5) -> Job:
        """Block until the job is finished (TimeoutError after `timeout` seconds)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not (job := self.get(job_id)).finished:
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} is still {job.status} after {timeout:g} s")
            time.sleep(poll)
        return job

    def _localise(self, spec: Spec, owner: str) -> Spec:
        # Workers run in another directory (or on another host sharing the data dir): relative paths that exist
        # here are made absolute, and an evaluation or export may name its model by the id of a finished training
        # job.
        if isinstance(spec, JobSpec):
            data = spec.data.with_absolute_paths()
            base_model = spec.base_model if spec.base_model in CATALOG else _absolute(spec.base_model)
            return spec.model_copy(update={"data": data, "base_model": base_model})
        model = spec.model
        job = self.store.get(model) if not Path(model).exists() else None
        if job is not None and job.owner == owner:
            if job.kind != TRAIN or job.status != SUCCEEDED:
                raise ValueError(f"job {model} is a {job.status} {job.kind} job; pick a succeeded training job")
            model = str(job.artifact_dir / "model")
        if isinstance(spec, ExportSpec):
            return spec.model_copy(update={"model": _absolute(model)})
        return spec.model_copy(update={"model": _absolute(model), "data": absolute_path(spec.data)})


def _absolute(path: str | None) -> str | None:
    if path is None or os.path.isabs(path) or not Path(path).exists():
        return path
    return str(Path(path).resolve())


class _SharesOnJobStore(ShareStore):
    """The share store on whichever engine the job store has now: it opens a new one after a fork or a close."""

    def __init__(self, store: JobStore):  # no super().__init__: the engine is the job store's, not one kept here
        self._store = store

    @property
    def engine(self) -> Engine:  # type: ignore[override]
        return self._store.engine


@cache
def _default(settings: Settings, pid: int) -> Jobs:
    return Jobs(settings)


def default_jobs() -> Jobs:
    """The Jobs API for the settings in the environment (one per process and settings)."""
    return _default(Settings.from_env(), os.getpid())


def submit(spec: Spec | dict[str, Any], owner: str, *, queue: str | None = None) -> str:
    """Record a job as queued and send it to the workers; returns its id."""
    return default_jobs().submit(spec, owner, queue=queue)


def get(job_id: str, *, owner: str | None = None) -> Job:
    """The job's record; JobNotFoundError if there is none."""
    return default_jobs().get(job_id, owner=owner)


def resolve(id_or_prefix: str, *, owner: str | None = None) -> str:
    """The full id of a job from a unique prefix."""
    return default_jobs().resolve(id_or_prefix, owner=owner)


def list_jobs(owner: str | None = None, *, status: str | None = None, limit: int = 200) -> list[Job]:
    """Jobs newest first, of one owner or of everyone."""
    return default_jobs().list_jobs(owner, status=status, limit=limit)


def cancel(job_id: str, *, owner: str | None = None) -> Job:
    """Cancel a job; returns its record."""
    return default_jobs().cancel(job_id, owner=owner)


def delete(job_id: str, *, owner: str | None = None) -> Job:
    """Remove a finished job with its folder; returns the removed record."""
    return default_jobs().delete(job_id, owner=owner)


def events(job_id: str, since: int = 0, *, owner: str | None = None) -> list[JobEvent]:
    """Events after event id `since`."""
    return default_jobs().events(job_id, since, owner=owner)


def history(job_id: str, *, owner: str | None = None) -> list[JobEvent]:
    """The metric history by step."""
    return default_jobs().history(job_id, owner=owner)


def log_tail(job_id: str, lines: int = 200, *, owner: str | None = None) -> str:
    """The end of the job's log file."""
    return default_jobs().log_tail(job_id, lines, owner=owner)


def wait(job_id: str, *, timeout: float | None = None) -> Job:
    """Block until the job is finished."""
    return default_jobs().wait(job_id, timeout=timeout)
