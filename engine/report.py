"""report.json and report.md on disk, written atomically; each task supplies its own markdown renderer."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from engine.files import write_atomically


def _json_default(value: Any) -> Any:
    # Summaries assembled elsewhere may still hold numpy numbers; JSON has no type for them.
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"report value of type {type(value).__name__} cannot be written as JSON: {value!r}")


def write_report(
    report: dict, out_dir: str | Path, *, name: str = "report", renderer: Callable[[dict], str]
) -> tuple[Path, Path]:
    """Write `<name>.json` and `<name>.md` into `out_dir` atomically and return their paths."""
    if not name or Path(name).name != name or name in {".", ".."}:
        raise ValueError(f"report name {name!r} must be a plain file name without folders")
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"cannot create report folder {out}: {exc.strerror}; choose another output path") from exc
    json_path, md_path = out / f"{name}.json", out / f"{name}.md"
    # Serialise both before writing either, so a bad value cannot leave a JSON without its markdown.
    json_text = json.dumps(report, indent=2, ensure_ascii=False, default=_json_default) + "\n"
    md_text = renderer(report)
    write_atomically(json_path, json_text)
    write_atomically(md_path, md_text)
    return json_path, md_path
