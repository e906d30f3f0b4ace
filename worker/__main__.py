"""`python -m worker [--concurrency N] [--queues a,b]`: the same worker as `playground worker`."""

from __future__ import annotations

import argparse

from worker.service import add_worker_flags, run_worker, split_queues


def main(argv: list[str] | None = None) -> int:
    """Parse the worker flags and run a worker."""
    parser = argparse.ArgumentParser(prog="python -m worker", description="Run a Finetune Playground job worker.")
    add_worker_flags(parser)
    args = parser.parse_args(argv)
    return run_worker(concurrency=args.concurrency, queues=split_queues(args.queues), loglevel=args.loglevel)


if __name__ == "__main__":
    raise SystemExit(main())
