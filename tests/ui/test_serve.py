"""`playground serve` as a user starts it: warnings, readable start-up errors, and the local worker's lifetime."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
from pathlib import Path

from tests.ui.conftest import (
    FIXTURES,
    REPO,
    USERS,
    serve_command,
    server_env,
    start_server,
    stop_server,
    upload,
    wait_for,
)


def run_serve(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    home = tmp_path / "home"
    return subprocess.run(
        [*serve_command(), *args],
        cwd=REPO,
        env=server_env(home),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_serving_beyond_this_machine_without_auth_prints_a_warning(tmp_path: Path):
    home = tmp_path / "home"
    home.mkdir()
    server = start_server(home, tmp_path / "serve.log", "--host", "0.0.0.0", "--workers", "0")
    try:
        wait_for(lambda: "is running" in server.log(), 30, "the start-up line", log=server.log)
        log = server.log()
        assert "WARNING: serving on 0.0.0.0" in log and "--auth USER:PASSWORD" in log
        assert "no local worker (--workers 0)" in log
    finally:
        stop_server(server)


def test_start_up_problems_end_with_one_readable_line(tmp_path: Path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_serve(tmp_path, "--port", str(port))
    assert done.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr and "pass --port" in done.stderr
    assert "Traceback" not in done.stderr
    done = run_serve(tmp_path, "--auth", "alice")
    assert done.returncode == 2 and "--auth: expected user:password, got 'alice'" in done.stderr


def test_the_local_worker_starts_with_the_web_app_and_stops_with_it(tmp_path: Path):
    home = tmp_path / "home"
    home.mkdir()
    server = start_server(home, tmp_path / "serve.log")
    try:
        started = wait_for(lambda: re.search(r"local worker started \(pid (\d+)", server.log()), 30, "the worker")
        worker_pid = int(started.group(1))
        wait_for(lambda: " ready." in server.worker_log(), 90, "the worker to be ready", log=server.worker_log)
        assert "WARNING" not in server.log()  # loopback, single user: nothing to warn about
    finally:
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(30) == 0
    wait_for(lambda: not alive(worker_pid), 20, "the worker to stop")


def test_jobs_outlive_a_restart_of_the_web_process(tmp_path: Path):
    home = tmp_path / "home"
    home.mkdir()
    auth = ("--auth", f"alice:{USERS['alice']}", "--workers", "0")  # no worker: the job stays queued
    server = start_server(home, tmp_path / "first.log", *auth)
    try:
        dataset = upload(server, "alice", FIXTURES / "reviews.csv")
        status, job = server.api("POST", "/api/jobs", body={"data": {"train": dataset["id"]}})
        assert status == 201 and job["status"] == "queued" and job["position"] == 1
    finally:
        stop_server(server)
    server = start_server(home, tmp_path / "second.log", *auth)
    try:
        status, again = server.api("GET", f"/api/jobs/{job['id']}")
        assert status == 200 and again["status"] == "queued" and again["position"] == 1
        assert [d["id"] for d in server.api("GET", "/api/datasets")[1]["datasets"]] == [dataset["id"]]
    finally:
        stop_server(server)
