"""GET /metrics scraped while a real worker runs 10 jobs of three users, checked against the job store at each scrape.

A real `playground worker` (concurrency 2) takes the jobs from a real Redis; the web app runs in this process through
FastAPI's TestClient, on the same SQLite job store. The scraped text is read with prometheus_client's own parser.
"""

from __future__ import annotations

import base64
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.samples import Sample

from tests.conftest import WorkerProcess, write_training_csv
from tests.ui.helpers import scrape as scrape_as
from tests.ui.helpers import value
from tests.worker.helpers import tiny_spec, wait_until
from ui.context import AppContext
from ui.server import create_app
from ui.users import Users
from worker.records import CANCELLED, EVALUATE, FAILED, KINDS, QUEUED, RUNNING, STATUSES, SUCCEEDED, TRAIN, Job
from worker.settings import Settings

pytestmark = pytest.mark.slow

USERS = {"alice": "alice-pw", "bob": "bob-pw", "carol": "carol-pw"}
PREDICT = "/api/models/{job_id}/predict"
PREDICTS = 3  # predict requests made to a succeeded job at the end
# Owner and what each job is, in the order submitted (at most 4 per owner: the default active-jobs quota).
PLAN = [
    ("alice", "good"),
    ("bob", "bad-label"),
    ("carol", "good"),
    ("alice", "no-model"),
    ("bob", "good"),
    ("carol", "bad-label"),
    ("alice", "good"),
    ("carol", "good"),
    ("bob", "cancel"),
    ("alice", "cancel"),
]
EXPECTED = {(SUCCEEDED, TRAIN): 5, (FAILED, TRAIN): 2, (FAILED, EVALUATE): 1, (CANCELLED, TRAIN): 2}
Key = tuple[str, str]  # (status, kind)


@dataclass
class Load:
    ctx: AppContext
    client: TestClient
    worker: WorkerProcess
    tmp: Path


