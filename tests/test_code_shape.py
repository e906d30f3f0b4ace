"""The code stays readable in pieces: no module over 500 lines, no function over 80, in engine/, worker/ and ui/."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("engine", "worker", "ui")
MAX_FILE_LINES = 500
MAX_FUNCTION_LINES = 80


def _modules() -> list[Path]:
    return sorted(path for package in PACKAGES for path in (ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_module_and_function_sizes(path: Path):
    source = path.read_text(encoding="utf-8")
    lines = len(source.splitlines())
    assert lines <= MAX_FILE_LINES, f"{path.name} has {lines} lines; split it by responsibility"
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines, from line {node.lineno})"
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert not long, f"{path.name}: functions over {MAX_FUNCTION_LINES} lines: {', '.join(long)}"


def test_task_names_are_spelled_only_in_the_task_packages_and_the_spec():
    # Outside engine/tasks/ and engine/spec.py a task name is only ever text a user reads or types.
    names = ('"text-classification"', '"token-classification"')
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in _modules()
        if "tasks" not in path.relative_to(ROOT).parts and path.name != "spec.py"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if any(name in line for name in names)
    ]
    assert not offenders, offenders
