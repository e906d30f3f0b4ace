"""`playground submit`, `playground jobs ...` and `playground worker`: the job queue from the command line.

Wired into ui/cli.py with `add_job_commands(sub)`. Handlers take the argparse Namespace and return an exit code;
user errors are ValueError (JobNotFoundError is one), printed by ui/cli.py as one line.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
import time
from datetime import UTC
from pathlib import Path
from typing import Any

import yaml

from worker.service import add_worker_flags

_POLL_SECONDS = 0.5


def add_job_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register `submit`, `jobs` (list | show | cancel | delete | logs | follow) and `worker` as sub-commands."""
    submit = subparsers.add_parser("submit", help="queue a training (or evaluation) job from a YAML or JSON spec")
    submit.add_argument(
        "spec", type=Path, help="spec file, as for `train --config`; a mapping with 'model:' and 'data:' evaluates"
    )
    submit.add_argument("--owner", help="who the job belongs to (default PLAYGROUND_OWNER or your user name)")
    submit.add_argument("--queue", help="queue to send it to (default PLAYGROUND_QUEUE or 'playground')")
    submit.add_argument(
        "--wait", action="store_true", help="follow the job until it ends; exit 0 only if it succeeded"
    )
    submit.add_argument("--json", action="store_true", help="print JSON (with --wait: one event per line)")
    submit.set_defaults(handler=_cmd_submit)

    jobs = subparsers.add_parser("jobs", help="list, show, cancel, delete and follow queued and finished jobs")
    actions = jobs.add_subparsers(title="actions", metavar="ACTION")
    jobs.set_defaults(handler=_cmd_list, owner=None, status=None, limit=50, json=False)

    listing = actions.add_parser("list", help="jobs, newest first (the default action)")
    listing.add_argument("--owner", help="only this owner's jobs")
    listing.add_argument("--status", choices=["queued", "running", "succeeded", "failed", "cancelled"])
    listing.add_argument("--limit", type=int, default=50, help="at most this many (default %(default)s)")
    listing.add_argument("--json", action="store_true", help="print the job records as JSON")
    listing.set_defaults(handler=_cmd_list)

    show = actions.add_parser("show", help="one job: status, progress, result or error with a hint")
    _add_job_id(show)
    show.add_argument("--json", action="store_true", help="print the job record and its metric history as JSON")
    show.set_defaults(handler=_cmd_show)

    cancel = actions.add_parser("cancel", help="cancel a job: queued ones at once, running ones at their next step")
    _add_job_id(cancel)
    cancel.add_argument("--json", action="store_true", help="print the job record as JSON")
    cancel.set_defaults(handler=_cmd_cancel)

    delete = actions.add_parser("delete", help="delete a finished job with its folder (model, report, log)")
    _add_job_id(delete)
    delete.add_argument("--yes", action="store_true", help="delete without asking first")
    delete.add_argument("--json", action="store_true", help="print the deleted job's record as JSON")
    delete.set_defaults(handler=_cmd_delete)

    logs = actions.add_parser("logs", help="print the job's log file (job.log in its folder)")
    _add_job_id(logs)
    logs.add_argument("--lines", type=int, default=200, help="only the last N lines (default %(default)s)")
    logs.add_argument("--json", action="store_true", help='print {"job_id": ..., "log": ...}')
    logs.set_defaults(handler=_cmd_logs)

    follow = actions.add_parser("follow", help="print a job's progress as it happens until it ends")
    _add_job_id(follow)
    follow.add_argument("--json", action="store_true", help="one JSON event per line, then the job record")
    follow.set_defaults(handler=_cmd_follow)

    worker = subparsers.add_parser("worker", help="run a job worker (Celery; one job per process, see compose.yaml)")
    add_worker_flags(worker)
    worker.set_defaults(handler=_cmd_worker)


