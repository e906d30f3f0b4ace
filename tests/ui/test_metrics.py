"""GET /metrics and the System tab against a real SQLite job store holding jobs in every status (made through the
store's own API, no training), scraped through FastAPI's TestClient and read with prometheus_client's own parser."""

from __future__ import annotations

import base64
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import gradio as gr
import pytest
from fastapi.testclient import TestClient
from prometheus_client.samples import Sample
from sqlalchemy import update

from tests.ui.helpers import scrape as scrape_with
from tests.ui.helpers import value
from ui.context import AppContext
from ui.server import create_app
from ui.tabs import system
from ui.users import Users
from worker.device import Device
from worker.records import CANCELLED, EVALUATE, EXPORT, FAILED, QUEUED, RUNNING, SUCCEEDED, TRAIN, utcnow
from worker.settings import Settings
from worker.store import JobRow, JobStore
from worker.workers import WorkerInfo

SCRAPE_TOKEN = "scrape-" + uuid.uuid4().hex
PREDICT = "/api/models/{job_id}/predict"
ALICE, BOB = gr.Request(username="alice"), gr.Request(username="bob")
T0 = datetime(2030, 1, 1)  # "the web process started": every job below is timed from here


@dataclass
class Served:
    ctx: AppContext
    client: TestClient
    model_job: str  # alice's succeeded training job, answered by the canned model


class CannedModel:
    """Stands in for a loaded model: these tests are about counting requests, not about predictions."""

    def serve(self, request: dict[str, Any]) -> dict[str, Any]:
        texts = request.get("texts") or [request["text"]]
        return {"task": "text-classification", "predictions": [{"label": "pos", "score": 1.0} for _ in texts]}


class CannedModels:
    def get(self, _folder: Path) -> CannedModel:
        return CannedModel()


def basic(user: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:pw".encode()).decode()}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def new_job(store: JobStore, kind: str, queue: str = "q-a", owner: str = "alice") -> str:
    job_id = uuid.uuid4().hex[:12]
    store.create(job_id=job_id, owner=owner, kind=kind, spec={}, queue=queue, max_attempts=3)
    return job_id


def ran(store: JobStore, kind: str, status: str | None = None, owner: str = "alice") -> str:
    """A job claimed by worker w1 and, with `status`, ended in it."""
    job_id = new_job(store, kind, owner=owner)
    job = store.claim(job_id, task_id=f"{job_id}.1", host="gpu-box", name="w1@gpu-box", pid=41)
    assert job is not None
    if status is not None:
        assert store.finish(job_id, job.attempts, status, message=status)
    return job_id


def set_times(store: JobStore, job_id: str, created: float, started: float | None, finished: float | None) -> None:
    """Put a job's timestamps at these seconds after T0 (store-made jobs all take ~0 s otherwise)."""

    def at(seconds: float | None) -> datetime | None:
        return None if seconds is None else T0 + timedelta(seconds=seconds)

    with store.engine.begin() as conn:
        conn.execute(
            update(JobRow)
            .where(JobRow.id == job_id)
            .values(created_at=at(created), started_at=at(started), finished_at=at(finished))
        )


def fill_store(ctx: AppContext) -> str:
    """Jobs in every status and the heartbeats of one live and one dead worker; returns alice's model job."""
    store = ctx.jobs.store
    for kind, queue in [(TRAIN, "q-a"), (TRAIN, "q-a"), (EVALUATE, "q-b")]:
        new_job(store, kind, queue)
    ran(store, TRAIN)  # running
    ran(store, EXPORT, owner="bob")
    model = ran(store, TRAIN, SUCCEEDED)
    set_times(store, model, created=0, started=30, finished=120)  # waited 30 s, ran 90 s
    set_times(store, ran(store, TRAIN, SUCCEEDED), created=10, started=400, finished=4000)  # 390 s, 3600 s
    set_times(store, ran(store, EVALUATE, FAILED), created=-600, started=-500, finished=-400)  # before T0: left out
    cancelled = new_job(store, TRAIN)
    assert store.request_cancel(cancelled)  # cancelled before it started: neither waited nor ran
    folder = store.get(model).artifact_dir / "model"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}", encoding="utf-8")
    now = utcnow()
    gpu = Device("NVIDIA H200", 12 << 30, 140 << 30, 20 << 30, 128 << 30)
    for name, age in [("w1@gpu-box", 3), ("w0@old-box", 10 * ctx.settings.lease_seconds)]:
        beat = now - timedelta(seconds=age)
        info = WorkerInfo(name, name.split("@")[1], 41, ("q-a", "q-c"), 1, beat, beat, gpu)
        ctx.workers.beat(info)
    return model


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """Alice (an admin) and Bob on a fresh store, the web app on it with the scrape token set."""
    home = tmp_path_factory.mktemp("metrics") / "home"
    users = Users({"alice": "pw", "bob": "pw"}, admins=frozenset({"alice"}))
    ctx = AppContext(Settings(home=home, queue="q-default"), users)
    ctx.predictors = CannedModels()  # type: ignore[assignment]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PLAYGROUND_METRICS_TOKEN", SCRAPE_TOKEN)
        app = create_app(ctx)
    app.state.metrics.store.since = T0
    model = fill_store(ctx)
    yield Served(ctx, TestClient(app), model)  # no lifespan: Gradio's queue is not needed here
    ctx.close()


