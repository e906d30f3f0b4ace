"""The Train tab's `playground train ...` line: the command that runs the tab's job on this machine, flags only where
the spec differs from the task's defaults (recipe knobs, the search and the techniques)."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from engine.spec import TrainingParams
from engine.tasks import get_task
from engine.techniques import TECHNIQUES


def task_defaults(task: str) -> dict[str, Any]:
    """The base model and the training knobs a new job of `task` starts with (the task's defaults)."""
    info = get_task(task)
    params = {name: field.default for name, field in TrainingParams.model_fields.items()}
    return {"base_model": info.default_base_model, **params, **info.default_params}


def cli_command(spec: dict[str, Any]) -> str:
    """`playground train ...` doing the same job on this machine, flags only where they differ from the defaults."""
    data = spec["data"]
    defaults = task_defaults(spec["task"])
    parts = [["playground", "train"], ["--task", spec["task"]], ["--base-model", spec["base_model"]]]
    for key in ("train", "validation", "test", "unlabeled", *get_task(spec["task"]).column_fields):
        if data.get(key):
            parts.append([f"--{key.replace('_', '-')}", str(data[key])])
    if data.get("mask_personal_data"):
        parts.append(_flag("mask_personal_data", data["mask_personal_data"]))
    for key, value in spec["params"].items():
        if value != defaults.get(key):
            parts.append(_flag(key, value))
    if spec.get("search") is not None:
        parts.append(
            ["--search", *(part for key, value in spec["search"].items() for part in _flag(f"search_{key}", value))]
        )
    parts += technique_flags(spec.get("techniques"))
    name = Path(str(data.get("train", "data"))).stem or "run"
    parts.append(["--output", f"runs/{name}"])
    return " \\\n    ".join(shlex.join(part) for part in parts)


def technique_flags(block: dict[str, Any] | None) -> list[list[str]]:
    """One line per technique that is on: its switch and its fields' flags (`--augment --augment-copies 3`), then
    --no-compare-with-plain when the comparison is off."""
    lines = []
    for name in TECHNIQUES:
        fields = (block or {}).get(name)
        if fields is not None:
            flags = (part for key, value in fields.items() for part in _flag(f"{name}_{key}", value))
            lines.append([f"--{name.replace('_', '-')}", *flags])
    if block and block.get("compare_with_plain") is False:
        lines.append(_flag("compare_with_plain", False))
    return lines


def _flag(key: str, value: Any) -> list[str]:
    """The CLI flag (and its argument) that sets spec field `key` to `value`."""
    flag = key.replace("_", "-")
    if isinstance(value, bool):
        return [f"--{flag}" if value else f"--no-{flag}"]
    if isinstance(value, dict):
        return [f"--{flag}", ",".join(f"{k}={v:g}" for k, v in value.items())]
    if isinstance(value, tuple | list):
        return [f"--{flag}", ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)]
    return [f"--{flag}", f"{value:g}" if isinstance(value, float) else str(value)]
