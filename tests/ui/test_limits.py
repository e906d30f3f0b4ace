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


def _call(headers: list[tuple[bytes, bytes]], chunks: int) -> tuple[int, list[str]]:
    """Drive BodyLimit by hand: return how many body chunks it read and the order of reads and sends."""
    import asyncio
    import threading

    events: list[str] = []
    left = list(range(chunks))

    async def receive() -> dict:
        left.pop()
        events.append("read")
        return {"type": "http.request", "body": b"x" * 10_000, "more_body": bool(left)}

    async def send(message: dict) -> None:
        events.append(message["type"])

    async def app(scope, receive, send) -> None:  # never reached: the declared length is over the limit
        raise AssertionError("the app saw an oversized body")

    scope = {"type": "http", "path": "/api/jobs", "headers": headers}
    # A thread of its own: a browser test earlier in the session may leave an event loop running in this one.
    worker = threading.Thread(target=asyncio.run, args=(BodyLimit(app)(scope, receive, send),))
    worker.start()
    worker.join(timeout=10)
    return chunks - len(left), events


def test_a_refused_body_is_read_to_its_end_before_the_413_so_the_sender_gets_the_answer(
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setenv("PLAYGROUND_MAX_BODY_MB", "0.01")
    read, events = _call([(b"content-length", b"300000")], chunks=30)
    assert read == 30 and events[-2:] == ["http.response.start", "http.response.body"]
    assert events.index("http.response.start") == 30  # every chunk read first: no broken pipe for the client
    read, events = _call([(b"content-length", b"300000"), (b"expect", b"100-continue")], chunks=30)
    assert read == 0 and events == ["http.response.start", "http.response.body"]  # it waits for the answer unsent
