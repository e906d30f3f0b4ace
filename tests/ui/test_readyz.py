"""GET /readyz on a real web app: a real SQLite job store, the embedded broker or a real (or unreachable) Redis.

Also runs the image's and compose.yaml's healthcheck commands against a served app, as Docker would run them.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from tests.docker_build import effective, stages
from tests.ui.conftest import REPO, free_port, wait_for
from ui.context import AppContext, Users
from worker.settings import Settings

UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"  # port 1: nothing listens, so the connection is refused at once


def _context(home: Path, broker_url: str | None = None) -> AppContext:
    settings = Settings(home=home, broker_url=broker_url, queue=f"readyz-{uuid.uuid4().hex[:8]}")
    return AppContext(settings, Users())


@pytest.fixture
def make_client(tmp_path: Path) -> Iterator:
    from ui.server import create_app

    made: list[AppContext] = []

    def make(broker_url: str | None = None) -> tuple[TestClient, AppContext]:
        ctx = _context(tmp_path / f"home{len(made)}", broker_url)
        made.append(ctx)
        return TestClient(create_app(ctx)), ctx

    yield make
    for ctx in made:
        ctx.close()


def test_ready_on_the_sqlite_store_and_the_embedded_broker(make_client) -> None:
    client, ctx = make_client()
    assert not (ctx.settings.home / "broker.sqlite").exists()  # no message sent yet: still ready
    response = client.get("/readyz")
    assert (response.status_code, response.json()) == (200, {"status": "ready", "store": "ok", "broker": "ok"})
    # A message through the embedded broker creates its file and kombu's tables; still ready.
    ctx.jobs.app.send_task("playground.readyz-probe", queue=ctx.settings.queue)
    assert (ctx.settings.home / "broker.sqlite").is_file()
    assert client.get("/readyz").json()["broker"] == "ok"
    assert client.get("/healthz").json() == {"status": "ok"}


def test_ready_on_a_real_redis(make_client, redis_url: str) -> None:
    client, _ = make_client(redis_url)
    response = client.get("/readyz")
    assert (response.status_code, response.json()) == (200, {"status": "ready", "store": "ok", "broker": "ok"})


def test_an_unreachable_redis_answers_503_naming_the_broker(make_client) -> None:
    client, _ = make_client(UNREACHABLE_REDIS)
    started = time.monotonic()
    response = client.get("/readyz")
    assert time.monotonic() - started < 5, "a readiness check must answer within a healthcheck's timeout"
    body = response.json()
    assert response.status_code == 503, body
    assert (body["status"], body["store"]) == ("not ready", "ok")
    assert body["broker"].startswith("broker unreachable") and "127.0.0.1:1" in body["broker"], body
    # Liveness does not depend on the broker: the process is up, it is only not ready.
    assert client.get("/healthz").status_code == 200


def test_a_broken_embedded_broker_file_answers_503(make_client) -> None:
    client, ctx = make_client()
    (ctx.settings.home / "broker.sqlite").write_bytes(b"this is not a SQLite database" * 100)
    body = client.get("/readyz").json()
    assert body["status"] == "not ready" and body["store"] == "ok", body
    assert "broker.sqlite" in body["broker"] and "not a database" in body["broker"], body


def test_a_job_store_without_its_tables_answers_503_naming_the_store(make_client) -> None:
    client, ctx = make_client()
    with sqlite3.connect(ctx.settings.home / "jobs.sqlite") as db:
        db.execute("DROP TABLE playground_job_events")
        db.execute("DROP TABLE playground_jobs")
    response = client.get("/readyz")
    body = response.json()
    assert response.status_code == 503 and body["broker"] == "ok", body
    assert body["store"].startswith("job store unreachable") and "playground_jobs" in body["store"], body


# ---- the healthcheck commands, as Docker runs them ------------------------------------------------------------------


@pytest.fixture
def serve(tmp_path: Path) -> Iterator:
    """Serve create_app(ctx) with uvicorn on a free port in a thread; returns the port."""
    import uvicorn

    from ui.server import create_app

    running: list[tuple[uvicorn.Server, threading.Thread, AppContext]] = []

    def start(broker_url: str | None = None) -> int:
        ctx = _context(tmp_path / f"served{len(running)}", broker_url)
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(create_app(ctx), host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        running.append((server, thread, ctx))
        wait_for(lambda: server.started, 60, "uvicorn to start")
        return port

    yield start
    for server, thread, ctx in running:
        server.should_exit = True
        thread.join(15)
        ctx.close()


def _run_probe(command: list[str], port: int) -> int:
    # The commands name the container's port 7860; the app under test listens on a free one.
    argv = [part.replace(":7860/", f":{port}/") for part in command]
    return subprocess.run(argv, capture_output=True, timeout=30, check=False).returncode


def _image_probe() -> list[str]:
    value = effective(stages(), "cpu", "HEALTHCHECK") or ""
    return json.loads(value[value.index("CMD") + 3 :])


def _compose_web_probe() -> list[str]:
    test = yaml.safe_load((REPO / "compose.yaml").read_text())["services"]["web"]["healthcheck"]["test"]
    assert test[0] == "CMD", test
    return [sys.executable if part == "python" else part for part in test[1:]]


def test_the_healthcheck_commands_pass_on_a_ready_app(serve) -> None:
    port = serve()
    image_probe = [sys.executable if part == "python" else part for part in _image_probe()]
    assert _run_probe(image_probe, port) == 0
    assert _run_probe(_compose_web_probe(), port) == 0


def test_compose_marks_the_web_app_unhealthy_while_redis_is_down_but_it_stays_alive(serve) -> None:
    port = serve(UNREACHABLE_REDIS)
    assert _run_probe(_compose_web_probe(), port) != 0, "/readyz answered 503: the check must fail"
    image_probe = [sys.executable if part == "python" else part for part in _image_probe()]
    assert _run_probe(image_probe, port) == 0, "the image's liveness check does not restart it for Redis"
