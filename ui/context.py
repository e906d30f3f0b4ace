"""What the web app's callbacks and REST routes share: the stores, the users, and the few operations both need.

One `AppContext` is created per web process and handed to every tab and route; it holds no per-user data (that lives
in the job store, or in the browser's gr.State), only connections and a small cache of loaded models.
"""

from __future__ import annotations

import gc
import getpass
import json
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.catalog import CATALOG
from engine.errors import DataError
from engine.spec import DATA_FILES, DataSpec, EvaluateSpec, ExportSpec, JobSpec, TrainingParams, shown
from engine.tasks import get_task
from ui.users import Users
from worker.api import JobNotFoundError, Jobs
from worker.artifacts import ArtifactStore
from worker.quotas import QuotaGuard, Quotas
from worker.records import EXPORT, SUCCEEDED, TRAIN, Job
from worker.settings import Settings
from worker.specs import Spec, parse_spec
from worker.tokens import ApiTokenStore
from worker.uploads import Dataset, DatasetStore, looks_like_dataset_id, user_paths
from worker.workers import WorkerStore

if TYPE_CHECKING:
    from engine.predict import Predictor

MODEL_FOLDER = "model"
REPORT_FILE = "report.json"
ORIGINAL = "original"  # the variant name of a model as training saved it


@dataclass(frozen=True)
class Submission:
    """A queued job, and what its owner should know before it trains (a base model that cannot read the texts)."""

    job_id: str
    warnings: list[str] = field(default_factory=list)


class AccessError(ValueError):
    """A user named something (a file, a model folder) that is not theirs to use."""


def inspect_task_data(
    task: str, data: DataSpec, *, base_model: str | None = None, max_length: int | None = None, seed: int = 42
) -> dict[str, Any]:
    """The validation summary of a data mapping for one task; raises DataError with a readable message.

    When the base model (by default the task's) reads the texts badly, the summary's first notice names a better one.
    """
    from engine.language import advise

    # No tokenizer in the web process: lengths are estimated in tokens here; the report has exact counts.
    if max_length is None:  # the task's own default: chat's 512, not the classifier's 128
        max_length = get_task(task).default_params.get("max_length", TrainingParams.model_fields["max_length"].default)
    summary = get_task(task).inspect(data, max_length=max_length, seed=seed)
    advise(summary, task, base_model or get_task(task).default_base_model)
    if data.unlabeled:  # read now, so that a bad unlabeled file is refused before the job is queued
        from engine.techniques.unlabeled import read_unlabeled

        texts = read_unlabeled(data.unlabeled, text_column=data.text_column, encoding=data.encoding)
        summary["unlabeled"] = {"file": Path(data.unlabeled).name, "texts": len(texts)}
    return summary


def local_owner() -> str:
    """The owner in single-user mode: PLAYGROUND_OWNER or the login name, as for `playground submit`."""
    return os.environ.get("PLAYGROUND_OWNER") or getpass.getuser()


class PredictorCache:
    """The last few finished models loaded for the playground, so a second question does not reload the weights.

    At most `size` models stay loaded, and one unused for `idle_seconds` is dropped at the next lookup, so a chat
    model tried once does not hold its memory for the life of the web process.
    """

    def __init__(self, size: int = 3, idle_seconds: float | None = None):
        self.size = size
        self.idle_seconds = (
            float(os.environ.get("PLAYGROUND_MODEL_IDLE_SECONDS", "600")) if idle_seconds is None else idle_seconds
        )
        self._models: OrderedDict[tuple[str, float], Predictor] = OrderedDict()
        self._used: dict[tuple[str, float], float] = {}
        self._lock = threading.Lock()

    def get(self, model_dir: Path) -> Predictor:
        """The Predictor for `model_dir`, loaded once; a model folder rewritten since is loaded again."""
        from engine.predict import Predictor

        config = model_dir / "config.json"
        key = (str(model_dir.resolve()), config.stat().st_mtime if config.exists() else 0.0)
        with self._lock:  # one load at a time: two users opening the same model must not load it twice
            now = time.monotonic()
            for stale in [k for k, used in self._used.items() if now - used > self.idle_seconds and k != key]:
                self._forget(stale)
            self._used[key] = now
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key]
            predictor = Predictor(model_dir)
            self._models[key] = predictor
            while len(self._models) > self.size:
                self._forget(next(iter(self._models)))
            return predictor

    def __len__(self) -> int:
        return len(self._models)

    def _forget(self, key: tuple[str, float]) -> None:
        self._models.pop(key, None)
        self._used.pop(key, None)
        gc.collect()  # weights are large; hand the memory back now rather than at some later collection


