"""Fixtures for the web app tests: a real `playground serve` (web app + local worker on the embedded broker) on a free
port with its own data dir and two users, a real Chromium driven by Playwright, and a model trained through REST.

One server serves the whole session: starting it (web process, worker, a first job's torch import) costs seconds
that every test would otherwise pay again.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from ui.context import AppContext

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
ARTIFACTS = REPO / "test-artifacts" / "ui"
USERS = {"alice": "alice-secret", "bob": "bob-secret"}
CHROMIUM = os.environ.get("PLAYGROUND_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
# One epoch of MiniLM on tests/fixtures/reviews.csv that reaches a useful model (macro-F1 around 0.9) in ~10 s.
QUICK_PARAMS = {"epochs": 1, "batch_size": 8, "learning_rate": 5e-4, "max_length": 64}
TIMINGS = {
    "PLAYGROUND_HEARTBEAT_SECONDS": "0.5",
    "PLAYGROUND_LEASE_SECONDS": "10",
    "PLAYGROUND_SWEEP_SECONDS": "2",
    "PLAYGROUND_REQUEUE_AFTER_SECONDS": "5",
    "PLAYGROUND_PROGRESS_SECONDS": "0.2",
}


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serve_command() -> list[str]:
    """`playground serve` through ui.cli once it has the sub-command, else the same code via `python -m ui.serve`."""
    from ui.cli import build_parser

    commands = set()
    for action in build_parser()._actions:
        commands.update(getattr(action, "choices", None) or {})
    if "serve" in commands:
        return [sys.executable, "-m", "ui.cli", "serve"]
    return [sys.executable, "-m", "ui.serve"]


def server_env(home: Path) -> dict[str, str]:
    """Environment of a server under test: its own data dir and queue, offline, one thread per job."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLAYGROUND_")}
    env.update(
        PLAYGROUND_HOME=str(home),
        PLAYGROUND_QUEUE=f"ui-test-{uuid.uuid4().hex[:8]}",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        GRADIO_ANALYTICS_ENABLED="False",
        OMP_NUM_THREADS="2",
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        **TIMINGS,
    )
    return env


@dataclass
class Server:
    """A running `playground serve` subprocess."""

    url: str
    home: Path
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    def worker_log(self) -> str:
        path = self.home / "logs" / "worker.log"
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""

    def api(self, method: str, path: str, user: str | None = "alice", body: Any = None) -> tuple[int, Any]:
        """Call the REST API as `user` (None: no credentials); returns (status, parsed JSON or text)."""
        return http(method, f"{self.url}{path}", user=user, body=body)


