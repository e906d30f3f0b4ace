"""`playground tensorboard JOB`: finds a job's event files by id, prefix or folder, and says what is missing."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.worker.helpers import run_subcommand, tiny_spec
from ui import cli_tensorboard
from ui.cli_tensorboard import add_tensorboard_command
from worker.api import JobNotFoundError


def run_cli(*argv: str) -> int:
    return run_subcommand(add_tensorboard_command, *argv)


@pytest.fixture
def launched(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The commands `playground tensorboard` would run, recorded instead of starting a server."""
    commands: list[list[str]] = []

    def fake_run(command, check=False):
        commands.append(command)
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr(cli_tensorboard.subprocess, "run", fake_run)
    return commands


def test_the_folder_name_is_the_engines():
    from engine.arguments import TENSORBOARD

    assert cli_tensorboard.TENSORBOARD_FOLDER == TENSORBOARD


def test_a_missing_job_or_folder_is_named(cli_env, launched):
    with pytest.raises(JobNotFoundError, match="no job 'nope'"):
        run_cli("tensorboard", "nope")
    with pytest.raises(ValueError, match="no job folder 'runs/missing'"):
        run_cli("tensorboard", "runs/missing")
    assert launched == []


def test_a_job_folder_without_events_says_so(tmp_path: Path, launched):
    folder = tmp_path / "run"
    (folder / "tensorboard" / "member-1").mkdir(parents=True)  # a folder, but no event file in it yet
    with pytest.raises(ValueError, match=r"has no TensorBoard events yet \(looked in .*tensorboard\)"):
        run_cli("tensorboard", str(folder))
    assert launched == []


def test_a_queued_job_without_events_is_named_by_its_id(cli_env, tmp_path: Path, training_csv, launched):
    from worker import api

    job_id = api.submit(tiny_spec(training_csv), "carol")
    with pytest.raises(ValueError, match=f"job {job_id} has no TensorBoard events yet"):
        run_cli("tensorboard", job_id[:6])  # a unique prefix is enough
    assert launched == []


def test_events_in_a_folder_start_tensorboard_on_them_and_print_the_url(tmp_path: Path, launched, capsys):
    logdir = tmp_path / "run" / "tensorboard"
    (logdir / "trial-0").mkdir(parents=True)
    (logdir / "trial-0" / "events.out.tfevents.1.host").write_bytes(b"")
    assert run_cli("tensorboard", str(tmp_path / "run"), "--port", "6123") == 0
    assert "at http://localhost:6123/" in capsys.readouterr().out
    [command] = launched
    assert command[1:3] == ["-m", "tensorboard.main"]
    assert command[command.index("--logdir") + 1] == str(logdir.resolve())
    assert command[command.index("--port") + 1] == "6123"


def test_without_tensorboard_it_says_how_to_install_it(tmp_path: Path, launched, monkeypatch):
    real = cli_tensorboard.importlib.util.find_spec
    monkeypatch.setattr(
        cli_tensorboard.importlib.util, "find_spec", lambda name: None if name == "tensorboard" else real(name)
    )
    with pytest.raises(ValueError, match="tensorboard is not installed: pip install tensorboard"):
        run_cli("tensorboard", str(tmp_path))
    assert launched == []


def test_the_playground_command_has_it_and_prints_user_errors_as_one_line(tmp_path: Path, launched, capsys):
    from ui.cli import main

    assert main(["tensorboard", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip().endswith("they appear once its training logs a step")
    assert launched == []