class AppContext:
    """Stores, users and shared operations of one web process."""

    def __init__(self, settings: Settings | None = None, users: Users | None = None):
        self.settings = settings or Settings.from_env()
        self.users = users or Users()
        self.jobs = Jobs(self.settings)
        engine = self.jobs.store.engine
        self.datasets = DatasetStore(engine, self.settings.home)
        self.datasets.create_schema()
        # Uploads, models and reports: kept in the artifact store too when PLAYGROUND_ARTIFACTS names one.
        self.artifacts = self.datasets.artifacts = self.jobs.artifacts = ArtifactStore.from_env(self.settings.home)
        self.quotas = QuotaGuard(Quotas.from_env(), self.jobs.store, self.datasets)
        # Every upload path (Data tab, Jobs tab, REST) keeps files through the store: the disk quota is checked there.
        self.datasets.admit = lambda owner, size: self.quotas.check_disk(owner, size)
        self.shares = self.jobs.shares  # the one share store of this process: deleting a job revokes through it
        self.tokens = ApiTokenStore(engine)
        self.tokens.create_schema()
        self.workers = WorkerStore(engine)  # worker heartbeats, for /metrics and the System view
        self.workers.create_schema()
        self.predictors = PredictorCache()
        self.local_owner = local_owner()

    def close(self) -> None:
        """Release database and broker connections."""
        self.jobs.close()

    # ---- who is asking -------------------------------------------------------------------------------------------

    def owner(self, username: str | None) -> str:
        """The owner of everything a request touches: the logged-in user, or the local user without auth."""
        if not self.users.enabled:
            return self.local_owner
        if not username or username not in self.users.passwords:
            raise AccessError("you are not logged in; reload the page and log in again")
        return username

    def is_admin(self, owner: str | None) -> bool:
        """True for an admin, who may list and cancel everyone's jobs; in single-user mode the local user is one."""
        if not self.users.enabled:
            return owner == self.local_owner
        return self.users.is_admin(owner)

    # ---- jobs and models -----------------------------------------------------------------------------------------

    def job(self, job_id: str | None, owner: str) -> Job:
        """The owner's job; JobNotFoundError (a ValueError) for a missing id or someone else's job."""
        if not job_id:
            raise JobNotFoundError("no job selected; pick one from the list")
        return self.jobs.get(job_id.strip(), owner=owner)

    def managed_job(self, job_id: str | None, owner: str) -> Job:
        """A job the caller may follow and cancel: their own, or anyone's for an admin (JobNotFoundError else)."""
        if not job_id:
            raise JobNotFoundError("no job selected; pick one from the list")
        return self.jobs.get(job_id.strip(), owner=None if self.is_admin(owner) else owner)

    def finished_model(self, job_id: str | None, owner: str) -> Job:
        """The owner's succeeded training job, whose model/ folder can be used."""
        job = self.job(job_id, owner)
        if job.kind != TRAIN:
            raise ValueError(f"job {job.id} is an {job.kind} job; pick a training job to use its model")
        if job.status != SUCCEEDED:
            raise ValueError(f"job {job.id} is {job.status}; only a finished (succeeded) training job has a model")
        return job

    def model_dir(self, job: Job) -> Path:
        """Where a training job's model folder is (it may be on another host; `local_model_dir` fetches it)."""
        return Path(job.artifact_dir or "") / MODEL_FOLDER

    def local_model_dir(self, job: Job) -> Path:
        """A training job's model folder on this host's disk, fetched from the artifact store if trained elsewhere."""
        return self.artifacts.local_copy(self.model_dir(job))

    def variants(self, job: Job) -> dict[str, Job]:
        """The newest succeeded export job of each variant (bf16, int8, ...) of a training job's model."""
        source = self.model_dir(job).resolve()
        found: dict[str, Job] = {}
        for export in self.finished_jobs(job.owner, EXPORT):  # newest first: the first of each variant wins
            spec = export.spec or {}
            if spec.get("to") not in found and Path(str(spec.get("model", ""))).resolve() == source:
                found[spec["to"]] = export
        return found

    def predictor(self, job_id: str | None, owner: str, variant: str | None = None) -> Predictor:
        """The loaded model of the owner's finished training job, or of one of its exported variants."""
        job = self.finished_model(job_id, owner)
        folder = self.model_dir(job)
        if variant and variant != ORIGINAL:
            exports = self.variants(job)
            if variant not in exports:
                have = ", ".join([ORIGINAL, *exports])
                raise ValueError(
                    f"job {job.id} has no {variant!r} variant; its variants are {have} (export one first: "
                    f"playground export {job.id} --to {variant})"
                )
            folder = self.model_dir(exports[variant])
        folder = self.artifacts.local_copy(folder)  # trained on another host: fetched once into the data folder
        if not (folder / "config.json").is_file():
            raise ValueError(f"the model files of job {job.id} are missing from {folder}; train it again")
        return self.predictors.get(folder)

    def report(self, job_id: str | None, owner: str) -> dict[str, Any]:
        """The report.json of the owner's succeeded job (training or evaluation)."""
        job = self.job(job_id, owner)
        if job.status != SUCCEEDED:
            raise ValueError(f"job {job.id} is {job.status}; a report exists once it has succeeded")
        path = self.artifacts.local_copy(Path(job.artifact_dir or "") / REPORT_FILE)
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ValueError(f"job {job.id} has no report.json in {path.parent}") from exc

    def delete_dataset(self, dataset_id: str | None, owner: str) -> Dataset:
        """Delete one of the owner's uploads (its file, then its record): LookupError when there is no such dataset
        of theirs, ValueError naming the job while a waiting or running job reads it, or saying to delete it again
        when its file could not be removed (the record is kept, so a second delete finishes the first)."""
        dataset = self.datasets.get(dataset_id, owner) if dataset_id else None
        if dataset is None:
            raise LookupError(f"no dataset {dataset_id!r} of yours; the Data tab or GET /api/datasets lists them")
        self.jobs.refuse_if_in_use(dataset.path, f"dataset {dataset.name}")
        self.datasets.delete(dataset.id, owner)
        return dataset

    def finished_jobs(self, owner: str, kind: str | None = None) -> list[Job]:
        """The owner's succeeded jobs, newest first (of one kind when given)."""
        jobs = self.jobs.list_jobs(owner, status=SUCCEEDED)
        return [job for job in jobs if kind is None or job.kind == kind]

    # ---- building and checking specs -----------------------------------------------------------------------------

    def prepare_spec(self, raw: dict[str, Any] | Spec, owner: str) -> Spec:
        """Validate a spec from a user, resolve dataset ids to their files, and refuse what is not theirs."""
        spec = parse_spec(raw, source="job spec") if isinstance(raw, dict) else raw
        if isinstance(spec, EvaluateSpec):
            return self._prepare_evaluation(spec, owner)
        if isinstance(spec, ExportSpec):
            return spec.model_copy(update={"model": self._source_model(spec.model, owner)})
        data = spec.data
        updates = {}
        for split in DATA_FILES:
            value = getattr(data, split)
            if value:
                updates[split] = self.data_file(value, owner, field=f"data.{split}")
        base_model = self._base_model(spec.base_model, owner)
        return spec.model_copy(update={"data": data.model_copy(update=updates), "base_model": base_model})

    def data_file(self, value: str, owner: str, *, field: str = "data") -> str:
        """The path of a data file named by dataset id (or, in single-user mode, by path), checked for access."""
        if looks_like_dataset_id(value):
            dataset = self.datasets.get(value, owner)
            if dataset is not None:
                return str(self.artifacts.local_copy(dataset.path))
            if self.users.enabled:
                raise AccessError(
                    f"{field}: no dataset {shown(value)}; upload the file first (Data tab or /api/datasets)"
                )
        path = Path(value).expanduser()
        if self.users.enabled and self.datasets.owner_of_path(path) != owner:
            raise AccessError(
                f"{field}: {shown(value)} is not one of your uploaded datasets; upload the file (Data tab or "
                "POST /api/datasets) and pass its id"
            )
        if not path.is_file():
            raise DataError(f"{field}: file {shown(value)} not found on the server")
        return str(path.resolve())

    def _base_model(self, name: str, owner: str) -> str:
        if name in CATALOG:
            return name
        # A finished training job of this owner can be fine-tuned further, named by its id.
        if self.jobs.store.get(name) is not None:
            return str(self.model_dir(self.finished_model(name, owner)))
        if self.users.enabled and Path(name).expanduser().exists():
            raise AccessError(
                f"base_model: local folders cannot be used when several users share the server; pick a catalog "
                f"model ({', '.join(CATALOG)}) or the id of one of your finished jobs"
            )
        return name

    def _prepare_evaluation(self, spec: EvaluateSpec, owner: str) -> EvaluateSpec:
        data = self.data_file(spec.data, owner, field="data")
        return spec.model_copy(update={"model": self._source_model(spec.model, owner), "data": data})

    def _source_model(self, model: str, owner: str) -> str:
        # A job id names that job's model; with several users only one's own jobs may be named, never a folder.
        if self.jobs.store.get(model) is not None or self.users.enabled:
            return str(self.model_dir(self.finished_model(model, owner)))
        return model

    def check_data(self, spec: JobSpec) -> dict[str, Any]:
        """The validation summary of a training spec's data; raises DataError with a readable message."""
        params = spec.params
        try:
            return inspect_task_data(
                spec.task, spec.data, base_model=spec.base_model, max_length=params.max_length, seed=params.seed
            )
        except DataError as exc:
            raise DataError(self.public_text(str(exc))) from exc

    def public_text(self, text: str) -> str:
        """A message with the server's paths cut to what the user knows (an upload's own file name)."""
        return user_paths(text, self.settings.home)

    def public_job(self, job: Job) -> dict[str, Any]:
        """A job record as its owner sees it over the web: file names instead of the server's paths."""
        raw = job.to_dict()
        raw["artifact_dir"] = None  # the files come through the report and download routes
        spec = raw.get("spec") or {}
        for key in ("base_model", "model", "data"):
            if isinstance(spec.get(key), str):
                spec[key] = self.public_text(spec[key])
        data = spec.get("data") if isinstance(spec.get("data"), dict) else {}
        for key in DATA_FILES:
            if isinstance(data.get(key), str):
                data[key] = self.public_text(data[key])
        for key in ("error", "hint", "message"):
            if isinstance(raw.get(key), str):
                raw[key] = self.public_text(raw[key])
        return raw

    def base_predictor(self, job: Job) -> Predictor:
        """The loaded base model a chat job was fine-tuned from, to answer the same message for comparison."""
        from engine.catalog import resolve_model

        spec = job.spec or {}
        folder = self.artifacts.local_copy(resolve_model(str(spec.get("base_model", "")), task=spec.get("task")))
        if not (folder / "config.json").is_file():
            raise ValueError(f"the base model of job {job.id} ({spec.get('base_model')}) is not a model folder")
        return self.predictors.get(folder)

    def submit(self, raw: dict[str, Any] | Spec, owner: str) -> Submission:
        """Check the owner's quotas, then the spec (access, then data), and queue it. Nothing is queued on an error."""
        from engine.catalog import check_model
        from engine.language import fitting_base_model

        self.quotas.check_job(owner)  # first: a user at a limit learns it before their data is read
        chose_model = not isinstance(raw, dict) or "model" in raw or bool(raw.get("base_model"))
        spec = self.prepare_spec(raw, owner)
        if isinstance(spec, JobSpec):
            if not chose_model:  # the model that fits the data: the multilingual one for Chinese, say
                spec = spec.model_copy(update={"base_model": fitting_base_model(spec.task, spec.data)[0]})
            check_model(spec.base_model, task=spec.task)
            summary = self.check_data(spec)
            if summary.get("suggested_base_model"):
                return Submission(self.jobs.submit(spec, owner), [summary["notices"][0]])
        return Submission(self.jobs.submit(spec, owner))
