"""Pick the device and numeric precision a job trains in."""

from __future__ import annotations

from functools import cache
from pathlib import Path

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
        if requested == "bf16" and not bf16_ok:
            raise ValueError("precision 'bf16' is not supported by this GPU; use 'fp16', 'fp32' or 'auto'")
        return requested
    if requested == "fp16":
        raise ValueError("precision 'fp16' needs a GPU; on the CPU use 'bf16', 'fp32' or 'auto'")
    if requested == "auto":
        return "bf16" if cpu_has_fast_bf16() else "fp32"
    return requested