def _add_job_id(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job_id", metavar="ID", help="job id, or a unique start of it")


def _cmd_submit(args: argparse.Namespace) -> int:
    from worker import api

    spec = load_spec_file(args.spec)
    job_id = api.submit(spec, args.owner or default_owner(), queue=args.queue)
    return after_submit(job_id, wait=args.wait, as_json=args.json)


def after_submit(job_id: str, *, wait: bool, as_json: bool) -> int:
    """Follow a job just queued until it ends (`wait`), or say where it is and how to follow it."""
    from worker import api

    if wait:
        return follow(job_id, as_json=as_json)
    job = api.get(job_id)
    if as_json:
        print(json.dumps(job.to_dict(), ensure_ascii=False))
    else:
        print(f"queued {job.kind} job {job.id} (position {job.position} in '{job.queue}')")
        print(f"follow it with: playground jobs follow {job.id}")
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    from worker import api

    jobs = api.list_jobs(args.owner, status=args.status, limit=args.limit)
    if args.json:
        print(json.dumps([job.to_dict() for job in jobs], indent=2, ensure_ascii=False))
    elif not jobs:
        print("no jobs yet; queue one with `playground submit SPEC.yaml`")
    else:
        print(format_jobs_table(jobs))
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    from worker import api

    job = api.get(api.resolve(args.job_id))
    if args.json:
        record = job.to_dict()
        record["history"] = [ev.to_dict() for ev in api.history(job.id)]
        print(json.dumps(record, indent=2, ensure_ascii=False))
    else:
        print(format_job(job))
    return 0


def _cmd_cancel(args: argparse.Namespace) -> int:
    from worker import api

    job = api.cancel(api.resolve(args.job_id))
    if args.json:
        print(json.dumps(job.to_dict(), ensure_ascii=False))
    elif job.status == "cancelled":
        print(f"job {job.id} cancelled")
    elif job.finished:
        print(f"job {job.id} had already {job.status}; nothing to cancel")
    else:
        print(f"cancel requested: job {job.id} stops at its next training step")
    return 0


def _cmd_delete(args: argparse.Namespace) -> int:
    from worker import api

    job = api.get(api.resolve(args.job_id))
    if not args.yes and not confirm(f"delete {job.kind} job {job.id} ({job.status}) and its folder? [y/N] "):
        print("nothing deleted")
        return 1
    job = api.delete(job.id)  # the same deletion as the REST API and the Jobs tab: refused while a job needs it
    print(json.dumps(job.to_dict(), ensure_ascii=False) if args.json else f"job {job.id} deleted with its folder")
    return 0


def confirm(question: str) -> bool:
    """Ask on the terminal; ValueError (use --yes) without one. Every CLI deletion asks through this."""
    # A script has nobody to answer: it must say --yes rather than hang on a prompt or delete unasked.
    if not sys.stdin.isatty():
        raise ValueError("not deleting without confirmation; pass --yes to delete from a script")
    return input(question).strip().lower() in ("y", "yes")


def _cmd_logs(args: argparse.Namespace) -> int:
    from worker import api

    job_id = api.resolve(args.job_id)
    text = api.log_tail(job_id, args.lines)
    if args.json:
        print(json.dumps({"job_id": job_id, "log": text}, ensure_ascii=False))
    else:
        print(text.rstrip("\n") if text else f"job {job_id} has no log yet (it has not started)")
    return 0


def _cmd_follow(args: argparse.Namespace) -> int:
    from worker import api

    return follow(api.resolve(args.job_id), as_json=args.json)


def _cmd_worker(args: argparse.Namespace) -> int:
    from worker.service import run_worker, split_queues

    return run_worker(concurrency=args.concurrency, queues=split_queues(args.queues), loglevel=args.loglevel)


def follow(job_id: str, *, as_json: bool) -> int:
    """Print events until the job ends; exit code 0 if it succeeded, else 1."""
    from worker import api

    since = 0
    while True:
        job = api.get(job_id)  # read before the events, so none written before it finished is missed
        for ev in api.events(job_id, since):
            since = ev.id
            print(json.dumps(ev.to_dict(), ensure_ascii=False) if as_json else format_event(ev), flush=True)
        if job.finished:
            break
        time.sleep(_POLL_SECONDS)
    print(json.dumps(job.to_dict(), ensure_ascii=False) if as_json else format_job(job))
    return 0 if job.status == "succeeded" else 1


def load_spec_file(path: Path):
    """A training or evaluation spec from a YAML or JSON file."""
    from worker.specs import parse_spec

    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"cannot read spec file {path}: {exc.strerror}") from exc
    try:
        raw = json.loads(text) if Path(path).suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        kind = "JSON" if Path(path).suffix == ".json" else "YAML"
        raise ValueError(f"spec file {path} is not valid {kind}: {exc}") from exc
    return parse_spec(raw, source=str(path))


