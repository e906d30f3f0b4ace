"""`playground submit / jobs / worker` sub-commands, in process, on the embedded broker (no worker needed here)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import yaml

from tests.worker.helpers import run_subcommand, tiny_spec
from ui.cli_jobs import add_job_commands
from worker.api import JobNotFoundError


def run_cli(*argv: str) -> int:
    return run_subcommand(add_job_commands, *argv)


def test_submit_list_show_and_cancel_a_queued_job(cli_env, tmp_path: Path, training_csv, capsys) -> None:
    spec_file = tmp_path / "job.yaml"
    spec_file.write_text(yaml.safe_dump(tiny_spec(training_csv)))

    assert run_cli("jobs") == 0
    assert "no jobs yet" in capsys.readouterr().out

    assert run_cli("submit", str(spec_file), "--json") == 0
    job = json.loads(capsys.readouterr().out)
    assert (job["status"], job["owner"], job["kind"], job["position"]) == ("queued", "carol", "train", 1)

    assert run_cli("jobs", "list") == 0
    table = capsys.readouterr().out
    assert job["id"] in table and "#1 in queue" in table

    assert run_cli("jobs", "show", job["id"][:6], "--json") == 0  # a unique prefix is enough
    shown = json.loads(capsys.readouterr().out)
    assert shown["id"] == job["id"] and shown["history"] == []

    assert run_cli("jobs", "cancel", job["id"]) == 0
    assert "cancelled" in capsys.readouterr().out
    assert run_cli("jobs", "list", "--status", "cancelled", "--json") == 0
    assert [j["id"] for j in json.loads(capsys.readouterr().out)] == [job["id"]]

    assert run_cli("jobs", "logs", job["id"]) == 0
    assert "no log yet" in capsys.readouterr().out


def test_user_errors_are_value_errors_naming_the_problem(cli_env, tmp_path: Path) -> None:
    with pytest.raises(JobNotFoundError, match="no job 'nope'"):
        run_cli("jobs", "show", "nope")
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed")
    with pytest.raises(ValueError, match="is not valid YAML"):
        run_cli("submit", str(bad))
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(yaml.safe_dump({"data": {"train": "x.csv"}, "params": {"epochs": -1}}))
    with pytest.raises(ValueError, match="params.epochs"):
        run_cli("submit", str(wrong))


def test_the_worker_command_takes_concurrency_and_queues() -> None:
    parser = argparse.ArgumentParser(prog="playground")
    add_job_commands(parser.add_subparsers())
    args = parser.parse_args(["worker", "--concurrency", "2", "--queues", "gpu,cpu", "--queues", "eval"])
    from worker.service import split_queues

    assert args.concurrency == 2 and split_queues(args.queues) == ["gpu", "cpu", "eval"]


def test_jobs_delete_asks_first_and_removes_a_finished_job_with_its_folder(
    cli_env, tmp_path: Path, training_csv, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec_file = tmp_path / "job.yaml"
    spec_file.write_text(yaml.safe_dump(tiny_spec(training_csv)))
    assert run_cli("submit", str(spec_file), "--json") == 0
    job = json.loads(capsys.readouterr().out)
    with pytest.raises(ValueError, match="is queued; cancel it first"):
        run_cli("jobs", "delete", job["id"], "--yes")

    assert run_cli("jobs", "cancel", job["id"]) == 0
    folder = Path(job["artifact_dir"])
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "job.log").write_text("cancelled before it started\n")
    capsys.readouterr()
    with pytest.raises(ValueError, match="pass --yes"):  # a script is not asked: stdin is no terminal here
        run_cli("jobs", "delete", job["id"])
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda question: "n")
    assert run_cli("jobs", "delete", job["id"][:6]) == 1
    assert "nothing deleted" in capsys.readouterr().out and folder.is_dir()

    monkeypatch.setattr("builtins.input", lambda question: "y")
    assert run_cli("jobs", "delete", job["id"][:6]) == 0
    assert capsys.readouterr().out.strip() == f"job {job['id']} deleted with its folder"
    assert not folder.exists()
    with pytest.raises(JobNotFoundError, match="no job"):
        run_cli("jobs", "show", job["id"])