def scrape(client: TestClient, headers: dict[str, str] | None = None) -> list[Sample]:
    return scrape_with(client, bearer(SCRAPE_TOKEN) if headers is None else headers)  # as Prometheus does


def test_job_and_queue_gauges_equal_the_store_counts(served: Served):
    samples = scrape(served.client)
    store = served.ctx.jobs.store
    jobs = store.list(limit=1000)
    counts = Counter((job.status, job.kind) for job in jobs)
    for status in (QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED):
        for kind in (TRAIN, EVALUATE, EXPORT):
            assert value(samples, "playground_jobs", status=status, kind=kind) == counts[(status, kind)]
    assert sum(s.value for s in samples if s.name == "playground_jobs") == len(jobs) == 9
    assert value(samples, "playground_jobs", status=RUNNING, kind=TRAIN) == 1
    queued = Counter(job.queue for job in jobs if job.status == QUEUED)
    assert queued == {"q-a": 2, "q-b": 1}
    for queue in ("q-a", "q-b"):
        assert value(samples, "playground_queue_depth", queue=queue) == queued[queue]
    # The configured queue and one a live worker listens to are shown empty rather than left out.
    assert value(samples, "playground_queue_depth", queue="q-default") == 0
    assert value(samples, "playground_queue_depth", queue="q-c") == 0
    assert value(samples, "playground_store_up") == 1


def test_wait_and_duration_histograms_count_the_jobs_since_the_web_process_started(served: Served):
    samples = scrape(served.client)
    wait = "playground_job_wait_seconds"
    # Waits of 30 s and 390 s; the failed job started before T0 and the cancelled one never did.
    assert value(samples, f"{wait}_count", kind=TRAIN) == 2
    assert value(samples, f"{wait}_sum", kind=TRAIN) == pytest.approx(420)
    assert value(samples, f"{wait}_bucket", kind=TRAIN, le="30.0") == 1
    assert value(samples, f"{wait}_bucket", kind=TRAIN, le="300.0") == 1
    assert value(samples, f"{wait}_bucket", kind=TRAIN, le="900.0") == 2
    assert value(samples, f"{wait}_count", kind=EVALUATE) == 0
    run = "playground_job_duration_seconds"
    assert value(samples, f"{run}_count", kind=TRAIN, status=SUCCEEDED) == 2
    assert value(samples, f"{run}_sum", kind=TRAIN, status=SUCCEEDED) == pytest.approx(3690)
    assert value(samples, f"{run}_bucket", kind=TRAIN, status=SUCCEEDED, le="60.0") == 0
    assert value(samples, f"{run}_bucket", kind=TRAIN, status=SUCCEEDED, le="300.0") == 1
    assert value(samples, f"{run}_bucket", kind=TRAIN, status=SUCCEEDED, le="3600.0") == 2
    assert value(samples, f"{run}_bucket", kind=TRAIN, status=SUCCEEDED, le="+Inf") == 2
    assert value(samples, f"{run}_count", kind=EVALUATE, status=FAILED) == 0  # it finished before T0
    assert value(samples, f"{run}_count", kind=TRAIN, status=CANCELLED) == 0  # cancelled before it started


def test_workers_alive_follows_the_lease_and_each_heartbeat_age_is_shown(served: Served):
    samples = scrape(served.client)
    lease = served.ctx.settings.lease_seconds
    assert value(samples, "playground_workers_alive") == 1
    assert value(samples, "playground_worker_up", worker="w1@gpu-box") == 1
    assert value(samples, "playground_worker_up", worker="w0@old-box", host="old-box") == 0
    assert 3 <= value(samples, "playground_worker_heartbeat_age_seconds", worker="w1@gpu-box") < 30
    assert value(samples, "playground_worker_heartbeat_age_seconds", worker="w0@old-box") >= 10 * lease


