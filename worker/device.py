"""What a worker runs jobs on: the GPUs it sees (or the CPU) and how much memory is in use, for its heartbeat.

Read without torch: the worker's parent process must never initialise CUDA (its job processes are forked from it),
so GPUs are asked through `nvidia-smi`, limited to CUDA_VISIBLE_DEVICES as the jobs will be.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from collections import Counter
from dataclasses import dataclass

import psutil

log = logging.getLogger("playground.heartbeat")

_QUERY = "--query-gpu=name,memory.used,memory.total"
_MIB = 1 << 20
_TIMEOUT_SECONDS = 10


@dataclass(frozen=True)
class Device:
    """The GPUs (or CPU) of a worker, their memory in use and in all, and the host's RAM, in bytes."""

    name: str  # "NVIDIA H200", "2× NVIDIA A100-SXM4-80GB", "CPU (16 cores)"
    memory_used: int | None = None  # GPU memory, summed over the visible GPUs; None on a CPU worker
    memory_total: int | None = None
    ram_used: int | None = None
    ram_total: int | None = None


def probe_device() -> Device:
    """This host's device and memory now."""
    ram = psutil.virtual_memory()
    ram_used, ram_total = int(ram.total - ram.available), int(ram.total)
    gpus = _visible_gpus()
    if gpus is None:
        return Device("unknown (nvidia-smi failed)", ram_used=ram_used, ram_total=ram_total)
    if not gpus:
        return Device(f"CPU ({os.cpu_count() or 1} cores)", ram_used=ram_used, ram_total=ram_total)
    names = Counter(name for name, _, _ in gpus)
    label = ", ".join(name if count == 1 else f"{count}× {name}" for name, count in names.items())
    used = [u for _, u, _ in gpus]
    total = [t for _, _, t in gpus]
    if None in used or None in total:  # a sum over some of the GPUs would read as the whole
        return Device(label, None, None, ram_used, ram_total)
    return Device(label, sum(used), sum(total), ram_used, ram_total)  # type: ignore[arg-type]


def parse_gpus(output: str) -> list[tuple[str, int | None, int | None]]:
    """(name, memory used, memory total in bytes) per line of `nvidia-smi --query-gpu=name,memory.used,memory.total
    --format=csv,noheader,nounits`; memory is None where the GPU reports "[N/A]"."""
    gpus = []
    for line in output.splitlines():
        head, _, total = line.strip().rpartition(", ")  # names may hold commas; the two numbers come last
        name, _, used = head.rpartition(", ")
        if name.strip():
            gpus.append((name.strip(), _mib(used), _mib(total)))
    return gpus


def _mib(text: str) -> int | None:
    try:
        return int(float(text)) * _MIB
    except ValueError:
        return None


def _visible_gpus() -> list[tuple[str, int | None, int | None]] | None:
    """The GPUs jobs on this host will see; [] without any, None when nvidia-smi is there but fails."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    binary = shutil.which("nvidia-smi")
    if binary is None or (visible is not None and visible.strip() in ("", "-1")):
        return []
    command = [binary, _QUERY, "--format=csv,noheader,nounits"]
    if visible:
        command.insert(1, f"--id={visible.strip()}")
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=_TIMEOUT_SECONDS, check=True)
    except (OSError, subprocess.SubprocessError) as exc:
        log.debug("nvidia-smi failed: %s", exc)
        return None
    return parse_gpus(done.stdout)
