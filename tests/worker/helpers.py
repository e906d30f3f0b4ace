"""Helpers for the worker tests: waiting on conditions and building tiny training specs."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def wait_until(condition: Callable[[], T], timeout: float, what: str, *, interval: float = 0.1) -> T:
    """Poll `condition` until it returns something truthy and return that; AssertionError after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def tiny_spec(csv: Path, **params: Any) -> dict[str, Any]:
    """A training spec that fine-tunes the packaged MiniLM on `csv` in seconds."""
    return {
        "base_model": "minilm-l6",
        "data": {"train": str(csv)},
        "params": {"epochs": 2, "batch_size": 8, "max_length": 32, "learning_rate": 3e-4, **params},
    }


def run_subcommand(add_commands: Callable[[Any], None], *argv: str) -> int:
    """Run `playground ARGV...` in this process with only the sub-commands that `add_commands` registers."""
    parser = argparse.ArgumentParser(prog="playground")
    add_commands(parser.add_subparsers())
    args = parser.parse_args(argv)
    return args.handler(args)
