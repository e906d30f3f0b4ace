"""Deleting from the page: the Jobs tab's delete of a finished job and the Data tab's delete of an upload, called
directly on a real AppContext (SQLite store, users alice and bob; no worker). Jobs are recorded in the store as a
worker leaves them, with files in their folders, so what is checked is what is gone and what is kept."""

from __future__ import annotations

import uuid
from pathlib import Path

import gradio as gr
import pytest

from ui.context import AppContext
from ui.tabs import data, jobs
from ui.users import Users
from worker.artifacts import ArtifactStore
from worker.records import SUCCEEDED, Job

ALICE = gr.Request(username="alice")
BOB = gr.Request(username="bob")
TRAIN_SPEC = {"task": "text-classification", "base_model": "minilm-l6", "data": {"train": "/x/reviews.csv"}}


def recorded(ctx: AppContext, owner: str, kind: str = "train", spec: dict | None = None, *, done: bool = True) -> Job:
    """A job in the store (succeeded, or still queued) with a file in its folder, as a worker leaves it."""
    store = ctx.jobs.store
    job_id = uuid.uuid4().hex[:16]
    store.create(
        job_id=job_id, owner=owner, kind=kind, spec=spec or TRAIN_SPEC, queue=ctx.settings.queue, max_attempts=3
    )
    if done:
        claimed = store.claim(job_id, task_id=f"{job_id}.1", host="h", name="n", pid=1)
        assert store.finish(job_id, claimed.attempts, SUCCEEDED, message="done")
    job = ctx.jobs.get(job_id)
    model = Path(job.artifact_dir) / "model"
    model.mkdir(parents=True, exist_ok=True)
    (model / "config.json").write_text("{}", encoding="utf-8")
    return job


def test_the_owner_deletes_a_finished_job_with_its_folder_after_confirming(ctx: AppContext):
    job = recorded(ctx, "bob")
    folder = Path(job.artifact_dir)
    assert jobs.deletable(ctx, job.id, BOB).visible is True
    assert jobs.deletable(ctx, job.id, ALICE).visible is False  # not hers, and she is no admin
    with pytest.raises(gr.Error, match="no job"):
        jobs.delete_job(ctx, job.id, ALICE)
    assert folder.is_dir() and ctx.jobs.store.get(job.id) is not None

    table, picker, ids, detail, *_ = jobs.delete_job(ctx, job.id, BOB)
    assert ids == [] and table.empty and picker.value is None and detail == jobs.NO_JOB
    assert not folder.exists() and ctx.jobs.store.get(job.id) is None and ctx.jobs.store.events(job.id) == []
    assert jobs.deletable(ctx, job.id, BOB).visible is False
    with pytest.raises(gr.Error, match="no job"):
        jobs.delete_job(ctx, job.id, BOB)


def test_an_admin_may_delete_anyones_finished_job(ctx: AppContext):
    ctx.users = Users({"alice": "pw", "bob": "pw"}, frozenset({"alice"}))
    job = recorded(ctx, "bob")
    assert jobs.deletable(ctx, job.id, ALICE).visible is True
    jobs.delete_job(ctx, job.id, ALICE)
    assert ctx.jobs.store.get(job.id) is None and not Path(job.artifact_dir).exists()


def test_deleting_a_job_revokes_its_share_links_and_leaves_other_jobs_links(ctx: AppContext):
    job, other = recorded(ctx, "bob"), recorded(ctx, "bob")
    links = [ctx.shares.create("bob", job.id), ctx.shares.create("bob", job.id), ctx.shares.create("bob", other.id)]
    jobs.delete_job(ctx, job.id, BOB)
    assert [share.job_id for share in ctx.shares.list("bob")] == [other.id]  # the owner's list holds no dead link
    assert ctx.shares.active(links[0].token) is None and ctx.shares.active(links[1].token) is None
    assert ctx.shares.active(links[2].token) is not None


