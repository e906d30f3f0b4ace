"""Body limits: an oversized body gets 413 with what to do, by its declared length or as it streams, on every
route; a normal body passes; errors never echo a huge value back whole."""

from __future__ import annotations

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from engine.spec import DataSpec, JobSpec
from ui.limits import BodyLimit


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> TestClient:
    monkeypatch.setenv("PLAYGROUND_MAX_BODY_MB", "0.01")  # 10 KB
    monkeypatch.setenv("PLAYGROUND_MAX_UPLOAD_MB", "0.05")  # 50 KB files
    app = FastAPI()

    @app.post("/api/jobs")
    async def jobs(request: Request) -> dict:
        return {"read": len(await request.body())}

    @app.post("/api/datasets")
    async def datasets(request: Request) -> dict:
        return {"read": len(await request.body())}

    app.add_middleware(BodyLimit)
    return TestClient(app)


def test_an_oversized_body_is_refused_with_413_and_what_to_do(client: TestClient):
    answer = client.post("/api/jobs", content=b"x" * 20_000, headers={"content-type": "application/json"})
    assert answer.status_code == 413
    assert answer.json()["detail"] == (
        "the request body is larger than the 0.01 MB limit; send less, or raise PLAYGROUND_MAX_BODY_MB on the server"
    )
    assert len(answer.content) < 200  # nothing of the body comes back
    assert client.post("/api/jobs", content=b"x" * 5_000).json() == {"read": 5_000}


def test_a_streamed_body_without_a_length_is_cut_off_too(client: TestClient):
    def chunks():
        for _ in range(30):
            yield b"y" * 1_000

    answer = client.post("/api/jobs", content=chunks())  # chunked: no Content-Length to check first
    assert answer.status_code == 413


def test_uploads_get_the_data_file_limit(client: TestClient):
    assert client.post("/api/datasets", content=b"z" * 40_000).json() == {"read": 40_000}  # over 10 KB, a file
    answer = client.post("/api/datasets", content=b"z" * 1_200_000)
    assert answer.status_code == 413 and "PLAYGROUND_MAX_UPLOAD_MB" in answer.json()["detail"]


def test_validation_errors_quote_a_huge_value_cut_short():
    with pytest.raises(ValueError) as caught:
        JobSpec.from_dict({"data": {"train": "a.csv"}, "params": {"epochs": "x" * 1_000_000}})
    message = str(caught.value)
    assert len(message) < 1_000 and "… (1000002 characters)" in message
    assert DataSpec(train="a.csv").encoding is None
