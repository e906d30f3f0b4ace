"""worker.health: the readiness checks behind /readyz, and `python -m worker.health`, the workers' healthcheck."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.conftest import REPO
from worker import health
from worker.settings import Settings
from worker.store import JobStore


def _run_health(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "worker.health"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )


def test_ready_on_postgresql_and_redis(postgres_url: str, redis_url: str, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, broker_url=redis_url, database_url=postgres_url)
    store = JobStore(settings.database, settings.home)
    store.create_schema()
    try:
        assert health.readiness(store, settings) == (True, {"status": "ready", "store": "ok", "broker": "ok"})
    finally:
        store.close()


def test_an_unreachable_postgresql_is_named_without_its_password(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, database_url="postgresql+psycopg://playground:s3cret-pw@127.0.0.1:1/jobs")
    store = JobStore(settings.database, settings.home)
    started = time.monotonic()
    try:
        ready, body = health.readiness(store, settings)
    finally:
        store.close()
    assert time.monotonic() - started < health.CHECK_SECONDS + 2
    assert not ready and body["broker"] == "ok", body
    assert body["store"].startswith("job store unreachable") and "127.0.0.1" in body["store"], body
    assert "s3cret-pw" not in str(body)


def test_a_broker_of_another_kind_is_checked_by_connecting_to_it(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, broker_url="amqp://guest:guest@127.0.0.1:1//")
    answer = health.check_broker(settings, timeout=1)
    assert answer.startswith("broker unreachable") and "refused" in answer.lower(), answer


def test_a_check_that_hangs_fails_on_time_instead_of_holding_the_healthcheck() -> None:
    release = threading.Event()
    started = time.monotonic()
    try:
        answer = health._within(0.2, "store", lambda: "ok" if release.wait(30) else "late")
    finally:
        release.set()
    assert answer == "store did not answer within 1.2 s"
    assert time.monotonic() - started < 3


def test_the_worker_healthcheck_exits_0_when_ready_and_1_when_redis_is_down(playground_env: dict[str, str]) -> None:
    store = JobStore(Settings.from_env(playground_env).database, Path(playground_env["PLAYGROUND_HOME"]))
    store.create_schema()  # as a worker does when it starts
    store.close()
    ready = _run_health(playground_env)
    assert (ready.returncode, ready.stdout.strip()) == (0, "status=ready store=ok broker=ok"), ready.stderr
    down = _run_health({**playground_env, "PLAYGROUND_BROKER_URL": "redis://127.0.0.1:1/0"})
    assert down.returncode == 1, down.stdout + down.stderr
    assert "broker=broker unreachable" in down.stdout and "store=ok" in down.stdout, down.stdout


def test_the_worker_healthcheck_fails_before_the_job_store_has_its_tables(playground_env: dict[str, str]) -> None:
    result = _run_health(playground_env)
    assert result.returncode == 1 and "store=job store unreachable" in result.stdout, result.stdout + result.stderr
