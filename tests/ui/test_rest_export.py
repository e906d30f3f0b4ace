"""Export variants through a real `playground serve` and its worker: queued like training, measured, and served."""

from __future__ import annotations

import pytest

from tests.ui.conftest import USERS, Server, wait_finished


@pytest.fixture(scope="module")
def int8_export(server: Server, trained_job: dict) -> dict:
    """Alice's int8 export of her trained classifier, queued through REST and finished by the worker."""
    status, job = server.api("POST", f"/api/models/{trained_job['id']}/export", body={"to": "int8"})
    assert status == 201, job
    assert job["kind"] == "export" and job["spec"]["to"] == "int8"
    job = wait_finished(server, job["id"], timeout=300)
    assert job["status"] == "succeeded", job
    return job


@pytest.mark.slow
def test_an_export_job_fills_the_compression_table_with_its_reports_numbers(server, trained_job, int8_export):
    status, body = server.api("GET", f"/api/models/{trained_job['id']}/variants")
    assert status == 200, body
    rows = {row["variant"]: row for row in body["variants"]}
    assert {"original", "int8"} <= set(rows) and body["export_jobs"]["int8"] == int8_export["id"]
    status, report = server.api("GET", f"/api/jobs/{int8_export['id']}/report")
    assert status == 200, report
    assert rows["int8"]["metrics"] == report["exported"]["metrics"]
    assert rows["int8"]["size_mb"] < 0.75 * rows["original"]["size_mb"]
    assert rows["original"]["runs in"] == "fp32" and rows["int8"]["runs in"] == "int8"
    # The job list's summary reads the variant's own scores, like any other report's.
    assert int8_export["summary"]["accuracy"] == pytest.approx(report["metrics"]["accuracy"])


@pytest.mark.slow
def test_the_rest_and_openai_routes_serve_the_variant_they_are_asked_for(server, trained_job, int8_export):
    import httpx

    job_id = trained_job["id"]
    text = "Ein großartiger Film — drôle, tendre, 非常好看。"
    status, answer = server.api("POST", f"/api/models/{job_id}/predict", body={"text": text, "variant": "int8"})
    assert status == 200, answer
    assert answer["variant"] == "int8" and answer["predictions"][0]["label"] in ("fresh", "rotten")
    status, plain = server.api("POST", f"/api/models/{job_id}/predict", body={"text": text})
    assert status == 200 and plain["variant"] == "original"
    status, missing = server.api("POST", f"/api/models/{job_id}/predict", body={"text": text, "variant": "onnx"})
    assert status == 409 and "no 'onnx' variant" in missing["detail"] and "--to onnx" in missing["detail"]
    served = httpx.post(
        f"{server.url}/v1/classify",
        json={"model": f"{job_id}@int8", "input": [text, ""]},
        auth=("alice", USERS["alice"]),
        timeout=60,
    )
    assert served.status_code == 200, served.text
    assert served.json()["model"] == f"{job_id}@int8" and len(served.json()["data"]) == 2
    models = httpx.get(f"{server.url}/v1/models", auth=("alice", USERS["alice"]), timeout=60).json()["data"]
    assert f"{job_id}@int8" in {model["id"] for model in models}


@pytest.mark.slow
def test_bad_export_requests_say_what_to_fix(server: Server, trained_job: dict):
    status, body = server.api("POST", "/api/models/0123456789abcdef/export", body={"to": "int8"})
    assert status == 404
    job_id = trained_job["id"]
    status, body = server.api("POST", f"/api/models/{job_id}/export", body={"to": "pruned", "sparsity": 0.99})
    assert status == 422 and "sparsity" in body["detail"] and "0.9" in body["detail"]
    status, body = server.api("POST", f"/api/models/{job_id}/export", body={"to": "fp4"})
    assert status == 422
    status, body = server.api("POST", f"/api/models/{job_id}/export", body={"to": "int8"}, user="bob")
    assert status == 404  # someone else's model: as if it did not exist
