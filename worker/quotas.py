"""Per-user limits of a shared server: jobs waiting or running at once, and disk space (uploads plus job folders).

    PLAYGROUND_MAX_ACTIVE_JOBS     queued + running jobs per user (default 4; 0 turns the limit off)
    PLAYGROUND_MAX_USER_DISK_GB    uploads + job folders per user, in GB (default: no limit)

The largest single upload is a separate, global limit (PLAYGROUND_MAX_UPLOAD_MB, engine.paths.max_upload_bytes).
Limits are checked when a job is submitted or a file uploaded, not while a job runs: two submissions at the same
moment can both pass, so a user may briefly hold one job more than the limit.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from engine.errors import DataError
from worker.records import QUEUED, RUNNING
from worker.store import JobStore
from worker.uploads import DatasetStore

DEFAULT_MAX_ACTIVE_JOBS = 4
GB = 1024**3
FREE_SPACE = (
    "free space by deleting datasets you no longer need (DELETE /api/datasets/ID) or finished jobs "
    "(DELETE /api/jobs/ID), or ask an admin for a larger quota"
)


class QuotaError(ValueError):
    """A user is at one of their limits; the message names the limit and how to get under it."""


class TooManyJobsError(QuotaError):
    """The user already has as many jobs waiting or running as they may."""


class DiskQuotaError(QuotaError, DataError):
    """The user's uploads and job folders take their whole disk quota (a DataError too: upload paths show those)."""


@dataclass(frozen=True)
class Quotas:
    """The limits of every user on this server; None means no limit."""

    max_active_jobs: int | None = DEFAULT_MAX_ACTIVE_JOBS
    max_disk_bytes: int | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Quotas:
        """Limits from PLAYGROUND_MAX_ACTIVE_JOBS and PLAYGROUND_MAX_USER_DISK_GB; 0 turns one off."""
        env = os.environ if environ is None else environ
        jobs = _number(env, "PLAYGROUND_MAX_ACTIVE_JOBS", DEFAULT_MAX_ACTIVE_JOBS)
        disk = _number(env, "PLAYGROUND_MAX_USER_DISK_GB", 0)
        return cls(int(jobs) if jobs else None, int(disk * GB) if disk else None)


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    try:
        value = float(raw) if raw else float(default)
    except ValueError as exc:
        raise ValueError(f"{name}={raw!r} is not a number") from exc
    if value < 0:
        raise ValueError(f"{name} must be 0 (no limit) or more, got {raw}")
    return value


class QuotaGuard:
    """Checks one user's limits against the job store and their uploads, before anything is queued or kept."""

    def __init__(self, quotas: Quotas, store: JobStore, datasets: DatasetStore):
        self.quotas = quotas
        self.store = store
        self.datasets = datasets

    def check_job(self, owner: str) -> None:
        """TooManyJobsError or DiskQuotaError when `owner` may not queue another job now."""
        limit = self.quotas.max_active_jobs
        if limit is not None:
            active = len(self.store.list(owner, (QUEUED, RUNNING), limit))
            if active >= limit:
                raise TooManyJobsError(
                    f"you have {active} jobs waiting or running, the most one user may have at once "
                    f"(PLAYGROUND_MAX_ACTIVE_JOBS={limit}); wait until one finishes or cancel one (Jobs tab, or "
                    "POST /api/jobs/ID/cancel), then submit again"
                )
        self.check_disk(owner, 0)

    def check_disk(self, owner: str, adding_bytes: int) -> None:
        """DiskQuotaError when `owner`'s files plus `adding_bytes` more would go over their disk quota."""
        limit = self.quotas.max_disk_bytes
        if limit is None:
            return
        used = self.disk_used(owner)
        if (used + adding_bytes <= limit) if adding_bytes else (used < limit):
            return
        adding = f"; this {adding_bytes / 2**20:.1f} MB upload would go over it" if adding_bytes else ""
        raise DiskQuotaError(
            f"your uploads and job folders take {used / GB:.2f} GB of your {limit / GB:g} GB disk quota "
            f"(PLAYGROUND_MAX_USER_DISK_GB){adding}; {FREE_SPACE}"
        )

    def disk_used(self, owner: str) -> int:
        """Bytes of `owner`'s uploads (as recorded) and job folders (as on disk now)."""
        uploads = sum(dataset.size_bytes for dataset in self.datasets.list(owner, limit=1_000_000))
        jobs = self.store.list(owner, (), 1_000_000)
        return uploads + sum(folder_bytes(job.artifact_dir) for job in jobs if job.artifact_dir)


def folder_bytes(folder: Path) -> int:
    """The size of the files under a folder (links not followed); 0 for a folder that is not there yet."""
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except FileNotFoundError:  # a job's checkpoint rotated away while counting
                continue
    return total
