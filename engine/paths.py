"""Where the playground keeps its data and cached models, from environment settings."""

from __future__ import annotations

import os
from pathlib import Path


def data_home() -> Path:
    """The data dir (`PLAYGROUND_HOME`, default `./.playground`): jobs, uploads, the job store."""
    return Path(os.environ.get("PLAYGROUND_HOME", ".playground")).expanduser().resolve()


def model_cache() -> Path:
    """Converted catalog models (`PLAYGROUND_MODEL_CACHE`, default `~/.cache/finetune-playground/models`)."""
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "finetune-playground" / "models"
    return Path(os.environ.get("PLAYGROUND_MODEL_CACHE", default)).expanduser().resolve()


def max_upload_bytes() -> int:
    """Largest data file accepted (`PLAYGROUND_MAX_UPLOAD_MB`, default 200 MB)."""
    return int(float(os.environ.get("PLAYGROUND_MAX_UPLOAD_MB", "200")) * 1024 * 1024)
