"""The REST API of a real `playground serve`: auth, submitting and reading jobs, predicting, and owner isolation."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from tests.ui.conftest import FIXTURES, QUICK_PARAMS, Server, http, upload


def test_rest_api_requires_login_when_users_are_configured(server: Server):
    status, body = server.api("GET", "/api/jobs", user=None)
    assert status == 401
    assert "curl -u" in body["detail"]
    status, _ = http("GET", f"{server.url}/api/jobs", user="mallory")  # unknown user, wrong password
    assert status == 401


def test_a_bad_upload_is_refused_with_a_readable_message(server: Server, tmp_path: Path):
    fake = tmp_path / "reviews.csv"
    fake.write_bytes(b"%PDF-1.7 not a table")
    before = server.api("GET", "/api/datasets", user="bob")[1]["datasets"]
    status, body = http("POST", f"{server.url}/api/datasets", user="bob", files={"file": fake})
    assert status == 422
    assert "is a PDF document" in body["detail"]
    assert server.api("GET", "/api/datasets", user="bob")[1]["datasets"] == before  # nothing kept


def test_data_errors_are_reported_before_anything_is_queued(server: Server, tmp_path: Path):
    one_label = tmp_path / "one_label.csv"
    one_label.write_text("review_body,verdict\n" + "".join(f"text number {i},fresh\n" for i in range(20)))
    dataset = upload(server, "bob", one_label)
    before = server.api("GET", "/api/jobs", user="bob")[1]["jobs"]
    status, body = server.api("POST", "/api/jobs", user="bob", body={"data": {"train": dataset["id"]}})
    assert status == 422
    assert "only one label ('fresh')" in body["detail"]
    assert server.api("GET", "/api/jobs", user="bob")[1]["jobs"] == before


@pytest.mark.slow
def test_submit_follow_and_predict_through_rest(server: Server, trained_job: dict):
    job_id = trained_job["id"]
    status, job = server.api("GET", f"/api/jobs/{job_id}?history=true")
    assert status == 200
    assert job["owner"] == "alice" and job["status"] == "succeeded" and job["progress"] == 1.0
    assert any(point["kind"] == "log" and point["loss"] > 0 for point in job["history"])
    status, listing = server.api("GET", "/api/jobs")
    assert job_id in [j["id"] for j in listing["jobs"]]

    status, report = server.api("GET", f"/api/jobs/{job_id}/report")
    assert status == 200
    assert set(report["per_class"]) == {"fresh", "rotten"}
    assert report["metrics"]["macro_f1"] > 0.6  # one epoch on clearly separable reviews learns something

    body = {"texts": ["A tender, funny, beautifully acted film.", "Tedious, ugly and far too long."]}
    status, predicted = server.api("POST", f"/api/models/{job_id}/predict", body=body)
    assert status == 200, predicted
    assert predicted["labels"] == ["fresh", "rotten"]
    first, second = predicted["predictions"]
    assert math.isclose(sum(first["scores"].values()), 1.0, abs_tol=1e-4)
    assert (first["label"], second["label"]) == ("fresh", "rotten")

    status, body = server.api("POST", f"/api/models/{job_id}/predict", body={"text": "x", "texts": ["y"]})
    assert status == 422


@pytest.mark.slow
def test_one_user_cannot_see_or_use_another_users_job(server: Server, trained_job: dict):
    job_id = trained_job["id"]
    for method, path, body in (
        ("GET", f"/api/jobs/{job_id}", None),
        ("GET", f"/api/jobs/{job_id}/report", None),
        ("GET", f"/api/jobs/{job_id}/log", None),
        ("POST", f"/api/jobs/{job_id}/cancel", None),
        ("POST", f"/api/models/{job_id}/predict", {"text": "a fine film"}),
    ):
        status, answer = server.api(method, path, user="bob", body=body)
        assert status == 404, (method, path, answer)
        assert "alice" not in str(answer)
    status, listing = server.api("GET", "/api/jobs", user="bob")
    assert job_id not in [j["id"] for j in listing["jobs"]]
    # Nor can bob train on alice's data, or evaluate alice's model, by naming them.
    assert trained_job["spec"]["data"]["train"] == "reviews.csv"  # the upload's name, not where the server keeps it
    assert trained_job["artifact_dir"] is None and str(server.home) not in str(trained_job)
    dataset_id = next(d["id"] for d in server.api("GET", "/api/datasets")[1]["datasets"] if d["name"] == "reviews.csv")
    alice_data = str(server.home / "uploads" / dataset_id / "reviews.csv")
    status, answer = server.api("POST", "/api/jobs", user="bob", body={"data": {"train": alice_data}})
    assert status == 403, answer
    status, answer = server.api("POST", "/api/jobs", user="bob", body={"data": {"train": dataset_id}})
    assert status == 403 and "no dataset" in answer["detail"]
    mine = upload(server, "bob", FIXTURES / "reviews.csv")
    status, answer = server.api("POST", "/api/jobs", user="bob", body={"model": job_id, "data": mine["id"]})
    assert status == 422 and "no job" in answer["detail"]
    # alice still has it, untouched.
    assert server.api("GET", f"/api/jobs/{job_id}")[1]["status"] == "succeeded"


@pytest.mark.slow
def test_cancel_a_queued_job_through_rest(server: Server, trained_job: dict):
    dataset = upload(server, "bob", FIXTURES / "reviews.csv")
    spec = {"data": {"train": dataset["id"], "label_column": "verdict"}, "params": {**QUICK_PARAMS, "epochs": 5}}
    status, job = server.api("POST", "/api/jobs", user="bob", body=spec)
    assert status == 201 and job["owner"] == "bob"
    status, cancelled = server.api("POST", f"/api/jobs/{job['id']}/cancel", user="bob")
    assert status == 200
    assert cancelled["status"] in ("cancelled", "running") and cancelled["cancel_requested"]


def test_an_oversized_body_gets_413_and_a_long_value_is_not_echoed_back(server: Server):
    status, body = server.api("POST", "/api/jobs", user="bob", body={"data": {"train": "x" * 3_000_000}})
    assert status == 413  # over the 2 MB default, refused unread
    assert "larger than the 2 MB limit" in body["detail"] and "PLAYGROUND_MAX_BODY_MB" in body["detail"]
    status, body = server.api("POST", "/api/jobs", user="bob", body={"data": {"train": "/srv/" + "y" * 500_000}})
    assert status == 403
    assert "is not one of your uploaded datasets" in body["detail"] and len(body["detail"]) < 400


@pytest.mark.slow
def test_a_preset_and_a_search_through_rest_run_as_trials_in_one_job(server: Server):
    from tests.ui.conftest import wait_finished

    dataset = upload(server, "bob", FIXTURES / "reviews.csv")
    spec = {
        "base_model": "minilm-l6",
        "data": {"train": dataset["id"]},
        "preset": "quick",
        "params": {"max_length": 48, "class_weights": "balanced", "gradient_accumulation_steps": 2},
        "search": {"trials": 2, "learning_rate": [1e-4, 1e-3], "prune": False},
    }
    status, job = server.api("POST", "/api/jobs", user="bob", body=spec)
    assert status == 201, job
    stored = job["spec"]
    assert "preset" not in stored and stored["params"]["epochs"] == 1  # the preset, expanded into its knobs
    assert stored["params"]["class_weights"] == "balanced" and stored["search"]["trials"] == 2
    assert wait_finished(server, job["id"], user="bob")["status"] == "succeeded"
    status, report = server.api("GET", f"/api/jobs/{job['id']}/report", user="bob")
    found = report["train"]["search"]
    assert [t["state"] for t in found["trials"]] == ["complete", "complete"]
    assert report["train"]["effective_batch_size"] == 32
    best = next(t for t in found["trials"] if t["number"] == found["best_trial"])
    assert best["score"] == report["train"]["best_validation_macro_f1"]
    assert 1e-4 <= report["train"]["learning_rate"] <= 1e-3
    status, bad = server.api("POST", "/api/jobs", user="bob", body={**spec, "search": {"trials": 2, "prune": "maybe"}})
    assert status == 422 and "search.prune" in bad["detail"]
