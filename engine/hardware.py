"""Pick the device and numeric precision a job trains or predicts in, and the threads it predicts with."""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import Literal, get_args

import torch

from engine.params import Precision


@cache
def cpu_has_fast_bf16() -> bool:
    """True when the CPU multiplies bf16 natively (AVX-512 BF16 or AMX), where bf16 autocast runs ~2x faster."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:  # not Linux: be conservative
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def device_name() -> str:
    """'cuda' when a GPU is visible, else 'cpu' (MPS is left out: its bf16 support is patchy)."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_precision(requested: Precision, device: str | None = None) -> str:
    """Turn 'auto' into bf16 / fp16 / fp32 for the device; refuse a precision the device cannot run."""
    device = device or device_name()
    if device == "cuda":
        bf16_ok = torch.cuda.is_bf16_supported()
        if requested == "auto":
            return "bf16" if bf16_ok else "fp16"
        if requested in ("bf16", "bf16-pure") and not bf16_ok:
            raise ValueError(f"precision {requested!r} is not supported by this GPU; use 'fp16', 'fp32' or 'auto'")
        return requested
    if requested == "fp16":
        raise ValueError("precision 'fp16' needs a GPU; on the CPU use 'bf16', 'fp32' or 'auto'")
    if requested == "auto":
        return "bf16" if cpu_has_fast_bf16() else "fp32"
    return requested


def autocast_precision(precision: str) -> str:
    """The precision autocast runs in for a resolved precision: 'bf16-pure' is bf16 where weights are not cast."""
    return "bf16" if precision == "bf16-pure" else precision


# What a Predictor may be asked to run in; "auto" is bf16 where the device multiplies it fast, else fp32.
InferencePrecision = Literal["auto", "fp32", "bf16", "int8"]
INFERENCE_PRECISIONS: tuple[str, ...] = get_args(InferencePrecision)


@cache
def cpu_has_amx() -> bool:
    """True when the CPU has AMX tiles, whose bf16 matmuls want sequence lengths in multiples of 8 or 16."""
    try:
        return "amx_bf16" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


def resolve_inference_precision(requested: str, device: str) -> str:
    """Turn an inference precision ('auto' included) into fp32 / bf16 / int8 for the device, or refuse it."""
    if requested not in INFERENCE_PRECISIONS:
        raise ValueError(f"precision {requested!r} is not one of {', '.join(INFERENCE_PRECISIONS)}")
    cuda = device.startswith("cuda")
    fast_bf16 = torch.cuda.is_bf16_supported() if cuda else device == "cpu" and cpu_has_fast_bf16()
    if requested == "auto":
        return "bf16" if fast_bf16 else "fp32"
    if requested == "int8" and device != "cpu":
        raise ValueError(f"precision 'int8' (dynamic quantization) runs on the CPU only, not {device}; use 'bf16'")
    if requested == "bf16" and cuda and not fast_bf16:
        raise ValueError("precision 'bf16' is not supported by this GPU; use 'fp32' or 'auto'")
    return requested


def physical_cores() -> int:
    """Physical cores this process may run on (hyperthread siblings counted once), from /proc/cpuinfo."""
    allowed = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set(range(os.cpu_count() or 1))
    try:
        blocks = Path("/proc/cpuinfo").read_text().strip().split("\n\n")
    except OSError:
        return len(allowed)
    cores: set[tuple[str, str]] = set()
    for block in blocks:
        fields = dict(line.split(":", 1) for line in block.splitlines() if ":" in line)
        fields = {key.strip(): value.strip() for key, value in fields.items()}
        if int(fields.get("processor", -1)) in allowed:
            cores.add((fields.get("physical id", "0"), fields.get("core id", fields.get("processor", "0"))))
    return len(cores) or len(allowed)


def limit_threads_to_cores() -> int:
    """Lower torch's intra-op threads to the physical cores when above them; returns the thread count in force.

    Hyperthread siblings share one core's vector units, so more threads than cores only adds contention. A count
    below the cores is left alone: a worker or a test may have chosen it.
    """
    cores = physical_cores()
    if torch.get_num_threads() > cores:
        torch.set_num_threads(cores)
    return torch.get_num_threads()