def basic(user: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{USERS[user]}".encode()).decode()}


@pytest.fixture
def load(
    playground_env: dict, redis_url: str, start_worker: Callable[..., WorkerProcess], tmp_path: Path
) -> Iterator[Load]:
    """The web app (alice an admin, bob, carol) and one worker of concurrency 2, on Redis and one SQLite store."""
    # A lease well above the heartbeat: on a busy 2-core machine no running job may be taken for dead and requeued,
    # which would break the test's premise that queued only falls and ended only grows while the jobs run.
    env = {**playground_env, "PLAYGROUND_BROKER_URL": redis_url, "PLAYGROUND_LEASE_SECONDS": "30"}
    ctx = AppContext(Settings.from_env(env), Users(dict(USERS), admins=frozenset({"alice"})))
    client = TestClient(create_app(ctx))  # the metrics' histograms count jobs from here on
    worker = start_worker(env, concurrency=2)
    wait_until(ctx.workers.list, 30, "the worker's first heartbeat")
    yield Load(ctx, client, worker, tmp_path)
    ctx.close()


def scrape(client: TestClient) -> list[Sample]:
    return scrape_as(client, basic("alice"))


def job_gauges(samples: list[Sample]) -> dict[Key, float]:
    gauges = {(s.labels["status"], s.labels["kind"]): s.value for s in samples if s.name == "playground_jobs"}
    assert len(gauges) == len([s for s in samples if s.name == "playground_jobs"]), "a (status, kind) twice"
    return gauges


def depth_gauges(samples: list[Sample]) -> dict[str, float]:
    return {s.labels["queue"]: s.value for s in samples if s.name == "playground_queue_depth"}


def store_jobs(load: Load) -> list[Job]:
    return load.ctx.jobs.store.list(None, (), 1000)


def submit_all(load: Load) -> list[str]:
    """PLAN's jobs: good ones through REST on uploaded datasets, failing ones through worker.api.Jobs (REST checks
    the data at submit time and would refuse them); returns the ids in order."""
    good = write_training_csv(load.tmp / "reviews.csv", rows=40)
    bad = load.tmp / "no-labels.csv"
    bad.write_text("text,stars\n" + "".join(f"review {i},{i % 5}\n" for i in range(40)), encoding="utf-8")
    datasets: dict[str, str] = {}
    ids: list[str] = []
    for owner, what in PLAN:
        if what in ("good", "cancel"):
            if owner not in datasets:
                with good.open("rb") as handle:
                    answer = load.client.post("/api/datasets", files={"file": handle}, headers=basic(owner))
                assert answer.status_code == 201, answer.text
                datasets[owner] = answer.json()["id"]
            spec = tiny_spec(good, epochs=1)
            spec["data"]["train"] = datasets[owner]
            answer = load.client.post("/api/jobs", json=spec, headers=basic(owner))
            assert answer.status_code == 201, answer.text
            assert answer.json()["owner"] == owner
            ids.append(answer.json()["id"])
        elif what == "bad-label":
            spec = tiny_spec(bad)
            spec["data"]["label_column"] = "sentiment"
            ids.append(load.ctx.jobs.submit(spec, owner))
        else:  # an evaluation of a model folder that does not exist
            ids.append(load.ctx.jobs.submit({"model": str(load.tmp / "no-such-model"), "data": str(good)}, owner))
    return ids


def check_bracketed(before: list[Job], samples: list[Sample], after: list[Job], queue: str) -> None:
    """The scrape's job and queue gauges lie between two store reads taken just before and just after it.

    No job is submitted or requeued while this runs, so per kind the queued count only falls and each ended count
    only grows; running is what remains of the kind's (fixed) total, so its bounds follow from theirs. When no job
    changed between the two reads the bounds meet: the gauges must equal the store's counts exactly.
    """
    b, a = Counter((j.status, j.kind) for j in before), Counter((j.status, j.kind) for j in after)
    gauges = job_gauges(samples)
    assert set(gauges) == {(s, k) for s in STATUSES for k in KINDS}, sorted(gauges)
    for kind in KINDS:
        total = sum(b[(s, kind)] for s in STATUSES)
        assert total == sum(a[(s, kind)] for s in STATUSES)
        assert sum(gauges[(s, kind)] for s in STATUSES) == total, (kind, gauges)
        assert a[(QUEUED, kind)] <= gauges[(QUEUED, kind)] <= b[(QUEUED, kind)], (kind, b, gauges, a)
        ended = (SUCCEEDED, FAILED, CANCELLED)
        for status in ended:
            assert b[(status, kind)] <= gauges[(status, kind)] <= a[(status, kind)], (status, kind, b, gauges, a)
        low = total - b[(QUEUED, kind)] - sum(a[(s, kind)] for s in ended)
        high = total - a[(QUEUED, kind)] - sum(b[(s, kind)] for s in ended)
        assert low <= gauges[(RUNNING, kind)] <= high, (kind, b, gauges, a)
    queued_before = sum(j.status == QUEUED for j in before)
    queued_after = sum(j.status == QUEUED for j in after)
    depths = depth_gauges(samples)
    assert set(depths) == {queue}, depths  # the one queue the app sends to and the worker listens on
    assert queued_after <= depths[queue] <= queued_before, (queued_before, depths, queued_after)


def bracketed_scrape(load: Load) -> tuple[list[Sample], bool]:
    """One scrape checked against the store reads around it; True when the store did not change meanwhile."""
    before = store_jobs(load)
    samples = scrape(load.client)
    after = store_jobs(load)
    check_bracketed(before, samples, after, load.ctx.settings.queue)
    return samples, [(j.id, j.status) for j in before] == [(j.id, j.status) for j in after]


def scrape_until_done(load: Load, cancel: list[str], timeout: float = 150) -> dict[str, Any]:
    """Scrape every 0.5 s until every job has ended, cancelling `cancel` (still queued) after the first scrape."""
    seen: dict[str, Any] = {"scrapes": 0, "unchanged": 0, "queued_and_running": 0, "statuses": set()}
    deadline = time.monotonic() + timeout
    while True:
        samples, unchanged = bracketed_scrape(load)
        gauges = job_gauges(samples)
        seen["scrapes"] += 1
        seen["unchanged"] += unchanged
        seen["statuses"] |= {status for (status, _), n in gauges.items() if n}
        seen["queued_and_running"] += bool(gauges[(QUEUED, TRAIN)] and gauges[(RUNNING, TRAIN)])
        if seen["scrapes"] == 1:
            for job_id in cancel:
                owner = load.ctx.jobs.get(job_id).owner
                answer = load.client.post(f"/api/jobs/{job_id}/cancel", headers=basic(owner))
                assert answer.status_code == 200 and answer.json()["status"] == CANCELLED, answer.text
        if all(job.finished for job in store_jobs(load)):
            return seen
        assert time.monotonic() < deadline, f"jobs still unfinished:\n{load.worker.log()[-3000:]}"
        time.sleep(0.5)


def check_histogram(samples: list[Sample], name: str, labels: dict[str, str], values: list[float]) -> None:
    """The histogram series `labels` of `name` counts exactly `values`: _count, _sum and every bucket."""
    assert value(samples, f"{name}_count", **labels) == len(values), (name, labels, values)
    assert value(samples, f"{name}_sum", **labels) == pytest.approx(sum(values), abs=1e-3)
    buckets = [s for s in samples if s.name == f"{name}_bucket" and s.labels == {**labels, "le": s.labels["le"]}]
    assert len(buckets) > 1
    for bucket in buckets:
        assert bucket.value == sum(v <= float(bucket.labels["le"]) for v in values), (name, labels, bucket)


def check_final(load: Load, samples: list[Sample], jobs: list[Job]) -> None:
    """Exact per-status counts, an empty queue, the live worker, and the wait and duration histograms."""
    counts = Counter((j.status, j.kind) for j in jobs)
    assert counts == EXPECTED, counts  # the load ended as planned: the checks below are then about the metrics
    assert job_gauges(samples) == {(s, k): counts[(s, k)] for s in STATUSES for k in KINDS}
    assert depth_gauges(samples) == {load.ctx.settings.queue: 0}
    assert all(j.attempts <= 1 for j in jobs), "no job may have been requeued"
    ran = [j for j in jobs if j.started_at is not None]
    assert {j.worker_host for j in ran} == {socket.gethostname()} and len({j.worker_name for j in ran}) == 1
    up = [s for s in samples if s.name == "playground_worker_up"]
    assert [(s.labels, s.value) for s in up] == [({"worker": ran[0].worker_name, "host": socket.gethostname()}, 1)]
    assert value(samples, "playground_workers_alive") == 1
    assert value(samples, "playground_worker_heartbeat_age_seconds", worker=ran[0].worker_name) < 30
    # Waits: every job that started (since the web app did); durations: every job that ended after starting.
    for kind in KINDS:
        waits = [(j.started_at - j.created_at).total_seconds() for j in ran if j.kind == kind]
        check_histogram(samples, "playground_job_wait_seconds", {"kind": kind}, waits)
        for status in (SUCCEEDED, FAILED, CANCELLED):
            runs = [
                (j.finished_at - j.started_at).total_seconds() for j in ran if (j.kind, j.status) == (kind, status)
            ]
            check_histogram(samples, "playground_job_duration_seconds", {"kind": kind, "status": status}, runs)
    assert value(samples, "playground_job_wait_seconds_count", kind=TRAIN) == 7  # 5 succeeded + 2 failed
    assert value(samples, "playground_job_wait_seconds_count", kind=EVALUATE) == 1
    assert value(samples, "playground_job_duration_seconds_count", kind=TRAIN, status=CANCELLED) == 0  # never ran


def predict_count(samples: list[Sample], status: str, suffix: str = "_count", **extra: str) -> float:
    name = f"playground_inference_request_duration_seconds{suffix}"
    want = {"route": PREDICT, "status": status, **extra}
    found = [s.value for s in samples if s.name == name and s.labels == want]
    return found[0] if found else 0.0


def check_predict_latency(load: Load, jobs: list[Job]) -> None:
    """N predict requests to a succeeded job add exactly N to the predict route's 200 series, nothing else."""
    model = next(j for j in jobs if j.owner == "alice" and j.status == SUCCEEDED)
    before = scrape(load.client)
    for text in ["what a lovely meal", "a dreadful hotel", "the show was brilliant"][:PREDICTS]:
        answer = load.client.post(f"/api/models/{model.id}/predict", json={"text": text}, headers=basic("alice"))
        assert answer.status_code == 200, answer.text
        assert answer.json()["predictions"][0]["label"] in ("positive", "negative")
    after = scrape(load.client)
    assert predict_count(after, "200") - predict_count(before, "200") == PREDICTS
    assert (
        predict_count(after, "200", "_bucket", le="+Inf") - predict_count(before, "200", "_bucket", le="+Inf")
        == PREDICTS
    )
    assert predict_count(after, "200", "_sum") > predict_count(before, "200", "_sum")
    errors = [s for s in after if s.name == "playground_inference_errors_total"]
    assert errors == [s for s in before if s.name == "playground_inference_errors_total"] == [], errors


def test_metrics_agree_with_the_job_store_during_and_after_a_ten_job_load(load: Load) -> None:
    """Ten jobs of three users (5 succeed, 3 fail: 2 bad label columns and 1 evaluation of a missing model, 2 are
    cancelled while queued) on a real worker; /metrics is scraped every 0.5 s while they run.

    At every scrape the playground_jobs{status,kind} and playground_queue_depth{queue} gauges lie between the store's
    counts read just before and just after it (equal to them when nothing changed in between). Once all have ended:
    exact per-status counts, queue depth 0, playground_worker_up 1 for the worker with its host, wait and duration
    histograms whose _count, _sum and buckets are those of the store's started/finished times, and N predict
    requests adding exactly N to the predict route's latency histogram.
    """
    ids = submit_all(load)
    assert len(ids) == len(PLAN) == 10
    cancel = [job_id for job_id, (_, what) in zip(ids, PLAN, strict=True) if what == "cancel"]
    seen = scrape_until_done(load, cancel)
    assert seen["scrapes"] >= 5, seen
    assert seen["queued_and_running"] >= 1, seen  # scraped while jobs were both waiting and running
    assert {QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED} <= seen["statuses"], seen
    assert seen["unchanged"] >= 1, seen  # some scrapes were checked for exact equality
    jobs = store_jobs(load)
    check_final(load, scrape(load.client), jobs)
    check_predict_latency(load, jobs)