def test_a_predict_call_and_errors_are_counted_by_route_template_and_status(served: Served):
    client, model = served.client, served.model_job
    before = scrape(client)

    def count(samples: list[Sample], route: str, status: str) -> float:
        name = "playground_inference_request_duration_seconds_count"
        found = [s.value for s in samples if s.name == name and s.labels == {"route": route, "status": status}]
        return found[0] if found else 0.0

    answer = client.post(f"/api/models/{model}/predict", json={"text": "lovely"}, headers=basic("alice"))
    assert answer.status_code == 200, answer.text
    assert answer.json()["predictions"][0]["label"] == "pos"
    assert client.post("/api/models/nosuchjob/predict", json={"text": "x"}, headers=basic("alice")).status_code == 404
    assert (
        client.post("/v1/classify", json={"model": "nosuchjob", "input": "x"}, headers=basic("alice")).status_code
        == 404
    )
    too_big = client.post("/v1/tag", content=b"x" * (3 << 20), headers=basic("alice"))  # over the 2 MB body limit
    assert too_big.status_code == 413
    assert client.get("/api/jobs", headers=basic("alice")).status_code == 200  # not a timed route
    after = scrape(client)
    assert count(after, PREDICT, "200") - count(before, PREDICT, "200") == 1
    assert count(after, PREDICT, "404") - count(before, PREDICT, "404") == 1
    assert count(after, "/v1/classify", "404") - count(before, "/v1/classify", "404") == 1
    assert count(after, "/v1/tag", "413") - count(before, "/v1/tag", "413") == 1  # refused before any route ran
    errors = "playground_inference_errors_total"
    assert value(after, errors, route=PREDICT, status="404") - _or_zero(before, errors, PREDICT, "404") == 1
    assert not [s for s in after if s.name == errors and s.labels.get("status") == "200"]
    routes = {s.labels["route"] for s in after if s.name.startswith("playground_inference_")}
    assert routes <= {PREDICT, "/v1/classify", "/v1/tag"}  # labelled by template: no job id, no other route
    assert value(after, "playground_inference_request_duration_seconds_sum", route=PREDICT, status="200") > 0


def _or_zero(samples: list[Sample], name: str, route: str, status: str) -> float:
    found = [s.value for s in samples if s.name == name and s.labels == {"route": route, "status": status}]
    return found[0] if found else 0.0


def test_with_users_only_an_admin_or_the_scrape_token_may_scrape(served: Served):
    client = served.client
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers=bearer("not-the-token")).status_code == 401
    refused = client.get("/metrics", headers=basic("bob"))
    assert refused.status_code == 403 and "PLAYGROUND_METRICS_TOKEN" in refused.json()["detail"]
    _, bob_token = served.ctx.tokens.create("bob", "ci")
    assert client.get("/metrics", headers=bearer(bob_token)).status_code == 403
    assert scrape(client, basic("alice"))
    _, alice_token = served.ctx.tokens.create("alice", "grafana")
    assert scrape(client, bearer(alice_token))
    assert scrape(client, bearer(SCRAPE_TOKEN))


def test_in_single_user_mode_metrics_are_open(tmp_path: Path):
    ctx = AppContext(Settings(home=tmp_path / "home", queue="solo"), Users())
    try:
        new_job(ctx.jobs.store, TRAIN, queue="solo", owner=ctx.local_owner)
        samples = scrape(TestClient(create_app(ctx)), headers={})
        assert value(samples, "playground_queue_depth", queue="solo") == 1
    finally:
        ctx.close()


def test_the_system_view_shows_queues_running_jobs_and_workers_to_an_admin_only(served: Served):
    ctx = served.ctx
    note, panel, queues, running, workers = system.system_status(ctx, ALICE)
    assert "**3 queued** · **2 running** · **1 of 2 workers alive**" in note
    assert panel.visible is True
    depth = dict(zip(queues["Queue"], queues["Queued"], strict=True))
    assert depth == {"q-a": 2, "q-b": 1, "q-c": 0, "q-default": 0}
    assert dict(zip(queues["Queue"], queues["Running"], strict=True))["q-a"] == 2
    assert sorted(running["Owner"]) == ["alice", "bob"]  # every user's running jobs
    assert set(running["Step"]) == {"0"} and set(running["Worker host"]) == {"gpu-box"}
    live = workers.set_index("Worker").loc["w1@gpu-box"]
    assert (live["Alive"], live["Device"], live["Jobs"]) == ("yes", "NVIDIA H200", 2)
    assert live["Memory"] == "GPU 12.0 / 140.0 GiB · RAM 20.0 / 128.0 GiB"
    assert live["Last heartbeat"].endswith(" s ago")
    assert workers.set_index("Worker").loc["w0@old-box", "Alive"] == "no"
    note, panel, *tables = system.system_status(ctx, BOB)
    assert note == system.ADMINS_ONLY and panel.visible is False
    assert all(isinstance(table, dict) and table.get("__type__") == "update" for table in tables)  # nothing shown
    assert all(isinstance(out, dict) and out.get("__type__") == "update" for out in system.tick(ctx, BOB))
