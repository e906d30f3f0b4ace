"""Per-user quotas on the job store, on SQLite and on PostgreSQL: jobs at once and disk space, one user at a time;
and deleting finished jobs and datasets, which is how a user gets back under the disk quota."""

from __future__ import annotations

from pathlib import Path

import pytest

from worker.quotas import GB, DiskQuotaError, QuotaGuard, Quotas, TooManyJobsError, folder_bytes
from worker.records import SUCCEEDED
from worker.store import JobStore
from worker.uploads import DatasetStore


def queue(store: JobStore, owner: str, job_id: str) -> None:
    store.create(job_id=job_id, owner=owner, kind="train", spec={}, queue="q", max_attempts=3)


def finish(store: JobStore, job_id: str, size: int = 0) -> Path:
    claimed = store.claim(job_id, task_id=f"{job_id}.1", host="h", name="n", pid=1)
    assert claimed is not None and store.finish(job_id, claimed.attempts, SUCCEEDED, message="done")
    folder = Path(store.get(job_id).artifact_dir)
    (folder / "model").mkdir(parents=True, exist_ok=True)
    (folder / "model" / "weights.bin").write_bytes(b"\0" * size)
    return folder


def test_limits_come_from_the_environment_and_zero_turns_one_off():
    assert Quotas.from_env({}) == Quotas(max_active_jobs=4, max_disk_bytes=None)
    quotas = Quotas.from_env({"PLAYGROUND_MAX_ACTIVE_JOBS": "2", "PLAYGROUND_MAX_USER_DISK_GB": "0.5"})
    assert quotas == Quotas(max_active_jobs=2, max_disk_bytes=GB // 2)
    assert Quotas.from_env({"PLAYGROUND_MAX_ACTIVE_JOBS": "0"}).max_active_jobs is None
    with pytest.raises(ValueError, match="PLAYGROUND_MAX_USER_DISK_GB='lots' is not a number"):
        Quotas.from_env({"PLAYGROUND_MAX_USER_DISK_GB": "lots"})
    with pytest.raises(ValueError, match="PLAYGROUND_MAX_ACTIVE_JOBS must be 0"):
        Quotas.from_env({"PLAYGROUND_MAX_ACTIVE_JOBS": "-1"})


def test_a_user_at_the_job_limit_is_refused_until_one_ends_and_others_are_not_held_up(store: JobStore):
    guard = QuotaGuard(Quotas(max_active_jobs=2), store, DatasetStore(store.engine, store.home))
    queue(store, "alice", "a1")
    queue(store, "alice", "a2")
    with pytest.raises(TooManyJobsError, match=r"2 jobs waiting or running.*MAX_ACTIVE_JOBS=2.*cancel one"):
        guard.check_job("alice")
    guard.check_job("bob")  # bob has none: alice's jobs do not count against him
    finish(store, "a1")
    guard.check_job("alice")  # a finished job frees its place
    assert store.request_cancel("a2")
    queue(store, "alice", "a3")
    guard.check_job("alice")


def test_the_disk_quota_counts_uploads_and_job_folders_of_that_user_only(store: JobStore, tmp_path: Path):
    datasets = DatasetStore(store.engine, store.home)
    datasets.create_schema()
    guard = QuotaGuard(Quotas(max_active_jobs=None, max_disk_bytes=10_000), store, datasets)
    datasets.admit = guard.check_disk
    csv = tmp_path / "data.csv"
    csv.write_bytes(b"text,label\n" + b"a,b\n" * 1000)  # 4011 bytes
    kept = datasets.add("alice", csv, "data.csv", format="csv", rows=1000, columns=["text", "label"])
    queue(store, "alice", "a1")
    folder = finish(store, "a1", size=5000)
    assert guard.disk_used("alice") == 4011 + folder_bytes(folder) and guard.disk_used("bob") == 0
    with pytest.raises(DiskQuotaError, match=r"0\.00 GB of your .*this 0\.0 MB upload would go over it.*DELETE"):
        datasets.add("alice", csv, "again.csv", format="csv", rows=1000, columns=[])
    datasets.add("bob", csv, "data.csv", format="csv", rows=1000, columns=[])  # bob's space is his own
    guard.check_job("alice")  # under the quota: a job may still start
    (folder / "model" / "more.bin").write_bytes(b"\0" * 2000)
    with pytest.raises(DiskQuotaError, match="disk quota"):
        guard.check_job("alice")  # at or over it: no new job either
    assert datasets.delete(kept.id, "bob") is None  # not bob's to delete
    assert datasets.delete(kept.id, "alice") == kept and not kept.path.exists()
    assert datasets.get(kept.id, "alice") is None
    guard.check_job("alice")


def test_only_a_finished_job_is_deleted_with_its_events(store: JobStore):
    queue(store, "alice", "a1")
    assert not store.delete_finished("a1")  # still queued
    finish(store, "a1")
    assert store.events("a1")
    assert store.delete_finished("a1") and store.get("a1") is None and store.events("a1") == []
    assert not store.delete_finished("a1")