def test_a_job_still_needed_is_refused_with_the_reason_and_nothing_is_removed(ctx: AppContext):
    waiting = recorded(ctx, "alice", done=False)
    assert jobs.deletable(ctx, waiting.id, ALICE).visible is False
    with pytest.raises(gr.Error, match="is queued; cancel it first"):
        jobs.delete_job(ctx, waiting.id, ALICE)

    trained = recorded(ctx, "alice")
    model = str(Path(trained.artifact_dir) / "model")
    export = recorded(ctx, "alice", "export", {"model": model, "to": "int8"})
    evaluation = recorded(ctx, "alice", "evaluate", {"model": model, "data": "/x/test.csv"}, done=False)
    with pytest.raises(gr.Error, match=f"is used by job {evaluation.id}, which is queued"):
        jobs.delete_job(ctx, trained.id, ALICE)
    ctx.jobs.store.request_cancel(evaluation.id)  # a queued job is cancelled at once
    with pytest.raises(gr.Error, match=rf"has exported variants: int8 \(job {export.id}\); delete those first"):
        jobs.delete_job(ctx, trained.id, ALICE)
    assert Path(trained.artifact_dir, "model", "config.json").is_file() and ctx.jobs.store.get(trained.id)

    jobs.delete_job(ctx, export.id, ALICE)  # the variant first, then the model it came from
    jobs.delete_job(ctx, trained.id, ALICE)
    assert ctx.jobs.store.get(trained.id) is None and not Path(trained.artifact_dir).exists()


def test_deleting_a_job_removes_its_folder_from_the_artifact_store_too(ctx: AppContext, tmp_path: Path):
    store = ArtifactStore(ctx.settings.home, url=str(tmp_path / "bucket"))
    ctx.artifacts = ctx.datasets.artifacts = ctx.jobs.artifacts = store
    job = recorded(ctx, "alice")
    store.put_folder(Path(job.artifact_dir))
    assert store.exists(Path(job.artifact_dir))
    jobs.delete_job(ctx, job.id, ALICE)
    assert not store.exists(Path(job.artifact_dir)) and not Path(job.artifact_dir).exists()
    assert ctx.jobs.store.get(job.id) is None


def test_an_upload_is_deleted_from_the_data_tab_unless_a_waiting_job_reads_it(ctx: AppContext, tmp_path: Path):
    csv = tmp_path / "reviews.csv"
    csv.write_text("text,label\n" + "".join(f"review number {i},{'ab'[i % 2]}\n" for i in range(20)))
    dataset, _ = ctx.datasets.register("alice", csv)
    spec = {**TRAIN_SPEC, "data": {"train": str(dataset.path)}}
    waiting = recorded(ctx, "alice", spec=spec, done=False)

    with pytest.raises(gr.Error, match="no file picked"):
        data.delete_dataset(ctx, None, ALICE)
    with pytest.raises(gr.Error, match="no dataset"):
        data.delete_dataset(ctx, dataset.id, BOB)  # not his
    with pytest.raises(gr.Error, match=f"dataset reviews.csv is used by job {waiting.id}, which is queued"):
        data.delete_dataset(ctx, dataset.id, ALICE)
    assert dataset.path.is_file() and ctx.datasets.get(dataset.id, "alice") is not None

    ctx.jobs.cancel(waiting.id)
    picker, *_, summary, _ = data.delete_dataset(ctx, dataset.id, ALICE)
    assert picker.value is None and picker.choices == [] and summary.startswith("No file yet")
    assert not dataset.path.exists() and ctx.datasets.get(dataset.id, "alice") is None


def test_the_tabs_build_with_their_delete_buttons(ctx: AppContext):
    with gr.Blocks() as blocks:
        data.build(ctx)
        jobs.build(ctx)
    names = {dependency.api_name for dependency in blocks.fns.values()}
    assert {"delete_job", "delete_dataset"} <= names