def default_owner() -> str:
    """PLAYGROUND_OWNER, else the login name."""
    return os.environ.get("PLAYGROUND_OWNER") or getpass.getuser()


def format_jobs_table(jobs: list) -> str:
    """An aligned table of jobs for the terminal."""
    rows = [("ID", "OWNER", "KIND", "STATUS", "PROGRESS", "CREATED", "RESULT")]
    for job in jobs:
        rows.append(
            (
                job.id,
                job.owner[:16],
                job.kind,
                job.status + (" (cancelling)" if job.cancel_requested and not job.finished else ""),
                _progress_text(job),
                local_time(job.created_at),
                _result_text(job)[:60],
            )
        )
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows)


def format_job(job) -> str:
    """A few lines about one job."""
    lines = [
        f"job {job.id}: {job.kind}, {job.status}" + (" (cancel requested)" if job.cancel_requested else ""),
        f"  owner {job.owner}, queue '{job.queue}', created {local_time(job.created_at)}",
        f"  progress {_progress_text(job)}",
    ]
    if job.worker_name:
        lines.append(f"  worker {job.worker_name} (pid {job.worker_pid}), attempt {job.attempts}/{job.max_attempts}")
    if job.summary:
        lines.append("  result " + ", ".join(f"{k} {v:.3f}" for k, v in job.summary.items()))
    if job.error:
        lines.append(f"  error: {job.error}")
    if job.hint:
        lines.append(f"  hint: {job.hint}")
    lines.append(f"  folder {job.artifact_dir}")
    return "\n".join(lines)


def format_event(ev) -> str:
    """One event as a line: status messages, losses, evaluations."""
    when = local_time(ev.at, seconds=True)
    if ev.kind == "status":
        return f"{when}  {ev.message}"
    where = f"step {ev.step}/{ev.total_steps}, epoch {ev.epoch:.2f}" if ev.epoch is not None else f"step {ev.step}"
    if ev.kind == "log":
        return f"{when}  {where}: loss {ev.loss:.4f}" if ev.loss is not None else f"{when}  {where}"
    if ev.kind == "eval":
        numbers = ", ".join(
            f"{k} {v:.4f}" for k, v in sorted(ev.metrics.items()) if k in ("loss", "accuracy", "macro_f1")
        )
        return f"{when}  {where}: validation {numbers}"
    return f"{when}  {where}: training {'started' if ev.kind == 'start' else 'ended'}"


def _progress_text(job) -> str:
    if job.status == "queued":
        return f"#{job.position} in queue" if job.position else "queued"
    if job.total_steps:
        eta = f", ETA {_duration(job.eta_seconds)}" if job.status == "running" and job.eta_seconds else ""
        return f"{job.step}/{job.total_steps} steps{eta}"
    return "-" if job.finished else "starting"


def _result_text(job) -> str:
    if job.error:
        return job.error
    warned = "⚠ " if job.summary.get("warnings") else ""  # a collapsed model, or one that lost to its baseline
    if "macro_f1" in job.summary:
        return f"{warned}macro-F1 {job.summary['macro_f1']:.3f}"
    return warned.strip()


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return (
        f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"
    )


def local_time(moment: Any, *, seconds: bool = False) -> str:
    """A stored UTC moment as this machine's local time, to the minute (or second); "-" for none."""
    if moment is None:
        return "-"
    local = moment.replace(tzinfo=UTC).astimezone()
    return local.strftime("%H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
