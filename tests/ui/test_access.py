"""Access on a shared server, through the REST routes (FastAPI's TestClient on a real AppContext and SQLite job
store) and the Jobs tab's callbacks: admins, per-user quotas, share-link expiry and rate limits. No worker runs, so
submitted jobs stay queued; a finished model is a job record with a model folder, answered by a canned predictor
(what is tested is who may ask, not what the model says)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import gradio as gr
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import update

from ui.context import AppContext
from ui.demo import demo_router
from ui.ratelimit import RateLimiter
from ui.server import api_router
from ui.tabs import jobs as jobs_tab
from ui.tabs import playground
from ui.users import Users
from worker.quotas import QuotaGuard, Quotas, TooManyJobsError
from worker.records import SUCCEEDED, utcnow
from worker.settings import Settings
from worker.shares import ShareRow

ALICE, BOB, CAROL = ("alice", "pw-a"), ("bob", "pw-b"), ("carol", "pw-c")  # alice is the admin
SPEC = {"task": "text-classification", "base_model": "minilm-l6", "data": {"train": "/x/reviews.csv"}}


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[AppContext]:
    users = Users(dict([ALICE, BOB, CAROL]), frozenset({"alice"}))
    context = AppContext(Settings(home=tmp_path / "home", queue=f"test-{uuid.uuid4().hex[:8]}"), users)
    yield context
    context.close()


@pytest.fixture
def client(ctx: AppContext) -> TestClient:
    app = FastAPI()
    app.state.ctx = ctx
    app.include_router(api_router(ctx))
    app.include_router(demo_router(ctx))
    return TestClient(app)


@pytest.fixture
def csv(tmp_path: Path) -> Path:
    path = tmp_path / "reviews.csv"
    path.write_text("text,label\n" + "".join(f"review number {i},{'ab'[i % 2]}\n" for i in range(40)))
    return path


def queued(ctx: AppContext, owner: str) -> str:
    return ctx.jobs.submit(SPEC, owner)


def finished_model(ctx: AppContext, owner: str = "bob") -> str:
    store = ctx.jobs.store
    job_id = queued(ctx, owner)
    claimed = store.claim(job_id, task_id=f"{job_id}.1", host="h", name="n", pid=1)
    assert store.finish(job_id, claimed.attempts, SUCCEEDED, message="done")
    model = Path(ctx.jobs.get(job_id).artifact_dir) / "model"
    model.mkdir(parents=True)
    (model / "config.json").write_text(json.dumps({"id2label": {"0": "neg", "1": "pos"}}), encoding="utf-8")
    return job_id


class CannedPredictor:
    def serve(self, request: dict) -> dict:
        return {"task": "text-classification", "predictions": [{"label": "pos", "scores": {"pos": 0.9, "neg": 0.1}}]}


class CannedModels:
    def get(self, model_dir: Path) -> CannedPredictor:
        assert (model_dir / "config.json").is_file()
        return CannedPredictor()


def test_an_admin_lists_follows_and_cancels_everyones_jobs_and_others_only_their_own(ctx, client):
    bobs, carols = queued(ctx, "bob"), queued(ctx, "carol")
    assert ctx.is_admin("alice") and not ctx.is_admin("bob") and not ctx.is_admin(None)
    everyone = client.get("/api/jobs?all=true", auth=ALICE).json()["jobs"]
    assert {(job["id"], job["owner"]) for job in everyone} == {(bobs, "bob"), (carols, "carol")}
    assert client.get("/api/jobs", auth=ALICE).json()["jobs"] == []  # without ?all: her own, as before
    refused = client.get("/api/jobs?all=true", auth=BOB)
    assert refused.status_code == 403 and "only an admin" in refused.json()["detail"]
    assert [job["id"] for job in client.get("/api/jobs", auth=BOB).json()["jobs"]] == [bobs]
    assert client.get(f"/api/jobs/{carols}", auth=BOB).status_code == 404  # someone else's job is not there
    assert client.post(f"/api/jobs/{carols}/cancel", auth=BOB).status_code == 404
    assert ctx.jobs.get(carols).status == "queued"
    assert client.get(f"/api/jobs/{carols}", auth=ALICE).json()["owner"] == "carol"
    cancelled = client.post(f"/api/jobs/{carols}/cancel", auth=ALICE)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert client.get(f"/api/jobs/{carols}/report", auth=ALICE).status_code == 404  # reports stay their owner's


def test_the_jobs_tab_shows_an_admin_everyones_jobs_with_owners_and_lets_her_cancel_them(ctx):
    bobs = queued(ctx, "bob")
    table, picker, ids = jobs_tab.list_jobs(ctx, gr.Request(username="alice"))
    assert ids == [bobs] and table[jobs_tab.OWNER_COLUMN].tolist() == ["bob"]
    own_table, _, own_ids = jobs_tab.list_jobs(ctx, gr.Request(username="carol"))
    assert own_ids == [] and jobs_tab.OWNER_COLUMN not in own_table.columns
    bob_table, _, _ = jobs_tab.list_jobs(ctx, gr.Request(username="bob"))
    assert jobs_tab.OWNER_COLUMN not in bob_table.columns  # his own jobs only: no need to say whose
    with pytest.raises(gr.Error, match="no job"):
        jobs_tab.cancel_job(ctx, bobs, gr.Request(username="carol"))
    detail, *_, cancel, open_report, _ = jobs_tab.job_status(ctx, bobs, gr.Request(username="alice"))
    assert cancel.visible is True and open_report.visible is False
    jobs_tab.cancel_job(ctx, bobs, gr.Request(username="alice"))
    assert ctx.jobs.get(bobs).status == "cancelled"


def test_a_user_at_the_job_limit_gets_429_while_another_user_submits(ctx, client, csv):
    ctx.quotas = QuotaGuard(Quotas(max_active_jobs=2), ctx.jobs.store, ctx.datasets)
    uploads = {
        who: client.post("/api/datasets", auth=auth, files={"file": csv.open("rb")})
        for who, auth in [("bob", BOB), ("carol", CAROL)]
    }
    assert {response.status_code for response in uploads.values()} == {201}
    spec = {"base_model": "minilm-l6", "data": {"train": uploads["bob"].json()["id"]}}
    assert client.post("/api/jobs", auth=BOB, json=spec).status_code == 201
    assert client.post("/api/jobs", auth=BOB, json=spec).status_code == 201
    third = client.post("/api/jobs", auth=BOB, json=spec)
    assert third.status_code == 429 and "PLAYGROUND_MAX_ACTIVE_JOBS=2" in third.json()["detail"]
    with pytest.raises(TooManyJobsError):
        ctx.submit(spec, "bob")
    carols = {"base_model": "minilm-l6", "data": {"train": uploads["carol"].json()["id"]}}
    assert ctx.submit(carols, "carol").job_id  # bob's limit is bob's
    assert client.get("/api/quota", auth=BOB).json() == {
        "active_jobs": 2,
        "max_active_jobs": 2,
        "disk_bytes": None,
        "max_disk_bytes": None,
    }
    assert len(ctx.jobs.list_jobs("bob")) == 2


def test_over_the_disk_quota_uploads_get_413_jobs_403_and_deleting_frees_space(ctx, client, csv):
    size = csv.stat().st_size
    ctx.quotas = QuotaGuard(Quotas(None, max_disk_bytes=size + 10), ctx.jobs.store, ctx.datasets)
    first = client.post("/api/datasets", auth=BOB, files={"file": ("a.csv", csv.read_bytes())})
    assert first.status_code == 201
    second = client.post("/api/datasets", auth=BOB, files={"file": ("b.csv", csv.read_bytes())})
    assert second.status_code == 413 and "PLAYGROUND_MAX_USER_DISK_GB" in second.json()["detail"]
    assert "DELETE /api/datasets/ID" in second.json()["detail"]
    assert client.post("/api/datasets", auth=CAROL, files={"file": ("b.csv", csv.read_bytes())}).status_code == 201
    done = finished_model(ctx, "bob")  # the model folder takes bob over his quota
    (Path(ctx.jobs.get(done).artifact_dir) / "model" / "weights.bin").write_bytes(b"\0" * 20)
    spec = {"base_model": "minilm-l6", "data": {"train": first.json()["id"]}}
    over = client.post("/api/jobs", auth=BOB, json=spec)
    assert over.status_code == 403 and "disk quota" in over.json()["detail"]
    assert client.delete(f"/api/jobs/{done}", auth=CAROL).status_code == 404
    assert client.delete(f"/api/jobs/{done}", auth=BOB).json() == {"id": done, "deleted": True}
    assert client.post("/api/jobs", auth=BOB, json=spec).status_code == 201
    waiting = client.delete(f"/api/datasets/{first.json()['id']}", auth=BOB)
    assert waiting.status_code == 409 and "is used by job" in waiting.json()["detail"]


def test_an_expired_share_link_says_so_and_a_busy_one_answers_429_with_retry_after(ctx, client):
    ctx.predictors = CannedModels()
    job_id = finished_model(ctx)
    made = client.post(f"/api/models/{job_id}/shares", auth=BOB, json={"expires_in": "2h", "rate_per_minute": 2})
    assert made.status_code == 201 and made.json()["rate_per_minute"] == 2 and made.json()["expires_at"]
    token = made.json()["token"]
    assert client.post(f"/api/models/{job_id}/shares", auth=CAROL, json={}).status_code == 404  # not her model
    assert client.post(f"/api/models/{job_id}/shares", auth=BOB, json={"expires_in": "soon"}).status_code == 422
    for _ in range(2):
        answer = client.post(f"/demo/{token}/predict", json={"text": "great"})
        assert answer.status_code == 200 and answer.json()["label"] == "pos"
    busy = client.post(f"/demo/{token}/predict", json={"text": "great"})
    assert busy.status_code == 429 and 1 <= int(busy.headers["retry-after"]) <= 30
    assert "at most 2 predictions a minute" in busy.json()["detail"]
    form = client.post(f"/demo/{token}", data={"text": "great"})
    assert form.status_code == 429 and "Try again in" in form.text and form.headers["retry-after"]
    other = client.post(f"/api/models/{job_id}/shares", auth=BOB, json={}).json()["token"]
    assert client.post(f"/demo/{other}/predict", json={"text": "x"}).status_code == 200  # each link its own bucket

    with ctx.shares.engine.begin() as conn:  # two hours later
        conn.execute(update(ShareRow).where(ShareRow.token == token).values(expires_at=utcnow()))
    page = client.get(f"/demo/{token}")
    assert page.status_code == 404 and "Demo link expired" in page.text and "Ask its owner" in page.text
    gone = client.post(f"/demo/{token}/predict", json={"text": "great"})
    assert gone.status_code == 404 and gone.json()["expired"] is True and "expired on" in gone.json()["detail"]
    unknown = client.get("/demo/no-such-token")
    assert unknown.status_code == 404 and "Demo not found" in unknown.text and "expired" not in unknown.text
    listed = {s["token"]: s["expired"] for s in client.get("/api/shares", auth=BOB).json()["shares"]}
    assert listed == {token: True, other: False}
    assert client.delete(f"/api/shares/{other}", auth=CAROL).status_code == 404
    assert client.delete(f"/api/shares/{other}", auth=BOB).json() == {"revoked": True}


def test_a_token_bucket_allows_a_burst_then_refills_at_its_rate():
    now = [0.0]
    limiter = RateLimiter(clock=lambda: now[0])
    assert [limiter.take("link", 3) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("link", 3) == pytest.approx(20.0)  # 3 a minute: one every 20 s
    assert limiter.take("other", 3) == 0.0
    now[0] = 10.0
    assert limiter.take("link", 3) == pytest.approx(10.0)
    now[0] = 20.0
    assert limiter.take("link", 3) == 0.0 and limiter.take("link", 3) > 0


def test_the_playground_tab_makes_a_link_that_expires_and_lists_when(ctx):
    job_id = finished_model(ctx)
    bob = gr.Request(username="bob", headers={"host": "demo.example"})
    message, shares, _ = playground.create_share(ctx, job_id, False, bob, "1d")
    [share] = ctx.shares.list("bob")
    assert share.expires_at is not None and " until " in message
    assert shares["Expires"].tolist() == [playground.when(share.expires_at)]
    _, shares, _ = playground.create_share(ctx, job_id, False, bob)  # as calls from before expiry: never
    assert shares["Expires"].tolist()[0] == "never"
    with pytest.raises(gr.Error, match="not a lifetime"):
        playground.create_share(ctx, job_id, False, bob, "next week")
