"""The embedded default: no broker URL, no Redis, no database server; a real worker on the SQLite broker and store."""

from __future__ import annotations

import json

import pytest
import yaml

from ui.cli_jobs import add_job_commands
from worker.api import Jobs
from worker.records import RUNNING, SUCCEEDED
from worker.settings import Settings

from .helpers import run_subcommand, tiny_spec, wait_until

pytestmark = pytest.mark.slow


def run_cli(*argv: str) -> int:
    return run_subcommand(add_job_commands, *argv)


@pytest.fixture
def embedded_env(cli_env: dict) -> dict:
    assert "PLAYGROUND_BROKER_URL" not in cli_env and "PLAYGROUND_DATABASE_URL" not in cli_env
    return cli_env


def test_submit_wait_trains_a_model_on_the_embedded_broker(embedded_env, start_worker, tmp_path, training_csv, capsys):
    worker = start_worker(embedded_env)
    assert "embedded SQLite broker" in worker.log()
    spec_file = tmp_path / "job.yaml"
    spec_file.write_text(yaml.safe_dump(tiny_spec(training_csv)))

    assert run_cli("submit", str(spec_file), "--wait", "--json") == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    job = lines[-1]
    assert job["status"] == SUCCEEDED, job
    events = lines[:-1]
    assert [e["message"].split(" ")[0].rstrip(":") for e in events if e["kind"] == "status"] == [
        "queued",
        "running",
        "succeeded",
    ]
    assert len([e for e in events if e["kind"] == "log"]) == job["total_steps"]

    assert run_cli("jobs", "show", job["id"], "--json") == 0
    shown = json.loads(capsys.readouterr().out)
    report = json.loads((tmp_path / "home" / "jobs" / job["id"] / "report.json").read_text())
    assert shown["summary"]["macro_f1"] == pytest.approx(report["metrics"]["macro_f1"])
    assert report["metrics"]["macro_f1"] >= 0.8
    assert [e["kind"] for e in shown["history"]].count("eval") == 2

    assert run_cli("jobs", "logs", job["id"]) == 0
    assert "succeeded" in capsys.readouterr().out
    assert run_cli("jobs", "cancel", job["id"]) == 0
    assert "already succeeded" in capsys.readouterr().out

    home = tmp_path / "home"
    assert (home / "broker.sqlite").is_file() and (home / "jobs.sqlite").is_file()


def test_a_job_whose_embedded_worker_is_killed_is_resumed_by_another(embedded_env, start_worker, training_csv):
    jobs = Jobs(Settings.from_env(embedded_env))
    try:
        workers = [start_worker(embedded_env), start_worker(embedded_env)]
        job_id = jobs.submit(tiny_spec(training_csv, epochs=4), "alice")
        job = wait_until(
            lambda: (
                (j := jobs.get(job_id)).status == RUNNING
                and any((j.artifact_dir / "checkpoints").glob("checkpoint-*/trainer_state.json"))
                and j
            ),
            120,
            "the first checkpoint",
        )
        victim = next(w for w in workers if job.worker_name == f"playground-{w.pid}@{job.worker_host}")
        victim.kill9()
        done = jobs.wait(job_id, timeout=120)
        assert (done.status, done.attempts) == (SUCCEEDED, 2), done.error
        starts = [ev for ev in jobs.events(job_id) if ev.kind == "start"]
        assert starts[1].step >= 6
    finally:
        jobs.close()
