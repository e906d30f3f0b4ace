"""Shared fixtures: a real Redis, a per-test data dir, real worker processes, a tiny labeled CSV.

All fixtures are opt-in (none is autouse), so engine and UI tests pay nothing for them.
"""

from __future__ import annotations

import csv
import itertools
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
_redis_dbs = itertools.count()

# Timings shrunk so that recovery happens within seconds instead of minutes.
FAST_TIMINGS = {
    "PLAYGROUND_HEARTBEAT_SECONDS": "0.5",
    "PLAYGROUND_LEASE_SECONDS": "4",
    "PLAYGROUND_SWEEP_SECONDS": "1",
    "PLAYGROUND_REQUEUE_AFTER_SECONDS": "2",
    "PLAYGROUND_CANCEL_GRACE_SECONDS": "20",
    "PLAYGROUND_PROGRESS_SECONDS": "0.2",
}


@pytest.fixture(scope="session")
def redis_server() -> str:
    """The URL of a running Redis on 127.0.0.1:6379 (started here if it is installed but down)."""
    import redis

    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.ConnectionError:
        if not shutil.which("redis-server"):
            pytest.fail("Redis is not running on 127.0.0.1:6379 and redis-server is not installed")
        subprocess.run(
            ["redis-server", "--daemonize", "yes", "--bind", REDIS_HOST, "--port", str(REDIS_PORT), "--save", ""],
            check=True,
        )
        _wait_for(client.ping, 10, "Redis to start", ignore=(redis.ConnectionError,))
    return f"redis://{REDIS_HOST}:{REDIS_PORT}"


@pytest.fixture
def redis_url(redis_server: str) -> Iterator[str]:
    """A Redis URL on a database of its own (1-15, emptied before and after), so tests do not see each other."""
    import redis

    url = f"{redis_server}/{next(_redis_dbs) % 15 + 1}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()
    client.close()


@pytest.fixture
def playground_env(tmp_path: Path) -> dict[str, str]:
    """Environment for workers and the API: a fresh data dir, offline, one thread per job, fast recovery timings.

    No broker URL: tests that want Redis add PLAYGROUND_BROKER_URL themselves; without it the embedded broker is used.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLAYGROUND_")}
    env.update(
        PLAYGROUND_HOME=str(tmp_path / "home"),
        PLAYGROUND_QUEUE=f"test-{uuid.uuid4().hex[:8]}",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        OMP_NUM_THREADS="1",  # two jobs on a 2-core machine must not fight over threads
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        **FAST_TIMINGS,
    )
    return env


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, playground_env: dict) -> dict:
    """`playground_env`'s PLAYGROUND_* settings put into this process, for CLI commands run in it (none else left),
    with the CLI's owner, carol, in PLAYGROUND_OWNER."""
    for name in [n for n in os.environ if n.startswith("PLAYGROUND_")]:
        monkeypatch.delenv(name)
    for name, value in playground_env.items():
        if name.startswith("PLAYGROUND_"):
            monkeypatch.setenv(name, value)
    monkeypatch.setenv("PLAYGROUND_OWNER", "carol")
    return playground_env


class WorkerProcess:
    """A `playground worker` running as a subprocess in its own process group."""

    def __init__(self, popen: subprocess.Popen, log_path: Path):
        self.popen = popen
        self.log_path = log_path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    def wait_ready(self, timeout: float = 60) -> WorkerProcess:
        def ready() -> bool:
            if self.popen.poll() is not None:
                raise AssertionError(f"worker exited with {self.popen.returncode}:\n{self.log()[-3000:]}")
            return " ready." in self.log()

        _wait_for(ready, timeout, f"worker {self.pid} to be ready", log=self.log)
        return self

    def kill9(self) -> None:
        """SIGKILL the worker and all its processes at once, as when its machine or container dies."""
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(10)


def worker_command() -> list[str]:
    """`playground worker` through ui.cli once it has the sub-command, else the same code via `python -m worker`."""
    from ui.cli import build_parser

    commands = set()
    for action in build_parser()._actions:
        commands.update(getattr(action, "choices", None) or {})
    if "worker" in commands:
        return [sys.executable, "-m", "ui.cli", "worker"]
    return [sys.executable, "-m", "worker"]


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator:
    """Factory: start_worker(env, concurrency=1) -> a ready WorkerProcess; every one is killed at teardown."""
    started: list[WorkerProcess] = []

    def start(env: dict[str, str], *, concurrency: int = 1, wait: bool = True) -> WorkerProcess:
        log_path = tmp_path / f"worker-{len(started) + 1}.log"
        command = [*worker_command(), "--concurrency", str(concurrency), "--queues", env["PLAYGROUND_QUEUE"]]
        with log_path.open("wb") as log:
            popen = subprocess.Popen(
                command, cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        worker = WorkerProcess(popen, log_path)
        started.append(worker)
        return worker.wait_ready() if wait else worker

    yield start
    for worker in started:
        worker.kill9()


def write_training_csv(path: Path, rows: int = 60, seed: int = 0) -> Path:
    """A labeled CSV of two clearly separable classes (positive / negative reviews)."""
    rng = random.Random(seed)
    good = ["great", "wonderful", "excellent", "lovely", "fantastic", "superb", "delightful", "brilliant"]
    bad = ["terrible", "awful", "horrible", "dreadful", "bad", "poor", "disappointing", "nasty"]
    things = ["movie", "meal", "service", "book", "hotel", "concert", "phone", "game", "room", "show"]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        for i in range(rows):
            label = "positive" if i % 2 == 0 else "negative"
            word = rng.choice(good if label == "positive" else bad)
            writer.writerow(
                [f"the {rng.choice(things)} was {word} {rng.choice(['', 'really', 'truly'])}".strip(), label]
            )
    return path


@pytest.fixture
def training_csv(tmp_path: Path) -> Path:
    """60 rows of two clearly separable classes."""
    return write_training_csv(tmp_path / "reviews.csv")


def _wait_for(condition, timeout: float, what: str, *, log=None, ignore: tuple = ()) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except ignore:
            pass
        time.sleep(0.1)
    tail = f"\n{log()[-3000:]}" if log else ""
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}{tail}")
