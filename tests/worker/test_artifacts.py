"""The artifact store on the local data folder and on S3, and jobs across two hosts that share only the store.

"S3" here is moto's server mode: an S3 emulator from PyPI serving the real S3 HTTP API on a local port, which s3fs
talks to exactly as it would to AWS or MinIO. Two "hosts" are two data folders; only the bucket (and the job store,
which is a database, not a disk) is shared between them.
"""

from __future__ import annotations

import itertools
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from worker import runtime
from worker.artifacts import MANIFEST, ArtifactError, ArtifactStore, localize_paths
from worker.job_artifacts import LOG_FILE, JobArtifacts
from worker.records import SUCCEEDED
from worker.store import JobStore
from worker.uploads import DatasetStore

from ..conftest import write_training_csv


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """The URL of a moto S3 server (an emulator) running in a thread of the test process."""
    from moto.server import ThreadedMotoServer

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3_env(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """PLAYGROUND_ARTIFACTS on a fresh bucket of the emulator, with the AWS_* variables a real deployment sets."""
    import boto3

    bucket = f"playground-{uuid.uuid4().hex[:10]}"
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "PLAYGROUND_S3_ENDPOINT": s3_endpoint,
        "PLAYGROUND_ARTIFACTS": f"s3://{bucket}/artifacts",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").create_bucket(Bucket=bucket)
    return env


def _host(tmp_path: Path, name: str, env: dict[str, str] | None) -> ArtifactStore:
    home = tmp_path / name
    home.mkdir()
    return ArtifactStore.from_env(home, env or {})


def _model_folder(job_dir: Path, weights: bytes = b"\x01" * 4096) -> Path:
    (job_dir / "model").mkdir(parents=True)
    (job_dir / "model" / "config.json").write_text('{"model_type": "bert"}')
    (job_dir / "model" / "model.safetensors").write_bytes(weights)
    (job_dir / "report.json").write_text(json.dumps({"metrics": {"macro_f1": 0.9}}))
    return job_dir


# ---- one store, local or S3 ----------------------------------------------------------------------------------------


def test_without_an_artifact_store_everything_stays_in_the_data_folder(tmp_path: Path) -> None:
    store = _host(tmp_path, "a", {})
    upload = store.home / "uploads" / "0123456789abcdef" / "train.csv"
    upload.parent.mkdir(parents=True)
    upload.write_text("text,label\n")
    assert not store.remote
    store.put_file(upload)
    assert store.put_folder(_model_folder(store.home / "jobs" / "j1")) == {}
    assert store.exists(upload) and store.local_copy(upload) == upload
    assert not store.sync_folder(store.home / "jobs" / "j1")
    store.delete(upload.parent)
    assert not upload.exists() and not store.exists(upload)
    assert sorted(p.name for p in store.home.iterdir()) == ["jobs", "uploads"]  # no manifest, no copies


@pytest.fixture(params=["s3", "folder"])
def env(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    """The environment of hosts sharing a store: moto's S3 server, or a folder standing for another disk."""
    if request.param == "s3":
        return request.getfixturevalue("s3_env")
    return {"PLAYGROUND_ARTIFACTS": str(tmp_path / "shared")}


def test_a_file_put_on_one_host_is_fetched_on_another_and_deleted_everywhere(env: dict, tmp_path: Path) -> None:
    host_a, host_b = _host(tmp_path, "a", env), _host(tmp_path, "b", env)
    upload = host_a.home / "uploads" / "0123456789abcdef" / "train.csv"
    upload.parent.mkdir(parents=True)
    upload.write_text("text,label\ngood,pos\n")
    there = host_b.home / "uploads" / "0123456789abcdef" / "train.csv"
    assert not host_b.exists(there)

    host_a.put_file(upload)
    assert host_b.exists(there) and not there.exists()
    assert host_b.local_copy(there).read_text() == "text,label\ngood,pos\n"

    host_a.delete(upload.parent)
    assert not upload.exists() and not host_b.exists(there)
    assert not host_b.exists(host_b.home / "uploads" / "feedfacefeedface" / "x.csv")


def test_a_published_folder_is_fetched_whole_and_republishing_uploads_only_what_changed(
    env: dict, tmp_path: Path
) -> None:
    host_a, host_b = _host(tmp_path, "a", env), _host(tmp_path, "b", env)
    job_a = _model_folder(host_a.home / "jobs" / "j1")
    first = host_a.put_folder(job_a)
    assert set(first["files"]) == {"model/config.json", "model/model.safetensors", "report.json"}

    model_b = host_b.home / "jobs" / "j1" / "model"
    assert host_b.exists(model_b) and host_b.exists(host_b.home / "jobs" / "j1")
    assert host_b.local_copy(model_b) == model_b
    assert (model_b / "model.safetensors").read_bytes() == b"\x01" * 4096
    assert json.loads(host_b.local_copy(model_b.parent / "report.json").read_text())["metrics"]["macro_f1"] == 0.9
    assert sorted(p.name for p in model_b.parent.iterdir()) == ["model", "report.json"]  # no partial folders left

    (job_a / "report.json").write_text(json.dumps({"metrics": {"macro_f1": 0.95}}))
    second = host_a.put_folder(job_a)
    assert second["files"]["model/model.safetensors"] == first["files"]["model/model.safetensors"]  # not re-sent
    assert second["files"]["report.json"]["key"] != first["files"]["report.json"]["key"]
    old_key = f"{host_a._key('jobs/j1')}/{first['files']['report.json']['key']}"
    assert not host_a.fs.exists(old_key)  # the superseded object is gone
    assert host_b.sync_folder(host_b.home / "jobs" / "j1")
    assert json.loads((model_b.parent / "report.json").read_text())["metrics"]["macro_f1"] == 0.95


def test_the_sweep_removes_unreferenced_versions_orphans_and_partials_once_they_are_old(
    env: dict, tmp_path: Path
) -> None:
    host_a, host_b = _host(tmp_path, "a", env), _host(tmp_path, "b", env)
    kept = host_a.put_folder(_model_folder(host_a.home / "jobs" / "j1"))
    hour = 3600.0
    # A publish killed before its manifest (two hours ago), and one in flight right now: neither is named.
    dead, live = f"{time.time_ns() - int(2 * hour * 1e9):x}-dead00", f"{time.time_ns():x}-live00"
    stray = tmp_path / "stray.bin"
    stray.write_bytes(b"\x02" * 64)
    for token in (dead, live):
        host_a._put(stray, host_a._key(f"jobs/j1/.v/{token}/model/model.safetensors"))
    host_a.put_folder(_model_folder(host_a.home / "jobs" / "gone"))  # its record was deleted, its removal failed
    upload = host_a.home / "uploads" / "feedfacefeedface" / "train.csv"
    upload.parent.mkdir(parents=True)
    upload.write_text("text,label\nün café,pos\n", encoding="latin-1")
    host_a.put_file(upload)
    partial = host_b.home / "jobs" / "j1" / f".model{'.partial-'}abc123"  # a fetch killed midway on host B
    partial.mkdir(parents=True)
    (partial / "config.json").write_text("{}")
    os.utime(partial, (time.time() - 2 * hour, time.time() - 2 * hour))

    def known(unit: str) -> bool:
        return unit in {"jobs/j1", "uploads/feedfacefeedface"}

    assert host_a.sweep(known, grace_seconds=hour) == [f"jobs/j1/.v/{dead}"]  # the rest is too young
    removed = host_b.sweep(lambda unit: unit == "jobs/j1", grace_seconds=hour, now=time.time() + 2 * hour)
    assert set(removed) == {
        f"jobs/j1/.v/{live}",  # two hours on, the "live" one was never finished either
        "jobs/gone",
        "uploads/feedfacefeedface",
        f"jobs/j1/.model{'.partial-'}abc123",
    }
    assert not partial.exists() and not host_b.exists(host_b.home / "jobs" / "gone")
    assert not host_b.exists(host_b.home / "uploads" / "feedfacefeedface" / "train.csv")
    model = host_b.local_copy(host_b.home / "jobs" / "j1" / "model")  # the published version is whole
    assert (model / "model.safetensors").read_bytes() == b"\x01" * 4096
    assert host_b._manifest("jobs/j1") == kept
    assert host_b.sweep(known, grace_seconds=hour, now=time.time() + 2 * hour) == []  # nothing left to sweep


def test_a_folder_whose_upload_fails_midway_is_never_visible_and_leaves_nothing(
    s3_env: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    host_a, host_b = _host(tmp_path, "a", s3_env), _host(tmp_path, "b", s3_env)
    job_a = _model_folder(host_a.home / "jobs" / "j1")
    real_put, sent = host_a._put, []

    def failing_put(source: Path, key: str) -> None:
        if len(sent) == 2:
            raise ArtifactError("connection reset by peer")
        real_put(source, key)
        sent.append(key)

    monkeypatch.setattr(host_a, "_put", failing_put)
    with pytest.raises(ArtifactError, match="connection reset"):
        host_a.put_folder(job_a)
    assert len(sent) == 2  # two of the three files had reached the bucket
    model_b = host_b.home / "jobs" / "j1" / "model"
    assert not host_b.exists(model_b) and not host_b.exists(model_b.parent)
    assert not host_b.local_copy(model_b).exists()
    assert host_a.fs.find(host_a._key("jobs/j1")) == []  # what it had uploaded was removed again

    # A failed re-publish leaves the previous version whole and readable.
    monkeypatch.setattr(host_a, "_put", real_put)
    host_a.put_folder(job_a)
    (job_a / "model" / "model.safetensors").write_bytes(b"\x02" * 4096)
    (job_a / "report.json").write_text("{}")
    sent.clear()
    monkeypatch.setattr(host_a, "_put", failing_put)
    sent.append("pretend")
    with pytest.raises(ArtifactError):
        host_a.put_folder(job_a)
    assert (host_b.local_copy(model_b) / "model.safetensors").read_bytes() == b"\x01" * 4096


def test_a_reader_during_a_slow_upload_sees_nothing_until_the_manifest_is_written(
    s3_env: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    host_a, host_b = _host(tmp_path, "a", s3_env), _host(tmp_path, "b", s3_env)
    job_a = _model_folder(host_a.home / "jobs" / "j1")
    real_put, halfway, go_on = host_a._put, threading.Event(), threading.Event()

    def slow_put(source: Path, key: str) -> None:
        real_put(source, key)
        halfway.set()
        assert go_on.wait(30)

    monkeypatch.setattr(host_a, "_put", slow_put)
    publisher = threading.Thread(target=host_a.put_folder, args=(job_a,))
    publisher.start()
    try:
        assert halfway.wait(30)
        assert host_a.fs.find(host_a._key("jobs/j1"))  # objects are in the bucket already ...
        model_b = host_b.home / "jobs" / "j1" / "model"
        assert not host_b.exists(model_b)  # ... but no reader sees the folder
        assert not host_b.local_copy(model_b).exists()
    finally:
        go_on.set()
        publisher.join(30)
    assert host_a.fs.isfile(host_a._key(f"jobs/j1/{MANIFEST}"))
    assert (host_b.local_copy(model_b) / "config.json").is_file()


def test_a_spec_written_on_another_host_names_this_hosts_copies(s3_env: dict, tmp_path: Path) -> None:
    host_a, host_b = _host(tmp_path, "a", s3_env), _host(tmp_path, "b", s3_env)
    upload = host_a.home / "uploads" / "0123456789abcdef" / "train.csv"
    upload.parent.mkdir(parents=True)
    upload.write_text("text,label\n")
    host_a.put_file(upload)
    host_a.put_folder(_model_folder(host_a.home / "jobs" / "j1"))
    spec = {"model": str(host_a.home / "jobs" / "j1" / "model"), "data": {"train": str(upload), "test": None}}
    spec["base_model"] = "minilm-l6"
    local = localize_paths(spec, host_b)
    assert local["data"]["train"] == str(host_b.home / "uploads" / "0123456789abcdef" / "train.csv")
    assert Path(local["data"]["train"]).is_file() and (Path(local["model"]) / "config.json").is_file()
    assert local["base_model"] == "minilm-l6" and local["data"]["test"] is None
    missing = {"data": {"train": str(host_a.home / "uploads" / "feedfacefeedface" / "gone.csv")}}
    assert localize_paths(missing, host_b) == missing  # the engine names the missing file, as without a store


def test_a_log_growing_at_every_heartbeat_is_kept_less_often_once_the_job_is_older_and_whole_at_its_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {"PLAYGROUND_ARTIFACTS": str(tmp_path / "shared")}
    host_a, host_b = _host(tmp_path, "a", env), _host(tmp_path, "b", env)
    folder = host_a.home / "jobs" / "j1"
    folder.mkdir(parents=True)
    kept: list[float] = []  # when each upload of the log began
    real_put = host_a.put_file

    def timed_put(local: Path) -> None:
        kept.append(time.monotonic())
        real_put(local)

    monkeypatch.setattr(host_a, "put_file", timed_put)
    heartbeat, eager, every, run = 0.05, 0.5, 1.0, 4.0
    artifacts = JobArtifacts(host_a, folder, log_eager_seconds=eager, log_every_seconds=every)
    started = time.monotonic()
    artifacts.watch(heartbeat, checkpoints=False)
    grown = 0
    with (folder / LOG_FILE).open("a", encoding="utf-8") as job_log:
        while time.monotonic() - started < run:  # a line before each heartbeat: it always has grown
            job_log.write(f"step {grown}\n")
            job_log.flush()
            grown += 1
            time.sleep(heartbeat)
        artifacts.stop()
        live = list(kept)
        job_log.write("attempt ended\n")  # the attempt's last lines (a traceback) come after the publisher stops
    artifacts.publish_log()  # what the attempt's end does, however it ends

    assert live and live[0] - started < eager  # while young, the first heartbeat keeps it
    late = [t for t in live if t - started >= eager + 0.25]  # the publisher's own clock began a moment after ours
    assert late and all(b - a >= every for a, b in itertools.pairwise(late)), [round(t - started, 2) for t in live]
    # At most one a heartbeat for the first half second and one a second after, while it grew ~80 times.
    assert len(live) <= eager / heartbeat + (run - eager) / every + 2, [round(t - started, 2) for t in live]
    assert len(live) < grown / 2, (len(live), grown)
    assert len(kept) == len(live) + 1
    lines = host_b.local_copy(host_b.home / "jobs" / "j1" / LOG_FILE).read_text(encoding="utf-8").splitlines()
    assert lines == [f"step {i}" for i in range(grown)] + ["attempt ended"]  # the final upload holds all of it


# ---- jobs across hosts ---------------------------------------------------------------------------------------------


def test_a_job_run_on_host_b_reads_host_as_upload_and_publishes_its_model_for_host_a(
    s3_env: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = f"sqlite:///{tmp_path / 'jobs.sqlite'}"  # a database both hosts reach; not a shared disk for files
    monkeypatch.setenv("PLAYGROUND_DATABASE_URL", database)
    home_a, home_b = tmp_path / "a", tmp_path / "b"
    store_a = JobStore(database, home_a)
    store_a.create_schema()
    monkeypatch.setenv("PLAYGROUND_HOME", str(home_a))
    uploads = DatasetStore(store_a.engine, home_a)
    uploads.create_schema()
    dataset, _ = uploads.register("alice", write_training_csv(tmp_path / "reviews.csv"))
    spec = {"data": {"train": str(dataset.path)}, "params": {"epochs": 1}}
    store_a.create(job_id="job0000000000001", owner="alice", kind="train", spec=spec, queue="q", max_attempts=3)

    monkeypatch.setenv("PLAYGROUND_HOME", str(home_b))
    run = runtime.start("job0000000000001", "train", task_id="t1")
    assert run is not None and run.spec.data.train == str(home_b / dataset.path.relative_to(home_a))
    assert Path(run.spec.data.train).read_bytes() == dataset.path.read_bytes()
    with run:
        _model_folder(run.artifact_dir)
        run.succeeded({"metrics": {"macro_f1": 0.9}})
    assert store_a.get("job0000000000001").status == SUCCEEDED

    job_a = store_a.get("job0000000000001")  # as host A sees it: its own data folder
    store = ArtifactStore.from_env(home_a)
    model = store.local_copy(job_a.artifact_dir / "model")
    assert (model / "config.json").read_text() == '{"model_type": "bert"}'
    assert "attempt 1/3" in store.local_copy(job_a.artifact_dir / "job.log").read_text()
    assert json.loads(store.local_copy(job_a.artifact_dir / "spec.json").read_text()) == spec


def test_the_log_of_a_job_running_and_then_failing_on_host_b_is_read_on_host_a(
    s3_env: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from worker.api import Jobs
    from worker.settings import Settings

    from .helpers import wait_until

    database = f"sqlite:///{tmp_path / 'jobs.sqlite'}"
    monkeypatch.setenv("PLAYGROUND_DATABASE_URL", database)
    monkeypatch.setenv("PLAYGROUND_HEARTBEAT_SECONDS", "0.3")
    home_a, home_b = tmp_path / "a", tmp_path / "b"
    monkeypatch.setenv("PLAYGROUND_HOME", str(home_a))
    jobs_a = Jobs(Settings.from_env())  # the web app on host A: it never runs the job
    jobs_a.store.create_schema()
    spec = {"data": {"train": "/elsewhere/reviews.csv"}, "params": {"epochs": 1}}
    jobs_a.store.create(job_id="job0000000000002", owner="alice", kind="train", spec=spec, queue="q", max_attempts=1)

    monkeypatch.setenv("PLAYGROUND_HOME", str(home_b))
    run = runtime.start("job0000000000002", "train", task_id="t1")
    assert run is not None
    with run:
        runtime.log.info("épreuve 训练 step 3 of 9 — still going")
        assert not (home_a / "jobs" / "job0000000000002" / "job.log").exists()
        wait_until(lambda: "训练 step 3 of 9" in jobs_a.log_tail("job0000000000002"), 20, "the live log on host A")
        raise ValueError("the label column 'sentiment' is missing")
    try:
        job = jobs_a.get("job0000000000002")
        tail = jobs_a.log_tail("job0000000000002", 400)
        assert job.status == "failed" and "label column 'sentiment' is missing" in job.error
        assert "Traceback" in tail and "ValueError: the label column 'sentiment' is missing" in tail
        assert tail.splitlines()[0].endswith(f"attempt 1/1 on {socket.gethostname()} pid {os.getpid()}")
        assert jobs_a.log_tail("job0000000000002", 2).count("\n") == 2  # the last lines, as for a local log
        assert not (home_a / "jobs" / "job0000000000002" / "job.log").exists()  # read from the store, not kept
    finally:
        jobs_a.close()


@pytest.mark.slow
def test_a_job_killed_on_one_host_is_resumed_on_another_and_its_model_served_by_the_web_app(
    s3_env: dict, playground_env: dict, redis_url: str, postgres_url: str, start_worker, tmp_path: Path, monkeypatch
) -> None:
    from ui.context import AppContext
    from worker.settings import Settings

    from .helpers import tiny_spec, wait_until

    # Three hosts, three data folders: they share the broker, the job store and the bucket, and no disk.
    shared = {**playground_env, **s3_env, "PLAYGROUND_BROKER_URL": redis_url, "PLAYGROUND_DATABASE_URL": postgres_url}
    homes = {name: tmp_path / f"host-{name}" for name in ("a", "b", "web")}
    for name, value in {**shared, "PLAYGROUND_HOME": str(homes["web"])}.items():
        monkeypatch.setenv(name, value)
    ctx = AppContext(Settings.from_env())
    try:
        owner = ctx.local_owner
        dataset, _ = ctx.datasets.register(owner, write_training_csv(tmp_path / "reviews.csv"))
        workers = [start_worker({**shared, "PLAYGROUND_HOME": str(homes[name])}) for name in ("a", "b")]
        spec = {**tiny_spec(dataset.path, epochs=6), "data": {"train": dataset.id}}
        job_id = ctx.submit(spec, owner).job_id
        probe = ArtifactStore.from_env(tmp_path / "probe", s3_env)

        def checkpoint_in_store() -> bool:
            manifest = probe._manifest(f"jobs/{job_id}") or {"files": {}}
            if any(rel.endswith("/trainer_state.json") for rel in manifest["files"]):
                return True
            job = ctx.jobs.get(job_id)  # ended before any checkpoint reached the store: say so now, not at timeout
            assert not job.finished, (job.status, job.error, [w.log()[-2000:] for w in workers])
            return False

        wait_until(checkpoint_in_store, 300, "a checkpoint published to the store", interval=0.2)
        job = ctx.jobs.get(job_id)
        victim = next(w for w in workers if job.worker_name == f"playground-{w.pid}@{job.worker_host}")
        survivor = next(w for w in workers if w is not victim)
        victim.kill9()  # the worker and its job process, as when the machine dies

        done = ctx.jobs.wait(job_id, timeout=240)
        assert done.status == SUCCEEDED, (done.error, survivor.log()[-3000:])
        assert done.attempts == 2
        starts = [ev for ev in ctx.jobs.events(job_id) if ev.kind == "start"]
        assert starts[0].step == 0 and starts[1].step > 0  # attempt 2 began at the checkpoint from the store
        survivor_home = homes["b" if survivor is workers[1] else "a"]
        assert (survivor_home / "jobs" / job_id / "model" / "config.json").is_file()  # trained there, from the store

        assert not (homes["web"] / "jobs" / job_id / "model").exists()  # the web host never ran it
        answer = ctx.predictor(job_id, owner).classify(["the movie was wonderful", "the meal was awful"])
        assert [a["label"] for a in answer] == ["positive", "negative"]
        assert ctx.report(job_id, owner)["metrics"]["macro_f1"] >= 0.8
    finally:
        ctx.close()
