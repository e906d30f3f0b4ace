"""`playground tensorboard JOB`: TensorBoard on the event files a job wrote into its folder.

Wired into ui/cli.py with `add_tensorboard_command(sub)`. User errors are ValueError (JobNotFoundError is one),
printed by ui/cli.py as one line.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
from pathlib import Path

# engine.arguments.TENSORBOARD, spelled out so that the command starts without importing torch.
TENSORBOARD_FOLDER = "tensorboard"
EVENT_FILES = "events.out.tfevents.*"


def add_tensorboard_command(subparsers: argparse._SubParsersAction) -> None:
    """Register `tensorboard JOB [--port] [--host]` on the CLI's sub-parsers."""
    board = subparsers.add_parser("tensorboard", help="open TensorBoard on a job's training curves")
    board.add_argument("job", metavar="JOB", help="job id, a unique start of it, or a job's output folder")
    board.add_argument("--port", type=int, default=6006, help="port to serve on (default %(default)s)")
    board.add_argument(
        "--host", default="localhost", help="address to serve on (default %(default)s; 0.0.0.0 for every interface)"
    )
    board.set_defaults(handler=_cmd_tensorboard)


def job_folder(job: str) -> tuple[str, Path]:
    """(what to call it, its folder) for a job id or prefix from the job store, or for a job's output folder."""
    if Path(job).expanduser().is_dir():
        folder = Path(job).expanduser().resolve()
        return str(folder), folder
    if "/" in job or "\\" in job:
        raise ValueError(f"no job folder {job!r}; give an output folder or a job id from `playground jobs list`")
    from worker import api

    record = api.get(api.resolve(job))
    if record.artifact_dir is None:
        raise ValueError(f"job {record.id} has no folder yet; it has not been given one by the job store")
    return f"job {record.id}", Path(record.artifact_dir)


def _cmd_tensorboard(args: argparse.Namespace) -> int:
    name, folder = job_folder(args.job)
    logdir = folder / TENSORBOARD_FOLDER
    if importlib.util.find_spec("tensorboard") is None:
        raise ValueError("tensorboard is not installed: pip install tensorboard")
    if not logdir.is_dir() or next(logdir.rglob(EVENT_FILES), None) is None:
        raise ValueError(
            f"{name} has no TensorBoard events yet (looked in {logdir}); they appear once its training logs a step"
        )
    print(f"TensorBoard for {name} at http://{args.host}:{args.port}/ (Ctrl+C stops it)", flush=True)
    # The same interpreter, so the tensorboard found above is the one that runs, whatever PATH holds.
    command = [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir), "--port", str(args.port)]
    return subprocess.run([*command, "--host", args.host], check=False).returncode
