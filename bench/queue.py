"""Queue latency: time from `submit()` to the job being `running` on an idle worker, with Redis and embedded brokers.

    python -m bench.queue [--jobs 20] [--brokers redis,embedded] [--redis-url redis://127.0.0.1:6379/15]

Each job is a real training job (the packaged MiniLM on a tiny CSV) sent to a real `playground worker` process. The
latency is the job record's `started_at - created_at`: the submitting process stamps created_at when it records the
job, the worker's job process stamps started_at when its claim succeeds. Both run on this host, so one clock.

Once running, each job is cancelled: it stops cooperatively when its training loop starts (after the model has
loaded, a few seconds), so the benchmark measures the queue, not training. Before each submission the benchmark
waits until the worker is idle, with a fresh job process forked and waiting, as an idle worker has.
"""

from __future__ import annotations

import argparse
import csv
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Run as a script, this file's folder comes first on sys.path, and this file would shadow the standard library's
# `queue` module that Celery imports; the repository root goes there instead.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path[0] = str(REPO)

from worker.api import Jobs  # noqa: E402
from worker.settings import Settings  # noqa: E402


def main() -> int:
    """Run the benchmark for each broker and print p50 / p95 latencies."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=20, help="jobs per broker (default %(default)s)")
    parser.add_argument("--brokers", default="redis,embedded", help="comma-separated: redis, embedded")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/15", help="Redis for the redis run")
    args = parser.parse_args()

    results = {}
    for name in args.brokers.split(","):
        with tempfile.TemporaryDirectory(prefix=f"queue-bench-{name}-") as tmp:
            broker_url = args.redis_url if name == "redis" else None
            results[name] = run(Path(tmp), broker_url, args.jobs)

    print(f"\nsubmit -> running, {args.jobs} jobs per broker, one idle worker (concurrency 1):")
    print(f"{'broker':<10} {'p50 ms':>8} {'p95 ms':>8} {'min ms':>8} {'max ms':>8}")
    for name, latencies in results.items():
        ms = sorted(x * 1000 for x in latencies)
        p95 = statistics.quantiles(ms, n=100, method="inclusive")[94]
        print(f"{name:<10} {statistics.median(ms):>8.0f} {p95:>8.0f} {ms[0]:>8.0f} {ms[-1]:>8.0f}")
    return 0


def run(tmp: Path, broker_url: str | None, jobs_count: int) -> list[float]:
    """Start one worker, submit `jobs_count` jobs one after another, return their submit -> running latencies."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLAYGROUND_")}
    env.update(
        PLAYGROUND_HOME=str(tmp / "home"),
        PLAYGROUND_QUEUE=f"bench-{uuid.uuid4().hex[:8]}",
        HF_HUB_OFFLINE="1",
        OMP_NUM_THREADS="1",
        PYTHONPATH=str(REPO),
    )
    if broker_url:
        env["PLAYGROUND_BROKER_URL"] = broker_url
    data = _write_csv(tmp / "reviews.csv")
    spec = {"data": {"train": str(data)}, "params": {"epochs": 1, "batch_size": 8, "max_length": 32}}
    log_path = tmp / "worker.log"
    with log_path.open("wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "worker", "--concurrency", "1"],
            env=env,
            cwd=tmp,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    jobs = Jobs(Settings.from_env(env))
    latencies = []
    try:
        _wait(lambda: " ready." in log_path.read_text(errors="replace"), 60, "the worker to start")
        label = "redis" if broker_url else "embedded"
        previous = None
        for i in range(jobs_count):
            _wait_idle(worker.pid, previous)
            job_id = jobs.submit(spec, "bench")
            job = _wait(lambda job_id=job_id: (j := jobs.get(job_id)).started_at and j, 30, "the job to start", 0.005)
            latencies.append((job.started_at - job.created_at).total_seconds())
            jobs.cancel(job_id)
            jobs.wait(job_id, timeout=60, poll=0.05)
            previous = job.worker_pid
            print(f"{label} job {i + 1:>2}/{jobs_count}: {latencies[-1] * 1000:6.0f} ms", flush=True)
    finally:
        jobs.close()
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
    return latencies


def _wait_idle(worker_pid: int, previous_job_pid: int | None = None) -> None:
    # An idle prefork worker (concurrency 1) has one job process forked and waiting; after a job it forks a fresh one.
    def pool_processes() -> list[int]:
        found = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
                cmdline = (stat.parent / "cmdline").read_bytes()
            except OSError:
                continue
            if int(fields[1]) == worker_pid and b"worker.recovery" not in cmdline and fields[0] not in ("Z", "X"):
                found.append(int(stat.parent.name))
        return found

    def ready() -> bool:
        pool = pool_processes()
        return len(pool) == 1 and pool[0] != previous_job_pid and _age(pool[0]) > 0.5

    _wait(ready, 30, "the worker to be idle", poll=0.05)


def _age(pid: int) -> float:
    try:
        start_ticks = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return 0.0
    uptime = float(Path("/proc/uptime").read_text().split()[0])
    return uptime - start_ticks / os.sysconf("SC_CLK_TCK")


def _wait(condition, timeout: float, what: str, poll: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(poll)
    raise TimeoutError(f"timed out waiting for {what}")


def _write_csv(path: Path, rows: int = 40) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        for i in range(rows):
            good = i % 2 == 0
            writer.writerow([f"review {i}: it was {'great' if good else 'awful'}", "pos" if good else "neg"])
    return path


if __name__ == "__main__":
    raise SystemExit(main())