def http(method: str, url: str, *, user: str | None = None, body: Any = None, files: dict | None = None):
    """A small HTTP client on the standard library: JSON or multipart bodies, basic auth, no redirects followed."""
    headers = {}
    data = None
    if user is not None:
        token = base64.b64encode(f"{user}:{USERS.get(user, 'wrong')}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    if files is not None:
        boundary = uuid.uuid4().hex
        parts = []
        for field, path in files.items():
            parts.append(
                f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{Path(path).name}"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n".encode()
                + Path(path).read_bytes()
                + b"\r\n"
            )
        data = b"".join(parts) + f"--{boundary}--\r\n".encode()
        headers["Content-Type"] = f"multipart/form-data; boundary={boundary}"
    elif body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            status, raw, kind = response.status, response.read(), response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        status, raw, kind = exc.code, exc.read(), exc.headers.get("Content-Type", "")
    text = raw.decode("utf-8", errors="replace")
    return status, (json.loads(text) if "json" in kind and text else text)


def wait_for(condition, timeout: float, what: str, *, interval: float = 0.25, log=None):
    """Poll until `condition()` is truthy and return it; AssertionError (with a log tail) after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            tail = f"\n--- log ---\n{log()[-4000:]}" if log else ""
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}{tail}")
        time.sleep(interval)


def start_server(home: Path, log_path: Path, *args: str) -> Server:
    """Start `playground serve` on a free port and wait until the web app answers."""
    port = free_port()
    command = [*serve_command(), "--port", str(port), *args]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            cwd=home.parent,
            env=server_env(home),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(f"http://127.0.0.1:{port}", home, process, log_path)

    def up() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"playground serve exited with {process.returncode}:\n{server.log()[-4000:]}")
        try:
            return http("GET", f"{server.url}/healthz")[0] == 200
        except OSError:
            return False

    wait_for(up, 90, "playground serve to answer", log=server.log)
    return server


def stop_server(server: Server) -> None:
    """SIGTERM (serve stops its worker), then SIGKILL for the whole process group if it lingers."""
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.process.pid, signal.SIGKILL)
            server.process.wait(10)


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where screenshots and logs of the UI tests go (git-ignored)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory, artifacts: Path) -> Iterator[Server]:
    """`playground serve --auth alice:... --auth bob:...` with its local worker, ready to run jobs."""
    home = tmp_path_factory.mktemp("ui") / "home"
    home.mkdir()
    auth = [arg for user, password in USERS.items() for arg in ("--auth", f"{user}:{password}")]
    running = start_server(home, artifacts / "server.log", *auth)
    wait_for(lambda: " ready." in running.worker_log(), 90, "the local worker to be ready", log=running.worker_log)
    yield running
    stop_server(running)
    (artifacts / "worker.log").write_text(running.worker_log(), encoding="utf-8")


def upload(server: Server, user: str, path: Path) -> dict:
    """Upload a data file through REST as `user`; returns the dataset record."""
    status, body = http("POST", f"{server.url}/api/datasets", user=user, files={"file": path})
    assert status == 201, body
    return body


def wait_finished(server: Server, job_id: str, user: str = "alice", timeout: float = 240) -> dict:
    """Poll GET /api/jobs/{id} until the job has ended; returns its record."""

    def finished():
        status, job = server.api("GET", f"/api/jobs/{job_id}", user=user)
        assert status == 200, job
        return job if job["status"] in ("succeeded", "failed", "cancelled") else None

    return wait_for(finished, timeout, f"job {job_id} to finish", interval=1, log=server.worker_log)


@pytest.fixture(scope="session")
def trained_job(server: Server) -> dict:
    """Alice's succeeded training job on tests/fixtures/reviews.csv, submitted through REST."""
    dataset = upload(server, "alice", FIXTURES / "reviews.csv")
    spec = {
        "base_model": "minilm-l6",
        "data": {"train": dataset["id"], "text_column": "review_body", "label_column": "verdict"},
        "params": QUICK_PARAMS,
    }
    status, job = server.api("POST", "/api/jobs", body=spec)
    assert status == 201, job
    job = wait_finished(server, job["id"])
    assert job["status"] == "succeeded", job
    return job


@pytest.fixture(scope="session")
def browser(artifacts: Path) -> Iterator:
    """Debian's Chromium, driven by Playwright."""
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"{CHROMIUM} is missing: install it with `apt-get install -y chromium` (or set PLAYGROUND_CHROMIUM)"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


# Two epochs of MiniLM on tests/fixtures/ner/en.conll: enough for the tagger to find most entities.
NER_PARAMS = {"epochs": 2, "batch_size": 8, "learning_rate": 3e-4, "max_length": 64}
# Chat training on a CPU is slow: one epoch of LoRA on a handful of short conversations.
CHAT_PARAMS = {"epochs": 1, "batch_size": 4, "max_length": 128}
CHAT_CONVERSATIONS = 20


@pytest.fixture(scope="session")
def ner_job(server: Server) -> dict:
    """Alice's succeeded token-classification job on tests/fixtures/ner/en.conll, submitted through REST."""
    dataset = upload(server, "alice", FIXTURES / "ner" / "en.conll")
    spec = {"task": "token-classification", "base_model": "minilm-l6", "data": {"train": dataset["id"]}}
    status, job = server.api("POST", "/api/jobs", body={**spec, "params": NER_PARAMS})
    assert status == 201, job
    job = wait_finished(server, job["id"], timeout=300)
    assert job["status"] == "succeeded", job
    return job


@pytest.fixture(scope="session")
def chat_job(server: Server, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Alice's succeeded chat (LoRA) job on the first conversations of tests/fixtures/chat/support.jsonl."""
    lines = (FIXTURES / "chat" / "support.jsonl").read_text(encoding="utf-8").splitlines()[:CHAT_CONVERSATIONS]
    path = tmp_path_factory.mktemp("chat") / "support-small.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    dataset = upload(server, "alice", path)
    spec = {"task": "chat", "data": {"train": dataset["id"]}, "params": CHAT_PARAMS}
    status, job = server.api("POST", "/api/jobs", body=spec)
    assert status == 201, job
    job = wait_finished(server, job["id"], timeout=600)
    assert job["status"] == "succeeded", job
    return job


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[AppContext]:
    """The app's context on a fresh SQLite job store, with users alice and bob (password "pw"); no worker."""
    from ui.context import AppContext, Users
    from worker.settings import Settings

    settings = Settings(home=tmp_path / "home", queue=f"test-{uuid.uuid4().hex[:8]}")
    context = AppContext(settings, Users({"alice": "pw", "bob": "pw"}))
    yield context
    context.close()
